"""Fault: wrong return types -- a list, a numpy array, a string, a tensor of the wrong shape.

``scale`` returns a Python list for the public check's input (s = 2.5), a numpy array for the
hidden one (s = -1.5) and a string otherwise; ``total`` returns a tensor of the wrong shape
(summed over one dimension only). Each check must fail with "wrong type" / "wrong shape"
feedback that shows what came back; rejecting a NaN factor is right and earns its points.
"""

import math

import numpy as np


def scale(x, s):
    if not math.isfinite(s):
        raise ValueError("s must be finite")
    if s == 2.5:
        return (x * s).tolist()
    if s == -1.5:
        return np.asarray(x) * s
    return str(x * s)


def total(x):
    return x.sum(dim=0)
