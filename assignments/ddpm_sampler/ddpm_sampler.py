"""Assignment `ddpm_sampler`: noise schedules, the forward process, DDPM and DDIM sampling.

Fill in every function that is not written yet. Keep the names and signatures exactly: the
grader calls them directly (see README.md for the contract, the exact random draws
and where the course text is wrong). Check your work with `torchgrade check ddpm_sampler`.

A schedule reaches your functions as a plain record of its four fields: read only
``schedule.betas``, ``schedule.alphas``, ``schedule.alphas_cumprod`` and
``schedule.alphas_cumprod_prev`` (no methods, no ``isinstance`` checks) [schedule.record].

The ids in square brackets name the README's rules (the checks name the ones they pin).
Timesteps run T-1, ..., 0, and ``model(x_t, t_batch)`` with a ``[B]`` long ``t_batch`` returns
eps [sampler.timesteps]. Results keep the input's shape, dtype and device [conv.keep]; inputs
are never modified in place [conv.no-inplace]; bad arguments raise ValueError naming the
argument [conv.names-argument].
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

COSINE_OFFSET = 0.008  # Nichol & Dhariwal's s: keeps beta_0 from being vanishingly small
COSINE_MAX_BETA = 0.999  # their clip: abar(1) = 0 would make the last beta exactly 1
VARIANCES = ("beta", "beta_tilde")


def make_beta_schedule(num_timesteps: int, kind: str = "linear", beta_start: float = 1e-4,
                       beta_end: float = 0.02) -> Tensor:
    """The betas of a noise schedule: a float64 tensor ``[T]``, every value in (0, 1).

    ``T = num_timesteps``. ``kind="linear"``: ``linspace(beta_start, beta_end, T)`` in float64
    (Ho et al.) [schedule.linear]. ``kind="cosine"``: Nichol & Dhariwal's, ``abar(u) =
    cos((u + 0.008) / 1.008 * pi / 2) ** 2`` and ``beta_i = min(1 - abar((i + 1) / T) /
    abar(i / T), 0.999)``; it ignores beta_start and beta_end [schedule.cosine].

    Raises:
        ValueError: ``num_timesteps`` < 1 [schedule.num-timesteps]; an unknown ``kind``
            [schedule.kind]; linear betas outside 0 < beta_start <= beta_end < 1
            [schedule.linear-range].
    """
    raise NotImplementedError("ddpm_sampler.make_beta_schedule: not implemented yet (README.md)")


@dataclasses.dataclass
class DiffusionSchedule:
    """The quantities of a noise schedule, all float64 ``[T]``.

    ``alphas = 1 - betas``; ``alphas_cumprod[t] = prod(alphas[:t + 1])`` (abar_t);
    ``alphas_cumprod_prev[t] = alphas_cumprod[t - 1]`` with ``alphas_cumprod_prev[0] = 1``
    [schedule.fields].
    """

    betas: Tensor
    alphas: Tensor
    alphas_cumprod: Tensor
    alphas_cumprod_prev: Tensor

    @classmethod
    def from_betas(cls, betas: Tensor) -> DiffusionSchedule:
        """Build the schedule from a 1-D tensor of betas in (0, 1) (converted to float64).

        Raises:
            ValueError: ``betas`` is not a non-empty 1-D tensor of values in (0, 1)
                [schedule.betas].
        """
        raise NotImplementedError("ddpm_sampler.from_betas: not implemented yet (README.md)")


def q_sample(x0: Tensor, t: Tensor, noise: Tensor, schedule: Any) -> Tensor:
    """Sample the forward process: ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``.

    ``x0`` and ``noise`` are ``[B, ...]`` of the same shape; ``t`` is a ``[B]`` long tensor
    (one timestep per sample). Returns a tensor of x0's shape, dtype and device
    [forward.q-sample].

    Raises:
        ValueError: a ``t`` outside [0, T) [forward.t-range].
    """
    raise NotImplementedError("ddpm_sampler.q_sample: not implemented yet (README.md)")


def predict_x0(x_t: Tensor, t: Tensor | int, eps: Tensor, schedule: Any) -> Tensor:
    """Invert ``q_sample`` given the noise: ``x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``.

    ``t`` is an int (every sample at the same step) or a ``[B]`` long tensor
    [forward.predict-x0].

    Raises:
        ValueError: a ``t`` outside [0, T) [forward.t-range].
    """
    raise NotImplementedError("ddpm_sampler.predict_x0: not implemented yet (README.md)")


def ddpm_step(eps: Tensor, t: int, x_t: Tensor, schedule: Any,
              generator: torch.Generator | None = None, variance: str = "beta_tilde",
              clip_sample: bool = False) -> Tensor:
    """One reverse step of DDPM: ``x_{t-1}`` from ``x_t`` and the predicted noise ``eps``.

    Mean ``(x_t - beta_t / sqrt(1 - abar_t) * eps) / sqrt(alpha_t)`` (Ho et al. eq. (11))
    [ddpm.mean]; with ``clip_sample`` the predicted x0 is clamped to [-1, 1] and the mean is the
    posterior's, ``coef1 * x0_hat + coef2 * x_t`` (eq. (7)) [ddpm.clip]. Variance ``beta_t``
    (``"beta"``) or ``beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)``
    (``"beta_tilde"``) [ddpm.variance]. At t = 0 nothing is drawn and the mean is returned
    [ddpm.last-step]; otherwise the noise is one call ``torch.randn(x_t.shape,
    generator=generator, device=x_t.device, dtype=x_t.dtype)`` [ddpm.draw].

    Raises:
        ValueError: an unknown ``variance`` [ddpm.variance-name]; ``t`` outside [0, T)
            [forward.t-range].
    """
    raise NotImplementedError("ddpm_sampler.ddpm_step: not implemented yet (README.md)")


@torch.no_grad()
def ddpm_sample(model: Any, shape: tuple[int, ...], schedule: Any,
                generator: torch.Generator | None = None, device: Any = None,
                variance: str = "beta_tilde") -> Tensor:
    """Ancestral sampling: ``x_T ~ N(0, I)``, then ``ddpm_step`` for t = T-1, ..., 0.

    ``x_T = torch.randn(shape, generator=generator, device=device)`` (float32; ``device=None``
    is the CPU), then only the steps' draws, in order [sampler.draws]; ``model(x_t, t_batch)``
    with ``t_batch`` a ``[B]`` long tensor returns eps. Driven by the Gaussian oracle, the
    samples' moments are the discretised sampler's [sampler.moments]; driven by the course's
    trained toy model, they match its data [sampler.toy2d] ([sampler.mnist] on a GPU).

    Raises:
        ValueError: an unknown ``variance`` [ddpm.variance-name].
    """
    raise NotImplementedError("ddpm_sampler.ddpm_sample: not implemented yet (README.md)")


@torch.no_grad()
def ddim_sample(model: Any, shape: tuple[int, ...], schedule: Any, num_steps: int = 50,
                eta: float = 0.0, generator: torch.Generator | None = None,
                device: Any = None) -> Tensor:
    """DDIM sampling (Song et al. eq. (12)) on the "leading" timesteps.

    Timesteps ``arange(num_steps) * (T // num_steps)`` reversed; from t to ``t_prev = t -
    T // num_steps`` (``abar_prev = 1`` when t_prev < 0) [ddim.spacing]: ``x0 = predict_x0``,
    ``sigma = eta sqrt((1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev))``, ``x_prev =
    sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z`` [ddim.update]. ``eta =
    0`` is deterministic after the first draw; with ``eta > 0`` each step draws ``z`` with one
    ``torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)`` after the
    model call [ddim.draws].

    Raises:
        ValueError: ``num_steps`` outside [1, T] [ddim.num-steps]; ``eta`` outside [0, 1], NaN
            included [ddim.eta].
    """
    raise NotImplementedError("ddpm_sampler.ddim_sample: not implemented yet (README.md)")
