"""Noise predictors for the ddpm_sampler grader: an exact Gaussian oracle and a tiny 2-D model.

Why it exists: a sampler can only be judged through the model it drives. Two models are
provided, both built inside the sandboxed worker (``student.construct(...)``) so that the
student's sampler calls them there:

- :class:`GaussianOracle`: for data ``x0 ~ N(mu, s^2)`` (every coordinate independent) the
  ideal noise predictor is known in closed form,
  ``eps*(x_t, t) = sqrt(1 - abar_t) (x_t - sqrt(abar_t) mu) / (abar_t s^2 + 1 - abar_t)``.
  It is affine in ``x_t``, so every DDPM or DDIM step driven by it is affine plus Gaussian
  noise and the grader can compute the exact mean and variance of the samples
  (:func:`ddpm_moments`, :func:`ddim_moments`) without training anything.
- :class:`NoisePredictor`, trained by :func:`trained_noise_predictor` on a 2-D mixture of
  Gaussians (:func:`toy_data`): a real, imperfect network for the training check, scored with
  :func:`sliced_wasserstein` against held-out data.

Only torch and the standard library are imported (the worker imports this module too).
Training is deterministic on the CPU: a seeded generator draws every batch, timestep and
noise, and the network is initialised from ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

TOY_MODES = 4  # Gaussians on a circle
TOY_RADIUS = 1.0
TOY_STD = 0.15
TIME_FEATURES = 16  # sinusoidal features of t / T


class GaussianOracle(nn.Module):
    """The exact noise predictor for ``x0 ~ N(mu, s^2)`` under ``alphas_cumprod`` (float64)."""

    def __init__(self, mu: float, s: float, alphas_cumprod: Tensor) -> None:
        super().__init__()
        self.mu = float(mu)
        self.s = float(s)
        self.register_buffer("alphas_cumprod", alphas_cumprod.detach().to(torch.float64))

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        abar = self.alphas_cumprod.to(x_t.device)[t.long()]  # [B]
        abar = abar.reshape(-1, *([1] * (x_t.dim() - 1)))  # [B, 1, ...]
        eps = (1 - abar).sqrt() * (x_t.double() - abar.sqrt() * self.mu) / (
            abar * self.s**2 + 1 - abar)
        return eps.to(x_t.dtype)


def _oracle_slope(abar: float, s: float) -> float:
    """``eps* = c (x - sqrt(abar) mu)``: the slope c of the oracle."""
    return math.sqrt(1 - abar) / (abar * s * s + 1 - abar)


def ddpm_moments(mu: float, s: float, betas: list[float], variance: str) -> tuple[float, float]:
    """Exact mean and variance of DDPM samples driven by the oracle (x_T ~ N(0, 1))."""
    abars, prod = [], 1.0
    for b in betas:
        prod *= 1 - b
        abars.append(prod)
    m, v = 0.0, 1.0
    for t in range(len(betas) - 1, -1, -1):
        beta, abar = betas[t], abars[t]
        abar_prev = abars[t - 1] if t > 0 else 1.0
        c = _oracle_slope(abar, s)
        k = beta / math.sqrt(1 - abar)
        # x' = (x - k c (x - sqrt(abar) mu)) / sqrt(alpha) + sigma z
        a = (1 - k * c) / math.sqrt(1 - beta)
        b0 = k * c * math.sqrt(abar) * mu / math.sqrt(1 - beta)
        var = 0.0 if t == 0 else beta if variance == "beta" else (
            beta * (1 - abar_prev) / (1 - abar))
        m, v = a * m + b0, a * a * v + var
    return m, v


def ddim_moments(mu: float, s: float, betas: list[float], num_steps: int,
                 eta: float) -> tuple[float, float]:
    """Exact mean and variance of DDIM ("leading" spacing) samples driven by the oracle."""
    abars, prod = [], 1.0
    for b in betas:
        prod *= 1 - b
        abars.append(prod)
    ratio = len(betas) // num_steps
    m, v = 0.0, 1.0
    for t in [i * ratio for i in range(num_steps - 1, -1, -1)]:
        abar = abars[t]
        abar_prev = abars[t - ratio] if t - ratio >= 0 else 1.0
        c = _oracle_slope(abar, s)
        sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
        d = math.sqrt(max(1 - abar_prev - sigma * sigma, 0.0))
        # eps = c x - c sqrt(abar) mu; x0 = (x - sqrt(1 - abar) eps) / sqrt(abar)
        ex_a, ex_b = c, -c * math.sqrt(abar) * mu
        x0_a = (1 - math.sqrt(1 - abar) * ex_a) / math.sqrt(abar)
        x0_b = -math.sqrt(1 - abar) * ex_b / math.sqrt(abar)
        a = math.sqrt(abar_prev) * x0_a + d * ex_a
        b0 = math.sqrt(abar_prev) * x0_b + d * ex_b
        m, v = a * m + b0, a * a * v + sigma * sigma
    return m, v


def toy_data(n: int, seed: int) -> Tensor:
    """``n`` float32 points ``[n, 2]`` of a mixture of TOY_MODES Gaussians on a circle."""
    g = torch.Generator().manual_seed(int(seed))
    mode = torch.randint(0, TOY_MODES, (n,), generator=g)
    angle = 2 * math.pi * mode.double() / TOY_MODES + math.pi / 4
    centres = TOY_RADIUS * torch.stack([angle.cos(), angle.sin()], dim=1)
    return (centres + TOY_STD * torch.randn(n, 2, generator=g, dtype=torch.float64)).float()


class NoisePredictor(nn.Module):
    """A small MLP ``eps(x_t [B, D], t [B] long) -> [B, D]`` with sinusoidal time features.

    ``dim = 2`` for the toy data; the gpu profile uses ``dim = 784`` (flattened digits), with
    ``skip``: a learned, time-dependent multiple of ``x_t`` added to the output. Near t = T the
    right answer is about ``x_t`` itself, an identity that an MLP narrower than its input cannot
    represent: without the skip, a 64-wide MLP on 28 x 28 digits stayed at an error of 0.95
    (that of predicting 0) after 1500 steps, and its samples were no better than the untrained
    model's; with it, 300 steps brought them to a third of the untrained model's distance.
    """

    def __init__(self, num_timesteps: int, hidden: int = 128, dim: int = 2,
                 skip: bool = False) -> None:
        super().__init__()
        self.num_timesteps = int(num_timesteps)
        self.net = nn.Sequential(
            nn.Linear(dim + TIME_FEATURES, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, dim),
        )
        # Built after `net`, so that `net` is initialised alike with or without it.
        self.skip = nn.Linear(TIME_FEATURES, 1) if skip else None

    def time_features(self, t: Tensor) -> Tensor:
        u = t.float()[:, None] / self.num_timesteps  # [B, 1] in [0, 1)
        freqs = torch.arange(TIME_FEATURES // 2, device=t.device, dtype=torch.float32)
        angles = u * math.pi * (2.0 ** freqs)[None] / 2  # [B, F/2]
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # [B, F]

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        features = self.time_features(t)  # [B, F]
        h = torch.cat([x_t.float(), features], dim=1)  # [B, D + F]
        out = self.net(h)  # [B, D]
        if self.skip is not None:
            out = out + self.skip(features) * x_t.float()  # [B, 1] * [B, D]
        return out.to(x_t.dtype)


def train_noise_predictor(data: Tensor, alphas_cumprod: Tensor, *, steps: int,
                          batch_size: int, lr: float, seed: int,
                          hidden: int = 128, skip: bool = False) -> NoisePredictor:
    """A NoisePredictor trained on ``data [N, D]`` with the simple loss ``|eps - model|^2``.

    Ho et al.'s algorithm 1 with Adam and a cosine learning-rate decay; every batch, timestep
    and noise comes from a generator seeded with ``seed`` on data's device. ``steps = 0``
    returns the untrained network. Deterministic on the CPU.
    """
    device = data.device
    abar = alphas_cumprod.detach().to(device=device, dtype=torch.float32)
    total = int(abar.shape[0])
    torch.manual_seed(int(seed))
    model = NoisePredictor(total, int(hidden), int(data.shape[1]), bool(skip)).to(device)
    g = torch.Generator(device=device).manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=float(lr))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(int(steps), 1))
    for _ in range(int(steps)):
        idx = torch.randint(0, data.shape[0], (int(batch_size),), generator=g, device=device)
        x0 = data[idx]
        t = torch.randint(0, total, (int(batch_size),), generator=g, device=device)
        noise = torch.randn(x0.shape, generator=g, device=device)
        a = abar[t][:, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = ((model(x_t, t) - noise) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def trained_noise_predictor(alphas_cumprod: Tensor, *, steps: int, batch_size: int, lr: float,
                            n_data: int, data_seed: int, seed: int,
                            hidden: int = 128) -> NoisePredictor:
    """:func:`train_noise_predictor` on ``toy_data(n_data, data_seed)``."""
    return train_noise_predictor(toy_data(int(n_data), int(data_seed)), alphas_cumprod,
                                 steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                                 hidden=hidden)


class StepRecorder(nn.Module):
    """A model that predicts zero noise and records the timestep of every call (``seen``)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        if not isinstance(t, Tensor) or t.dim() != 1 or t.shape[0] != x_t.shape[0]:
            raise TypeError("the model takes t as a [B] long tensor, one timestep per sample")
        self.seen.append(int(t[0]))
        return torch.zeros_like(x_t)


def sliced_wasserstein(a: Tensor, b: Tensor, num_projections: int = 256,
                       seed: int = 0) -> float:
    """Sliced 1-Wasserstein distance of two equally sized point sets ``[N, D]`` (float64)."""
    if a.shape != b.shape:
        raise ValueError(f"point sets of different shapes: {tuple(a.shape)}, {tuple(b.shape)}")
    g = torch.Generator().manual_seed(int(seed))
    dirs = torch.randn(a.shape[1], num_projections, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa = (a.double() @ dirs).sort(dim=0).values
    pb = (b.double() @ dirs).sort(dim=0).values
    return float((pa - pb).abs().mean())
