"""Fault: ``total`` is missing; ``scale`` is right.

The ``total`` check must be an error naming the missing function; the ``scale`` checks pass.
"""

import torch


def scale(x, s):
    if not torch.isfinite(torch.tensor(s)):
        raise ValueError("s must be finite")
    return x * s
