"""Fault: ``scale`` never returns (an endless loop); ``total`` is right.

Every check calling ``scale`` must end as ``timeout`` within its time limit, and ``total`` must
still be graded (and pass) on a fresh worker.
"""

import torch


def scale(x, s):
    while True:
        pass


def total(x):
    return x.sum()
