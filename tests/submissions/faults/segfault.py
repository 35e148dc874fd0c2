"""Fault: ``scale(x, 2.5)`` (the public check's call) dereferences a NULL pointer
(``ctypes.string_at(0)``): SIGSEGV. Otherwise the solution is right.

The crash must be reported as an error saying the worker was killed by SIGSEGV, and the next
checks must be graded on a fresh worker, and pass.
"""

import ctypes

import torch


def scale(x, s):
    if s == 2.5:
        ctypes.string_at(0)
    if not torch.isfinite(torch.tensor(s)):
        raise ValueError("s must be finite")
    return x * s


def total(x):
    return x.sum()
