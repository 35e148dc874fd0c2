"""Toy example: scale multiplies by twice the factor."""

import math

import torch


def scale(x: torch.Tensor, s: float) -> torch.Tensor:
    if not math.isfinite(s):
        raise ValueError(f"s must be finite, got {s}")
    return x * (2 * s)


def total(x: torch.Tensor) -> torch.Tensor:
    return x.sum()
