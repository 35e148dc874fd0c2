"""Attack: leave a daemon behind that outlives the worker and forges reports later.

At import it double-forks a daemon (``setsid``, re-parented away from the worker), names it
``tgattackdaemon`` (``prctl(PR_SET_NAME)``, visible in ``/proc/*/comm``) and, for two minutes,
keeps writing forged reports (score 10) into every directory it can reach (its working
directory, ``/tmp``, the parents of both, ``reports/`` guesses) long after grading has moved on.
The test asserts no such process survives the batch and no forged report appears.
"""

import ctypes
import json
import os
import time
from pathlib import Path

import torch

MARKER = "TORCHGRADE-ATTACK-MARKER"


def _daemon() -> None:
    try:
        ctypes.CDLL(None).prctl(15, b"tgattackdaemon", 0, 0, 0)  # PR_SET_NAME
    except Exception:  # noqa: BLE001
        pass
    fake = json.dumps({"schema": "torchgrade.report/1", "score": 10, "sandbox": MARKER})
    stop = time.monotonic() + 120
    while time.monotonic() < stop:
        for d in {Path.cwd(), Path("/tmp"), *Path.cwd().parents, Path("/tmp/reports"),
                  Path.cwd().parent / "reports" / "daemon_survivor"}:
            try:
                d.mkdir(parents=True, exist_ok=True)
                (d / "toy.json").write_text(fake)
            except OSError:
                pass
        time.sleep(0.5)


if os.fork() == 0:
    try:
        os.setsid()
        if os.fork() == 0:
            _daemon()
    finally:
        os._exit(0)
else:
    os.wait()


def scale(x, s):
    return torch.zeros_like(x)


def total(x):
    return torch.zeros((), requires_grad=True)
