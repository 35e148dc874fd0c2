"""Fault: ``sys.exit(3)`` at import (a script that ends itself).

SystemExit must not end the worker silently or look like success: every check is an error that
says the submission cannot be imported.
"""

import sys

import torch

sys.exit(3)


def scale(x, s):
    return x * s


def total(x):
    return x.sum()
