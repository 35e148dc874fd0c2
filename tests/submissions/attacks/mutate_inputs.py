"""Attack: mutate the inputs in place so that later comparisons agree with a wrong answer.

``scale`` zeroes its input tensor and returns that very tensor; ``total`` zeroes its input and
returns its (now zero) sum. A grader that passed its own tensors and computed the reference
afterwards, from the same objects, would compare zeros with zeros and pass. It also tries to
overwrite any tensor stored as a default argument or global. The maths is wrong.
"""

import torch


def scale(x, s):
    x.zero_()
    if isinstance(s, torch.Tensor):
        s.zero_()
    return x


def total(x):
    with torch.no_grad():
        x.zero_()
    return x.sum()
