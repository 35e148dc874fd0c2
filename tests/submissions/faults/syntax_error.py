"""Fault: a syntax error (an unclosed parenthesis in ``scale``).

The report must say the submission cannot be imported, with the line, and every check must be an
error.
"""

import torch


def scale(x, s):
    return (x * s


def total(x):
    return x.sum()
