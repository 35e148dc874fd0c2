"""Example submission (correct): DDPM and DDIM written differently from the reference.

Coefficients are gathered as tensors, the DDPM mean is always the posterior form, and DDIM
walks a precomputed list of (t, t_prev) pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def make_beta_schedule(num_timesteps, kind="linear", beta_start=1e-4, beta_end=0.02):
    if not isinstance(num_timesteps, int) or isinstance(num_timesteps, bool) or num_timesteps < 1:
        raise ValueError("num_timesteps must be a positive integer")
    if kind == "cosine":
        u = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
        f = torch.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
        return torch.clamp(1 - f[1:] / f[:-1], max=0.999)
    if kind != "linear":
        raise ValueError(f"unknown kind {kind!r}")
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError("need 0 < beta_start <= beta_end < 1")
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


@dataclass
class DiffusionSchedule:
    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor

    @classmethod
    def from_betas(cls, betas):
        if not torch.is_tensor(betas) or betas.ndim != 1 or len(betas) == 0:
            raise ValueError("betas must be a 1-D tensor")
        b = betas.double()
        if (b <= 0).any() or (b >= 1).any():
            raise ValueError("betas must lie in (0, 1)")
        a = 1 - b
        ac = a.cumprod(0)
        prev = torch.ones_like(ac)
        prev[1:] = ac[:-1]
        return cls(b, a, ac, prev)


def _gather(values, t, x):
    if torch.is_tensor(t) and t.ndim == 1:
        if len(t) != len(x) or t.is_floating_point():
            raise ValueError("t must be a [B] long tensor")
        if bool(((t < 0) | (t >= len(values))).any()):
            raise ValueError("t out of range")
        return values[t.cpu()].to(x).view(len(x), *([1] * (x.ndim - 1)))
    t = int(t)
    if not 0 <= t < len(values):
        raise ValueError("t out of range")
    return values[t].to(x)


def q_sample(x0, t, noise, schedule):
    if noise.shape != x0.shape:
        raise ValueError("noise must match x0")
    ac = _gather(schedule.alphas_cumprod, t, x0)
    return torch.sqrt(ac) * x0 + torch.sqrt(1 - ac) * noise


def predict_x0(x_t, t, eps, schedule):
    if eps.shape != x_t.shape:
        raise ValueError("eps must match x_t")
    ac = _gather(schedule.alphas_cumprod, t, x_t)
    return (x_t - torch.sqrt(1 - ac) * eps) / torch.sqrt(ac)


def ddpm_step(eps, t, x_t, schedule, generator=None, variance="beta_tilde", clip_sample=False):
    if variance not in ("beta", "beta_tilde"):
        raise ValueError(f"unknown variance {variance!r}")
    if isinstance(t, bool) or not 0 <= int(t) < len(schedule.betas):
        raise ValueError("t out of range")
    t = int(t)
    b = schedule.betas[t].item()
    ac = schedule.alphas_cumprod[t].item()
    ac_prev = schedule.alphas_cumprod_prev[t].item()
    x0 = predict_x0(x_t, t, eps, schedule)
    if clip_sample:
        x0 = x0.clamp(-1, 1)
    mean = (ac_prev ** 0.5 * b / (1 - ac)) * x0 + (
        schedule.alphas[t].item() ** 0.5 * (1 - ac_prev) / (1 - ac)) * x_t
    if t > 0:
        std = (b if variance == "beta" else b * (1 - ac_prev) / (1 - ac)) ** 0.5
        z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        mean = mean + std * z
    return mean


def ddpm_sample(model, shape, schedule, generator=None, device=None, variance="beta_tilde"):
    if variance not in ("beta", "beta_tilde"):
        raise ValueError(f"unknown variance {variance!r}")
    with torch.no_grad():
        x = torch.randn(tuple(shape), generator=generator, device=device)
        for t in reversed(range(len(schedule.betas))):
            eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
            x = ddpm_step(eps, t, x, schedule, generator, variance)
    return x


def ddim_sample(model, shape, schedule, num_steps=50, eta=0.0, generator=None, device=None):
    T = len(schedule.alphas_cumprod)
    if not isinstance(num_steps, int) or not 1 <= num_steps <= T:
        raise ValueError(f"num_steps must be in [1, {T}]")
    if not (0 <= eta <= 1):
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    k = T // num_steps
    pairs = [(i * k, i * k - k) for i in reversed(range(num_steps))]
    with torch.no_grad():
        x = torch.randn(tuple(shape), generator=generator, device=device)
        for t, tp in pairs:
            eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
            ac = schedule.alphas_cumprod[t].item()
            acp = schedule.alphas_cumprod[tp].item() if tp >= 0 else 1.0
            var = eta**2 * (1 - acp) / (1 - ac) * (1 - ac / acp)
            x0 = (x - (1 - ac) ** 0.5 * eps) / ac**0.5
            x = acp**0.5 * x0 + max(1 - acp - var, 0.0) ** 0.5 * eps
            if eta > 0:
                z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = x + var**0.5 * z
    return x
