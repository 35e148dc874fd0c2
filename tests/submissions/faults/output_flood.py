"""Fault: prints 100 MB at import and on every call; otherwise a correct solution.

The flood must not stall grading, and the report's ``student_output`` must be capped (with a
note of how much was dropped). The maths is right, so it scores full marks.
"""

import sys

import torch

LINE = "flood " * 170 + "\n"  # ~1 KB


def _flood(mb: int) -> None:
    block = LINE * 1024  # ~1 MB
    for _ in range(mb):
        sys.stdout.write(block)
    sys.stdout.flush()


_flood(100)


def scale(x, s):
    if not torch.isfinite(torch.tensor(s)):
        raise ValueError("s must be finite")
    return x * s


def total(x):
    _flood(10)
    return x.sum()
