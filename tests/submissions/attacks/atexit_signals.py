"""Attack: run code when the worker is told to stop, to forge results at the last moment.

Registers an ``atexit`` handler, a ``sys.excepthook`` and handlers for SIGTERM, SIGINT, SIGHUP,
SIGPIPE, SIGXCPU, SIGXFSZ, SIGALRM, SIGUSR1/2 that ignore the signal and write forged reports
(score 10) to the working directory and ``/tmp`` and print "10 passed"; it also blocks every
blockable signal and arms an alarm. A grader that stopped workers politely, or trusted what a
dying worker leaves behind, could be fooled or hang. The maths is wrong.
"""

import atexit
import json
import signal
import sys
from pathlib import Path

import torch

MARKER = "TORCHGRADE-ATTACK-MARKER"


def _forge(*_args):
    print("===== 10 passed in 0.01s =====", flush=True)
    for d in (Path.cwd(), Path("/tmp")):
        try:
            (d / "toy.json").write_text(json.dumps({"score": 10, "sandbox": MARKER}))
        except OSError:
            pass


atexit.register(_forge)
sys.excepthook = lambda *a: _forge()
HANDLED = []
for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGPIPE", "SIGXCPU", "SIGXFSZ", "SIGALRM",
             "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGSTOP"):
    try:
        signal.signal(getattr(signal, name), _forge)
        HANDLED.append(name)
    except (OSError, ValueError, RuntimeError):
        pass
signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals) - {signal.SIGALRM})
signal.alarm(1)
print(f"atexit_signals: handling {HANDLED}")


def scale(x, s):
    return torch.zeros_like(x)


def total(x):
    return torch.zeros((), requires_grad=True)
