"""Fault: ``input()`` at import (waiting for a human).

stdin is empty in the worker, so ``input()`` raises EOFError at once: every check is an error
that says the submission cannot be imported.
"""

import torch

name = input("Your name: ")


def scale(x, s):
    return x * s


def total(x):
    return x.sum()
