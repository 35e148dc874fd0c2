"""Is the ddpm_sampler reference right? Fast checks against independent computations.

The grader trusts ``solutions/ddpm_sampler/ddpm_sampler.py`` value for value, so it is checked
here without the sandbox, in float64 against values computed by hand (diffusers is not a
dependency): the schedules against their formulas, one DDPM step against the posterior
q(x_{t-1} | x_t, x0), the samplers' moments against the Gaussian oracle's exact recursion, and
DDIM's eta = 1 against DDPM's beta_tilde on the full timestep grid.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from torchgrade.course import toy2d

ROOT = Path(__file__).resolve().parents[1]


def _load():
    path = ROOT / "solutions" / "ddpm_sampler" / "ddpm_sampler.py"
    spec = importlib.util.spec_from_file_location("ddpm_sampler_reference_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ref = _load()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_linear_schedule_is_float64_linspace():
    """Is the linear schedule linspace(beta_start, beta_end, T) in float64?"""
    betas = ref.make_beta_schedule(1000)
    assert betas.dtype == torch.float64
    assert betas[0] == 1e-4 and abs(float(betas[-1]) - 0.02) < 1e-17
    assert torch.allclose(betas[1:] - betas[:-1], torch.full((999,), 0.0199 / 999,
                                                             dtype=torch.float64))


def test_cosine_schedule_matches_the_formula_and_clips():
    """Does the cosine schedule follow Nichol & Dhariwal (offset 0.008) and clip at 0.999?"""
    total = 1000
    betas = ref.make_beta_schedule(total, "cosine")

    def f(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    assert float(betas[0]) == pytest.approx(1 - f(1 / total) / f(0), rel=1e-12)
    assert float(betas[-1]) == 0.999  # 1 - f(1)/f(1 - 1/T) is about 1: clipped
    assert bool((betas[1:] >= betas[:-1]).all()) and bool((betas > 0).all())
    # abar_t / abar(0) is the normalised cosine curve before the clip bites
    abar = torch.cumprod(1 - betas, 0)
    assert float(abar[499]) == pytest.approx(f(0.5) / f(0), rel=1e-10)


def test_schedule_fields():
    """Are alphas, alphas_cumprod and alphas_cumprod_prev (prev[0] = 1) right?"""
    betas = torch.tensor([0.1, 0.2, 0.5], dtype=torch.float64)
    s = ref.DiffusionSchedule.from_betas(betas)
    assert s.alphas.tolist() == pytest.approx([0.9, 0.8, 0.5])
    assert s.alphas_cumprod.tolist() == pytest.approx([0.9, 0.72, 0.36])
    assert s.alphas_cumprod_prev.tolist() == pytest.approx([1.0, 0.9, 0.72])


def test_q_sample_and_predict_x0_invert_each_other():
    """Does predict_x0 undo q_sample, with one timestep per sample?"""
    s = ref.DiffusionSchedule.from_betas(ref.make_beta_schedule(100, "cosine"))
    x0 = torch.randn(5, 3, 2, generator=_gen(1), dtype=torch.float64)
    eps = torch.randn(5, 3, 2, generator=_gen(2), dtype=torch.float64)
    t = torch.tensor([0, 10, 50, 98, 99])
    x_t = ref.q_sample(x0, t, eps, s)
    a = s.alphas_cumprod[50]  # t[2] = 50
    assert torch.allclose(x_t[2], a.sqrt() * x0[2] + (1 - a).sqrt() * eps[2])
    assert torch.allclose(ref.predict_x0(x_t, t, eps, s), x0, atol=1e-9)


def test_ddpm_step_is_the_posterior():
    """Is one step the posterior mean (eq. 7) plus sqrt(variance) times the one draw?"""
    s = ref.DiffusionSchedule.from_betas(ref.make_beta_schedule(50, "linear", 1e-3, 0.1))
    x = torch.randn(4, 3, generator=_gen(3), dtype=torch.float64)
    eps = torch.randn(4, 3, generator=_gen(4), dtype=torch.float64)
    t = 20
    b, ab, abp = float(s.betas[t]), float(s.alphas_cumprod[t]), float(s.alphas_cumprod[t - 1])
    x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    mean = math.sqrt(abp) * b / (1 - ab) * x0 + math.sqrt(1 - b) * (1 - abp) / (1 - ab) * x
    z = torch.randn(x.shape, generator=_gen(5), dtype=x.dtype)
    for variance, var in (("beta", b), ("beta_tilde", b * (1 - abp) / (1 - ab))):
        got = ref.ddpm_step(eps, t, x, s, _gen(5), variance=variance)
        assert torch.allclose(got, mean + math.sqrt(var) * z, rtol=1e-12, atol=1e-12)
    # t = 0: the mean, whatever the generator
    a0 = ref.ddpm_step(eps, 0, x, s, _gen(1), variance="beta")
    assert torch.equal(a0, ref.ddpm_step(eps, 0, x, s, _gen(2), variance="beta"))
    # clip_sample: the posterior form with x0 clamped
    got = ref.ddpm_step(eps, t, 5 * x, s, _gen(5), clip_sample=True)
    x0c = ((5 * x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
    want = (math.sqrt(abp) * b / (1 - ab) * x0c + math.sqrt(1 - b) * (1 - abp) / (1 - ab) * 5 * x
            + math.sqrt(b * (1 - abp) / (1 - ab)) * z)
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)


def test_ddim_eta1_on_the_full_grid_is_ddpm_beta_tilde():
    """With num_steps = T and eta = 1, is DDIM exactly DDPM with beta_tilde (same draws)?"""
    s = ref.DiffusionSchedule.from_betas(ref.make_beta_schedule(30, "cosine"))
    oracle = toy2d.GaussianOracle(0.3, 0.5, s.alphas_cumprod)
    a = ref.ddim_sample(oracle, (6, 2), s, num_steps=30, eta=1.0, generator=_gen(9))
    b = ref.ddpm_sample(oracle, (6, 2), s, generator=_gen(9))
    # DDIM draws once more (at t = 0, with sigma = 0): outputs agree up to float32 rounding
    assert torch.allclose(a, b, atol=1e-5)


def test_leading_timesteps():
    """Are DDIM's timesteps arange(num_steps) * (T // num_steps), reversed?"""
    assert ref.ddim_timesteps(100, 7) == list(range(84, -1, -14))
    assert ref.ddim_timesteps(1000, 50)[:2] == [980, 960]


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_ddpm_oracle_moments(variance):
    """Do DDPM samples driven by the oracle have the recursion's exact moments?"""
    betas = ref.make_beta_schedule(200, "cosine")
    s = ref.DiffusionSchedule.from_betas(betas)
    oracle = toy2d.GaussianOracle(0.5, 0.1, s.alphas_cumprod)
    x = ref.ddpm_sample(oracle, (2000, 4), s, generator=_gen(11), variance=variance).double()
    m, v = toy2d.ddpm_moments(0.5, 0.1, betas.tolist(), variance)
    n = x.numel()
    assert abs(float(x.mean()) - m) < 5 * math.sqrt(v / n)
    assert abs(float(x.std()) - math.sqrt(v)) < 5 * math.sqrt(v / (2 * n))


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_oracle_moments(eta):
    """Do DDIM samples driven by the oracle have the recursion's exact moments?"""
    betas = ref.make_beta_schedule(1000, "cosine")
    s = ref.DiffusionSchedule.from_betas(betas)
    oracle = toy2d.GaussianOracle(0.5, 0.05, s.alphas_cumprod)
    x = ref.ddim_sample(oracle, (2000, 4), s, 50, eta, generator=_gen(12)).double()
    m, v = toy2d.ddim_moments(0.5, 0.05, betas.tolist(), 50, eta)
    n = x.numel()
    assert abs(float(x.mean()) - m) < 5 * math.sqrt(v / n)
    assert abs(float(x.std()) - math.sqrt(v)) < 5 * math.sqrt(v / (2 * n))


def test_ddim_eta0_is_deterministic():
    """With eta = 0, is the output fixed by the seed?"""
    s = ref.DiffusionSchedule.from_betas(ref.make_beta_schedule(100))
    oracle = toy2d.GaussianOracle(0.0, 1.0, s.alphas_cumprod)
    a = ref.ddim_sample(oracle, (3, 2), s, 10, 0.0, generator=_gen(1))
    b = ref.ddim_sample(oracle, (3, 2), s, 10, 0.0, generator=_gen(1))
    assert torch.equal(a, b)


@pytest.mark.parametrize("call, name", [
    (lambda: ref.make_beta_schedule(0), "num_timesteps"),
    (lambda: ref.make_beta_schedule(10, "sigmoid"), "kind"),
    (lambda: ref.make_beta_schedule(10, "linear", 0.0, 0.02), "beta_start"),
    (lambda: ref.ddpm_step(torch.zeros(2), 5, torch.zeros(2),
                           ref.DiffusionSchedule.from_betas(ref.make_beta_schedule(5))), "t"),
    (lambda: ref.ddpm_step(torch.zeros(2), 1, torch.zeros(2),
                           ref.DiffusionSchedule.from_betas(ref.make_beta_schedule(5)),
                           variance="large"), "variance"),
    (lambda: ref.ddim_sample(None, (2,), ref.DiffusionSchedule.from_betas(
        ref.make_beta_schedule(5)), 2, eta=float("nan")), "eta"),
    (lambda: ref.ddim_sample(None, (2,), ref.DiffusionSchedule.from_betas(
        ref.make_beta_schedule(5)), 6), "num_steps"),
])
def test_bad_arguments_name_the_argument(call, name):
    """Do bad arguments raise ValueError naming the argument?"""
    with pytest.raises(ValueError, match=name):
        call()
