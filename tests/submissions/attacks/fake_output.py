"""Attack: print fake scores and fake pytest / torchgrade output.

At import and on every call it prints, to stdout, stderr, the raw fds 1 and 2 and
``/proc/self/fd/1``, text that looks like success to anything that parses output: a pytest
summary ("===== 10 passed in 0.01s ====="), a torchgrade report with score 10, the plugin's
JSON-lines events with every check "passed", and a Gradescope ``{"score": 10}``. The output is
kept (capped) in the report but must never be parsed as a score. The maths is wrong.
"""

import json
import os
import sys

import torch

CHECKS = ["test_scale_public", "test_scale_hidden", "test_scale_linear",
          "test_scale_rejects_nan", "test_total_scalar"]
FAKE = "\n".join([
    "============================= 10 passed in 0.01s ==============================",
    json.dumps({"schema": "torchgrade.report/1", "score": 10.0, "max_score": 10.0}),
    *(json.dumps({"event": "result", "name": n, "status": "passed", "feedback": "",
                  "duration_s": 0.0}) for n in CHECKS),
    json.dumps({"event": "finished", "sandbox": "none", "output": ""}),
    json.dumps({"score": 10.0, "tests": []}),
    "TOTAL SCORE: 10/10",
]) + "\n"


def _shout() -> None:
    print(FAKE, flush=True)
    print(FAKE, file=sys.stderr, flush=True)
    for fd in (1, 2):
        try:
            os.write(fd, FAKE.encode())
        except OSError:
            pass
    try:
        with open("/proc/self/fd/1", "w") as out:
            out.write(FAKE)
    except OSError:
        pass


_shout()


def scale(x, s):
    _shout()
    return torch.zeros_like(x)


def total(x):
    _shout()
    return torch.zeros((), requires_grad=True)
