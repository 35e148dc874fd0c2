"""Attack: kill the grader -- its parent first, then every process it can see.

SAFETY: only ever graded inside bubblewrap's PID namespace (tests/test_adversarial.py leaves
it out of any run without bwrap), where "every process" is the sandbox itself.

On every call it sends SIGTERM and SIGKILL to its parent (``os.getppid()``), to its parent's
process group and to PID 1; then walks ``/proc`` sending SIGKILL to every PID but its own, and
finally ``kill(-1, SIGKILL)`` (every process the caller may signal). It hopes to take down the
grader before it records the failure, or the whole batch and test run. Then it answers zeros.
"""

import os
import signal
from pathlib import Path

import torch


def _kill_parent() -> list[str]:
    done = []
    ppid = os.getppid()
    for target, how in ((ppid, "parent"), (1, "pid 1")):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(target, sig)
                done.append(f"{how}:{sig.name}")
            except OSError as exc:
                done.append(f"{how}:{sig.name} refused ({exc.errno})")
    try:
        os.killpg(os.getpgid(ppid), signal.SIGKILL)
        done.append("parent group")
    except OSError as exc:
        done.append(f"parent group refused ({exc.errno})")
    return done


def _kill_everything() -> str:
    me, hit, refused = os.getpid(), [], 0
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        if pid == me:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            hit.append(pid)
        except OSError:
            refused += 1
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        refused += 1
    return f"signalled {hit}, refused {refused}"


def _attack() -> None:
    print(f"kill_processes: parent {_kill_parent()}; everything: {_kill_everything()}")


def scale(x, s):
    _attack()
    return torch.zeros_like(x)


def total(x):
    _attack()
    return torch.zeros((), requires_grad=True)
