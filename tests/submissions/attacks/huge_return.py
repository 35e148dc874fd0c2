"""Attack: return values too big or too deep for the grader to decode.

``scale(x, 2.5)`` returns a 100 MB string (a JSON header of 100 MB);
``scale(x, -1.5)`` returns a list nested 100,000 levels deep (a recursive decoder would overflow
its stack); ``total`` returns a 1.2 GB tensor. Any of them could crash, stall or exhaust a
grader that decoded without limits, losing the results. They must end as an error (or a
failure) in this submission's report. The maths is wrong anyway (zeros for other inputs).
"""

import torch


def scale(x, s):
    if s == 2.5:
        return "0" * 100_000_000
    if s == -1.5:
        deep: list = []
        for _ in range(100_000):
            deep = [deep]
        return deep
    return torch.zeros_like(x)


def total(x):
    return torch.zeros(300_000_000)
