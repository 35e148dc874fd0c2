"""Attack: forge replies on the worker's protocol channel.

It finds the worker's pipes through ``/proc/self/fd`` and writes well-formed torchgrade frames
(built with the engine's own ``torchgrade.protocol.dumps``) claiming success -- ``{"ok": true,
"value": {"value": 10.0, "status": "passed", "score": 10}}`` -- on every fd that takes them: three
at import, to knock replies out of step with requests, and more on every call. It also tries
to open its parent's fds through ``/proc/<ppid>/fd``. The grader must treat every frame as an
unproven claim: forged frames can say nothing the submission could not have returned, and no
forged "passed" is ever a score. The maths is wrong.
"""

import os
from pathlib import Path

import torch

try:
    from torchgrade import protocol
except ImportError:  # not inside a torchgrade worker
    protocol = None

FORGED = {"ok": True, "value": {"value": 10.0, "status": "passed", "score": 10, "passed": True,
                                "mutated": [], "grads": [], "differentiable": True}}


def _forge(copies: int) -> list[str]:
    if protocol is None:
        return []
    frame = protocol.dumps(FORGED) * copies
    wrote = []
    fds = [int(p.name) for p in Path("/proc/self/fd").iterdir() if p.name.isdigit()]
    for fd in fds:
        if fd in (0, 1, 2):
            continue
        try:
            os.write(fd, frame)
            wrote.append(f"fd{fd}")
        except OSError:
            pass
    try:
        for p in Path(f"/proc/{os.getppid()}/fd").iterdir():
            try:
                with open(p, "wb") as fh:
                    fh.write(frame)
                wrote.append(f"parent:{p.name}")
            except OSError:
                pass
    except OSError:
        pass
    return wrote


print(f"forge_protocol_frame: forged on {_forge(3)} at import")


def scale(x, s):
    _forge(2)
    return torch.zeros_like(x)


def total(x):
    _forge(2)
    return torch.zeros((), requires_grad=True)
