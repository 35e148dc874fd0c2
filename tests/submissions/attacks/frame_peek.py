"""Attack: read the expected answer out of the caller's frames.

Every call walks ``sys._getframe(1)`` and up through ``f_back`` (``total`` also through
``inspect.stack()``), looking in each frame's ``f_locals`` and ``f_globals`` for tensors or
numbers named like the expected value (``expected``, ``reference``, ``want``, ``case``...), or
for a ``reference`` module; if it finds one it returns it. In a grader that called the student
directly, the check's own frame would hold the answer. It prints the names of the frames it
could see. Otherwise it returns zeros.
"""

import inspect
import sys

import torch

NAMES = ("expected", "reference", "ref", "want", "target", "case", "answer", "solution")


def _hunt(x, deep=False):
    seen, found = [], None
    frame = sys._getframe(1)
    while frame is not None:
        seen.append(frame.f_code.co_name)
        for scope in (frame.f_locals, frame.f_globals):
            for name, value in list(scope.items()):
                if name in NAMES and found is None:
                    if isinstance(value, dict) and "expected" in value:
                        value = value["expected"]
                    if isinstance(value, torch.Tensor) and value.shape == x.shape:
                        found = value
                    elif hasattr(value, "scale") and value is not sys.modules.get("toy"):
                        found = value.scale(x, 1.0)
        frame = frame.f_back
    if deep:
        seen += [info.function for info in inspect.stack()]
    print(f"frame_peek: frames seen: {seen[:40]}; found expected: {found is not None}")
    return found


def scale(x, s):
    found = _hunt(x)
    return found if found is not None else torch.zeros_like(x)


def total(x):
    _hunt(x, deep=True)
    return torch.zeros((), requires_grad=True)
