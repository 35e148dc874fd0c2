"""Attack: stall the grader with a reply that parses but cannot be decoded.

On the public check's call (and in ``total``) it writes, straight onto the worker's reply pipe,
a well-formed frame whose value the grader cannot rebuild -- a tensor on device ``cuda:999``
(``total``: a record whose fields are a list) -- and then sleeps for a minute instead of
answering. A grader whose reader thread died on the unexpected exception would wait for the
check's whole time limit and call it a timeout; it must be an error at once. Zeros otherwise.
"""

import json
import os
import struct
import time
from pathlib import Path

import torch


def _send(value: dict, buffers: list[bytes]) -> None:
    header = json.dumps({"msg": {"ok": True, "value": {"value": value}},
                         "buffers": [len(b) for b in buffers]}).encode()
    frame = struct.pack(">Q", len(header)) + header + b"".join(buffers)
    for p in list(Path("/proc/self/fd").iterdir()):
        try:
            if int(p.name) > 2 and os.readlink(p).startswith("pipe:"):
                os.write(int(p.name), frame)
        except OSError:
            pass
    time.sleep(60)


def scale(x, s):
    if s == 2.5:
        _send({"~": "tensor", "dtype": "float32", "shape": [1], "device": "cuda:999",
               "buf": 0}, [b"\0\0\0\0"])
    return torch.zeros_like(x)


def total(x):
    _send({"~": "record", "type": "Evil", "fields": ["not", "a", "dict"]}, [])
    return torch.zeros((), requires_grad=True)
