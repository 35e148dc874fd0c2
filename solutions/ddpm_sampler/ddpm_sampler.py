# BEGIN SOLUTION
"""Reference solution for `ddpm_sampler`: noise schedules, the forward process, DDPM and DDIM.

Why it exists: graders compare submissions with these functions value for value (the
schedules, ``q_sample``, ``predict_x0``, one DDPM step, whole seeded samplers). It follows the
contract of ``spec/assignments.md`` section 5 exactly: float64 schedules, timesteps T-1 ... 0
(t = 0 is the last step, as in diffusers), randomness passed in as a ``generator`` and drawn
with exactly the calls named there.

Papers: Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models" (NeurIPS 2020); Nichol,
Dhariwal, "Improved Denoising Diffusion Probabilistic Models" (ICML 2021, the cosine
schedule); Song, Meng, Ermon, "Denoising Diffusion Implicit Models" (ICLR 2021). The structure
follows diffusers' ``scheduling_ddpm.py`` and ``scheduling_ddim.py``.

A schedule crosses the grader's trust boundary as a plain record of its four fields, so every
function below reads only ``betas``, ``alphas``, ``alphas_cumprod`` and ``alphas_cumprod_prev``
from it (no methods, no ``isinstance``).
"""
# END SOLUTION
# BEGIN STUB
# """Assignment `ddpm_sampler`: noise schedules, the forward process, DDPM and DDIM sampling.
#
# Fill in every function that is not written yet. Keep the names and signatures exactly: the
# grader calls them directly (see README.md for the contract, the exact random draws
# and where the course text is wrong). Check your work with `torchgrade check ddpm_sampler`.
#
# A schedule reaches your functions as a plain record of its four fields: read only
# ``schedule.betas``, ``schedule.alphas``, ``schedule.alphas_cumprod`` and
# ``schedule.alphas_cumprod_prev`` (no methods, no ``isinstance`` checks) [schedule.record].
#
# The ids in square brackets name the README's rules (the checks name the ones they pin).
# Timesteps run T-1, ..., 0, and ``model(x_t, t_batch)`` with a ``[B]`` long ``t_batch`` returns
# eps [sampler.timesteps]. Results keep the input's shape, dtype and device [conv.keep]; inputs
# are never modified in place [conv.no-inplace]; bad arguments raise ValueError naming the
# argument [conv.names-argument].
# """
# END STUB

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import Tensor

COSINE_OFFSET = 0.008  # Nichol & Dhariwal's s: keeps beta_0 from being vanishingly small
COSINE_MAX_BETA = 0.999  # their clip: abar(1) = 0 would make the last beta exactly 1
VARIANCES = ("beta", "beta_tilde")


# BEGIN SOLUTION
def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value
# END SOLUTION


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
    # BEGIN SOLUTION
    steps = _positive_int(num_timesteps, "num_timesteps")
    if kind == "linear":
        if not (0.0 < beta_start < 1.0):  # NaN fails too
            raise ValueError(f"beta_start must be in (0, 1), got {beta_start!r}")
        if not (beta_start <= beta_end < 1.0):
            raise ValueError(f"beta_end must be in [beta_start, 1), got {beta_end!r}")
        return torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    if kind == "cosine":
        def abar(u: float) -> float:
            return math.cos((u + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2

        betas = [min(1 - abar((i + 1) / steps) / abar(i / steps), COSINE_MAX_BETA)
                 for i in range(steps)]
        return torch.tensor(betas, dtype=torch.float64)
    raise ValueError(f"kind must be 'linear' or 'cosine', got {kind!r}")
    # END SOLUTION
    # BEGIN STUB
    # raise NotImplementedError("ddpm_sampler.make_beta_schedule: not implemented yet (README.md)")
    # END STUB


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
        # BEGIN SOLUTION
        if not isinstance(betas, Tensor) or betas.dim() != 1 or betas.numel() == 0:
            got = tuple(betas.shape) if isinstance(betas, Tensor) else type(betas).__name__
            raise ValueError(f"betas must be a non-empty 1-D tensor, got {got}")
        betas = betas.detach().to(torch.float64)
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas must all be in (0, 1)")
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        one = torch.ones(1, dtype=torch.float64, device=betas.device)
        alphas_cumprod_prev = torch.cat([one, alphas_cumprod[:-1]])
        return cls(betas, alphas, alphas_cumprod, alphas_cumprod_prev)
        # END SOLUTION
        # BEGIN STUB
        # raise NotImplementedError("ddpm_sampler.from_betas: not implemented yet (README.md)")
        # END STUB


# BEGIN SOLUTION
def _num_steps_of(schedule: Any) -> int:
    return int(schedule.alphas_cumprod.shape[0])


def _index(t: object, length: int) -> int:
    if isinstance(t, Tensor) and t.dim() == 0 and not t.is_floating_point():
        t = int(t)
    if isinstance(t, bool) or not isinstance(t, int) or not (0 <= t < length):
        raise ValueError(f"t must be an int in [0, {length}), got {t!r}")
    return t


def _per_sample(values: Tensor, t: Any, like: Tensor) -> Tensor:
    """``values[t]`` shaped to broadcast against ``like`` ([B, 1, ...]), in its dtype/device."""
    if isinstance(t, Tensor) and t.dim() == 1:
        if t.shape[0] != like.shape[0] or t.is_floating_point():
            raise ValueError(f"t must be a [B] integer tensor with B = {like.shape[0]}, got "
                             f"{t.dtype} {tuple(t.shape)}")
        if bool(((t < 0) | (t >= values.shape[0])).any()):
            raise ValueError(f"t must be in [0, {values.shape[0]})")
        picked = values.to(t.device)[t.long()]
        return picked.reshape(-1, *([1] * (like.dim() - 1))).to(like.device, like.dtype)
    value = float(values[_index(t, values.shape[0])])
    return torch.tensor(value, dtype=like.dtype, device=like.device)
# END SOLUTION


def q_sample(x0: Tensor, t: Tensor, noise: Tensor, schedule: Any) -> Tensor:
    """Sample the forward process: ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``.

    ``x0`` and ``noise`` are ``[B, ...]`` of the same shape; ``t`` is a ``[B]`` long tensor
    (one timestep per sample). Returns a tensor of x0's shape, dtype and device
    [forward.q-sample].

    Raises:
        ValueError: a ``t`` outside [0, T) [forward.t-range].
    """
    # BEGIN SOLUTION
    if not isinstance(noise, Tensor) or noise.shape != x0.shape:
        raise ValueError(f"noise must have x0's shape {tuple(x0.shape)}")
    abar = _per_sample(schedule.alphas_cumprod, t, x0)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise  # Ho et al. eq. (4)
    # END SOLUTION
    # STUB: raise NotImplementedError("ddpm_sampler.q_sample: not implemented yet (README.md)")


def predict_x0(x_t: Tensor, t: Tensor | int, eps: Tensor, schedule: Any) -> Tensor:
    """Invert ``q_sample`` given the noise: ``x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``.

    ``t`` is an int (every sample at the same step) or a ``[B]`` long tensor
    [forward.predict-x0].

    Raises:
        ValueError: a ``t`` outside [0, T) [forward.t-range].
    """
    # BEGIN SOLUTION
    if not isinstance(eps, Tensor) or eps.shape != x_t.shape:
        raise ValueError(f"eps must have x_t's shape {tuple(x_t.shape)}")
    abar = _per_sample(schedule.alphas_cumprod, t, x_t)
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()  # Ho et al. eq. (15)
    # END SOLUTION
    # STUB: raise NotImplementedError("ddpm_sampler.predict_x0: not implemented yet (README.md)")


# BEGIN SOLUTION
def _variance(variance: str) -> str:
    if variance not in VARIANCES:
        raise ValueError(f"variance must be 'beta' or 'beta_tilde', got {variance!r}")
    return variance
# END SOLUTION


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
    # BEGIN SOLUTION
    t = _index(t, _num_steps_of(schedule))
    variance = _variance(variance)
    if not isinstance(eps, Tensor) or eps.shape != x_t.shape:
        raise ValueError(f"eps must have x_t's shape {tuple(x_t.shape)}")
    beta = float(schedule.betas[t])
    alpha = float(schedule.alphas[t])
    abar = float(schedule.alphas_cumprod[t])
    abar_prev = float(schedule.alphas_cumprod_prev[t])
    if clip_sample:
        # 1. predicted x0, eq. (15), clamped; 2. the posterior mean, eq. (7)
        x0_hat = predict_x0(x_t, t, eps, schedule).clamp(-1.0, 1.0)
        coef1 = math.sqrt(abar_prev) * beta / (1 - abar)
        coef2 = math.sqrt(alpha) * (1 - abar_prev) / (1 - abar)
        mean = coef1 * x0_hat + coef2 * x_t
    else:
        mean = (x_t - beta / math.sqrt(1 - abar) * eps) / math.sqrt(alpha)  # eq. (11)
    if t == 0:
        return mean  # the last step adds no noise and draws nothing
    var = beta if variance == "beta" else beta * (1 - abar_prev) / (1 - abar)
    noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
    return mean + math.sqrt(var) * noise
    # END SOLUTION
    # STUB: raise NotImplementedError("ddpm_sampler.ddpm_step: not implemented yet (README.md)")


# BEGIN SOLUTION
def _shape(shape: object) -> tuple[int, ...]:
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, tuple | list) or not shape or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise ValueError(f"shape must be a non-empty sequence of positive ints, got {shape!r}")
    return tuple(shape)
# END SOLUTION


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
    # BEGIN SOLUTION
    shape = _shape(shape)
    variance = _variance(variance)
    x = torch.randn(shape, generator=generator, device=device)
    for t in range(_num_steps_of(schedule) - 1, -1, -1):
        t_batch = torch.full((shape[0],), t, dtype=torch.long, device=x.device)
        eps = model(x, t_batch)
        x = ddpm_step(eps, t, x, schedule, generator=generator, variance=variance)
    return x
    # END SOLUTION
    # STUB: raise NotImplementedError("ddpm_sampler.ddpm_sample: not implemented yet (README.md)")


# BEGIN SOLUTION
def ddim_timesteps(num_timesteps: int, num_steps: int) -> list[int]:
    """The "leading" spacing: ``arange(num_steps) * (T // num_steps)``, largest first."""
    ratio = num_timesteps // num_steps
    return [i * ratio for i in range(num_steps - 1, -1, -1)]
# END SOLUTION


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
    # BEGIN SOLUTION
    total = _num_steps_of(schedule)
    steps = _positive_int(num_steps, "num_steps")
    if steps > total:
        raise ValueError(f"num_steps must be at most T = {total}, got {steps}")
    if isinstance(eta, bool) or not isinstance(eta, int | float) or not (0.0 <= eta <= 1.0):
        raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
    shape = _shape(shape)
    ratio = total // steps
    x = torch.randn(shape, generator=generator, device=device)
    for t in ddim_timesteps(total, steps):
        t_batch = torch.full((shape[0],), t, dtype=torch.long, device=x.device)
        eps = model(x, t_batch)
        abar = float(schedule.alphas_cumprod[t])
        abar_prev = float(schedule.alphas_cumprod[t - ratio]) if t - ratio >= 0 else 1.0
        # 1. predicted x0, eq. (12) first term; 2. sigma, eq. (16); 3. direction to x_t
        x0_hat = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
        sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
        direction = math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
        x = math.sqrt(abar_prev) * x0_hat + direction
        if eta > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device,
                                        dtype=x.dtype)
    return x
    # END SOLUTION
    # STUB: raise NotImplementedError("ddpm_sampler.ddim_sample: not implemented yet (README.md)")
