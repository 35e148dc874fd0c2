"""Fault: a top-level "training loop" that never finishes (``time.sleep(10**6)`` at import).

The import must be abandoned after the rubric's ``import_timeout_s`` and every check reported as
an error that says the import took too long.
"""

import time

import torch


def train():
    time.sleep(10**6)


train()


def scale(x, s):
    return x * s


def total(x):
    return x.sum()
