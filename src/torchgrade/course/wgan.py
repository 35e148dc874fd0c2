"""Course code for the wgan_gp assignment: critics with known answers, the ring toy and MNIST.

Why it exists: the grader needs networks whose gradient penalty it knows exactly, the same
small generator/critic pair for every submission's training check, and data samplers that
live in the sandboxed worker (``student.construct("torchgrade.course.wgan:...", ...)``) so
that the student's ``train_wgan_gp`` can call them. The trusted grader builds the same
classes to score the trained weights, which come back as a plain ``state_dict``.

- :class:`LinearCritic` ``D(x) = w . flatten(x) + b``: the penalty is ``lambda (|w| - 1)^2``
  for every interpolate, whatever ``eps`` is.
- :class:`HalfSquareCritic` ``D(x) = |flatten(x)|^2 / 2``: the gradient at ``x`` is ``x``.
- :class:`ToyGenerator` / :class:`ToyCritic`: small ReLU MLPs for the 8-Gaussians ring of the
  WGAN-GP paper (Gulrajani et al. 2017, section 5.1), whose ring the grader randomises
  (:class:`RingSampler`, :func:`ring_centres`, :func:`ring_scores`).
- :class:`ConstantGenerator` and :class:`FixedSampler`: a generator and data that make a
  training run independent of every random draw, so its history can be compared exactly.
- :class:`MnistGenerator`: the course text's MNIST generator (its BatchNorm is fine in a
  generator), and :class:`TensorSampler`, random batches of a tensor, for the GPU profile.
- :func:`module_kinds`: the class names inside a module, as plain data for the grader.

Only torch is imported: the worker imports this module too.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def module_kinds(module: nn.Module) -> list[str]:
    """The class names of ``module`` and all its submodules, sorted (plain data)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module_kinds needs an nn.Module, got {type(module).__name__}")
    return sorted({type(m).__name__ for m in module.modules()})


class LinearCritic(nn.Module):
    """``D(x) = flatten(x) @ w + b`` -> ``[B, 1]``; its input gradient is ``w`` everywhere."""

    def __init__(self, weight: Tensor, bias: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone().reshape(-1))  # [D]
        self.bias = nn.Parameter(torch.tensor(float(bias), dtype=weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return (x.reshape(x.shape[0], -1) @ self.weight + self.bias).unsqueeze(1)  # [B, 1]


class HalfSquareCritic(nn.Module):
    """``D(x) = |flatten(x)|^2 / 2`` -> ``[B, 1]``; its input gradient at ``x`` is ``x``."""

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * x.reshape(x.shape[0], -1).pow(2).sum(dim=1, keepdim=True)  # [B, 1]


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ToyGenerator(nn.Module):
    """``z [B, latent_dim] -> points [B, 2]``: a ReLU MLP with ``depth`` hidden layers."""

    def __init__(self, latent_dim: int = 2, hidden: int = 64, depth: int = 3) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = _mlp([latent_dim, *[hidden] * depth, 2])

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ToyCritic(nn.Module):
    """``points [B, 2] -> scores [B, 1]``: a ReLU MLP, no sigmoid, no normalisation."""

    def __init__(self, hidden: int = 64, depth: int = 3) -> None:
        super().__init__()
        self.net = _mlp([2, *[hidden] * depth, 1])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def ring_centres(n_modes: int, radius: float, centre: tuple[float, float],
                 phase: float = 0.0) -> Tensor:
    """The ``n_modes`` mode centres ``[n_modes, 2]`` evenly spaced on a circle."""
    angles = phase + 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    pts = torch.stack([angles.cos(), angles.sin()], dim=1) * radius
    return (pts + torch.tensor(centre, dtype=torch.float64)).float()  # [M, 2]


class RingSampler:
    """``sampler(batch_size) -> [batch_size, 2]``: a mixture of Gaussians on a ring.

    Each point picks a mode uniformly, then adds ``std * N(0, I)``; the draws come from the
    sampler's own seeded generator, so every submission sees the same data stream.
    """

    def __init__(self, n_modes: int = 8, radius: float = 2.0,
                 centre: tuple[float, float] = (0.0, 0.0), std: float = 0.02,
                 phase: float = 0.0, seed: int = 0) -> None:
        self.centres = ring_centres(int(n_modes), float(radius), tuple(centre), float(phase))
        self.std = float(std)
        self.gen = torch.Generator().manual_seed(int(seed))

    def __call__(self, batch_size: int) -> Tensor:
        idx = torch.randint(len(self.centres), (int(batch_size),), generator=self.gen)
        noise = torch.randn(int(batch_size), 2, generator=self.gen)
        return self.centres[idx] + self.std * noise  # [B, 2]


def ring_scores(samples: Tensor, centres: Tensor, std: float, *, k: float = 3.0,
                min_share: float = 0.25) -> dict[str, float]:
    """Mode coverage and sample quality of generated points (the unrolled-GAN/VEEGAN metrics).

    A sample is *high quality* when it lies within ``k * std`` of its nearest mode; a mode is
    *covered* when it holds at least ``min_share`` of its fair share (``N / n_modes``) of the
    high-quality samples. Returns ``quality`` (the fraction of high-quality samples),
    ``covered`` (the number of covered modes), ``n_modes`` and ``worst_share`` (the smallest
    mode's count over its fair share).
    """
    samples = samples.detach().to("cpu", torch.float64)
    centres = centres.to(torch.float64)
    dist = torch.cdist(samples, centres)  # [N, M]
    nearest, idx = dist.min(dim=1)
    good = nearest <= k * std
    counts = torch.bincount(idx[good], minlength=len(centres)).double()  # [M]
    fair = len(samples) / len(centres)
    finite = bool(torch.isfinite(samples).all())
    return {"quality": float(good.double().mean()) if finite else 0.0,
            "covered": int((counts >= min_share * fair).sum()) if finite else 0,
            "n_modes": len(centres),
            "worst_share": float(counts.min() / fair) if finite else 0.0}


class ConstantGenerator(nn.Module):
    """Ignores ``z``: every sample is the learnable point ``p`` -> ``[B, D]``."""

    def __init__(self, point: Tensor) -> None:
        super().__init__()
        self.point = nn.Parameter(point.detach().clone().reshape(1, -1))  # [1, D]

    def forward(self, z: Tensor) -> Tensor:
        return self.point.expand(z.shape[0], -1)  # [B, D]


class FixedSampler:
    """``sampler(batch_size)`` -> the first ``batch_size`` rows of ``data`` (no randomness)."""

    def __init__(self, data: Tensor) -> None:
        self.data = data.detach().clone()

    def __call__(self, batch_size: int) -> Tensor:
        return self.data[: int(batch_size)].clone()


class TensorSampler:
    """``sampler(batch_size)``: random rows of ``data`` (uint8 images are scaled to [-1, 1]).

    Draws indices from its own seeded generator on the CPU, then moves the batch to
    ``device``.
    """

    def __init__(self, data: Tensor, seed: int = 0, device: str = "cpu") -> None:
        self.data = data
        self.device = device
        self.gen = torch.Generator().manual_seed(int(seed))

    def __call__(self, batch_size: int) -> Tensor:
        idx = torch.randint(len(self.data), (int(batch_size),), generator=self.gen)
        batch = self.data[idx]
        if batch.dtype == torch.uint8:
            batch = batch.float() / 127.5 - 1.0
        return batch.to(self.device)


class MnistGenerator(nn.Module):
    """The course text's MNIST generator: ``z [B, latent_dim] -> images [B, 1, 28, 28]``
    in [-1, 1] (Linear -> BatchNorm1d -> ReLU -> 256x7x7 -> ConvTranspose to 14x14 -> 28x28,
    Tanh)."""

    def __init__(self, latent_dim: int = 100) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.project = nn.Sequential(nn.Linear(latent_dim, 256 * 7 * 7),
                                     nn.BatchNorm1d(256 * 7 * 7), nn.ReLU(True))
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(256, 128, kernel_size=4, stride=2, padding=1),  # 14x14
            nn.BatchNorm2d(128), nn.ReLU(True),
            nn.ConvTranspose2d(128, 1, kernel_size=4, stride=2, padding=1),  # 28x28
            nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z).view(-1, 256, 7, 7)  # [B, 256, 7, 7]
        return self.upsample(x)  # [B, 1, 28, 28]
