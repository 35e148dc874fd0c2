"""Attack: ``os._exit(0)`` in the middle of every call.

A grader that ran the submission in its own process would stop before writing any failure, and
a runner that trusted exit status 0 would record success. Every call exits the process with
status 0 before answering; no maths is done at all.
"""

import os

import torch


def scale(x, s):
    os._exit(0)
    return torch.zeros_like(x)


def total(x):
    os._exit(0)
    return torch.zeros((), requires_grad=True)
