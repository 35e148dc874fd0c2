"""Fault: raises at import (a top-level experiment that crashes).

Every check is an error that names the exception and the line.
"""

import torch

raise RuntimeError("experiment crashed: dataset not found")


def scale(x, s):
    return x * s


def total(x):
    return x.sum()
