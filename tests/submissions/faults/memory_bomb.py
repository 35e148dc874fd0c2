"""Fault: ``scale`` asks for 100 GB at once; ``total`` grows a list of 1 GB blocks forever.

Both must fail inside the worker's memory limits (an error in this report), never take memory
from the grader or the rest of the batch.
"""

import torch


def scale(x, s):
    big = torch.empty(25 * 2**30, dtype=torch.float32)  # 100 GB
    return big[: x.numel()].reshape(x.shape)


def total(x):
    hoard = []
    while True:
        hoard.append(torch.empty(256 * 2**20))  # 1 GB more address space each time
