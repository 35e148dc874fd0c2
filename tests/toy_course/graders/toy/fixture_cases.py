"""Public fixture cases of the toy grader, computed from the reference."""

import torch


def build(reference):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, generator=g)
    return {"scale": {"x": x, "s": 2.5, "expected": reference.scale(x, 2.5)}}
