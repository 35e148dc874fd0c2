"""Is the wgan_gp reference right? Fast checks against independent computations.

The grader trusts ``solutions/wgan_gp/wgan_gp.py`` value for value, so it is checked here
without the sandbox: the penalty against the closed forms of a linear critic and of
``|x|^2 / 2``, against a per-sample loop with finite differences, the ``eps`` draw against
the contract's line, the losses' signs and detaching, the critic's shape and structure, and
the training loop's history on a run whose every value can be recomputed by hand.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from torchgrade.course import wgan

ROOT = Path(__file__).resolve().parents[1]


def _load():
    path = ROOT / "solutions" / "wgan_gp" / "wgan_gp.py"
    spec = importlib.util.spec_from_file_location("wgan_gp_reference_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ref = _load()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(5, 3), (4, 1, 4, 4), (2, 3, 2, 5)])
def test_linear_critic_penalty_is_closed_form(shape):
    w = 0.3 * torch.randn(*shape[1:], generator=_gen(1), dtype=torch.float64)
    critic = wgan.LinearCritic(w, 0.5)
    real = torch.randn(*shape, generator=_gen(2), dtype=torch.float64)
    fake = torch.randn(*shape, generator=_gen(3), dtype=torch.float64)
    gp = ref.gradient_penalty(critic, real, fake, 7.0, _gen(4))
    assert math.isclose(float(gp.detach()), 7.0 * (float(w.norm()) - 1) ** 2, rel_tol=1e-12)
    (dw,) = torch.autograd.grad(gp, [critic.weight])
    n = float(w.norm())
    torch.testing.assert_close(dw, 2 * 7.0 * (n - 1) * w.reshape(-1) / n)


def test_half_square_penalty_is_per_sample():
    x = 0.4 * torch.randn(6, 2, 3, 3, generator=_gen(5), dtype=torch.float64)
    gp = ref.gradient_penalty(wgan.HalfSquareCritic(), x, x.clone(), 10.0, _gen(6))
    norms = torch.stack([xi.flatten().norm() for xi in x])
    assert math.isclose(float(gp.detach()), 10.0 * float(((norms - 1) ** 2).mean()), rel_tol=1e-12)


def test_penalty_matches_a_loop_with_finite_differences():
    """A per-sample loop, each gradient by central differences, with the contract's eps."""
    torch.manual_seed(0)
    critic = wgan.ToyCritic(hidden=8, depth=2).double()
    real = torch.randn(4, 2, generator=_gen(7), dtype=torch.float64)
    fake = torch.randn(4, 2, generator=_gen(8), dtype=torch.float64)
    eps = torch.rand(4, 1, generator=_gen(9), dtype=torch.float64)
    total = 0.0
    for i in range(4):
        x = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).clone()
        grad = torch.zeros(2, dtype=torch.float64)
        for j in range(2):
            step = torch.zeros(2, dtype=torch.float64)
            step[j] = 1e-6
            with torch.no_grad():
                grad[j] = (critic((x + step)[None]) - critic((x - step)[None])).item() / 2e-6
        total += (float(grad.norm()) - 1) ** 2
    gp = ref.gradient_penalty(critic, real, fake, 10.0, _gen(9))
    assert math.isclose(float(gp.detach()), 10.0 * total / 4, rel_tol=1e-6)


def test_penalty_reaches_weights_and_fake_but_critic_loss_detaches_fake():
    torch.manual_seed(1)
    critic = wgan.ToyCritic(hidden=8, depth=2).double()
    real = torch.randn(5, 2, generator=_gen(10), dtype=torch.float64)
    fake = torch.randn(5, 2, generator=_gen(11), dtype=torch.float64).requires_grad_(True)
    gp = ref.gradient_penalty(critic, real, fake, 10.0, _gen(12))
    (g_weight,) = torch.autograd.grad(gp, [critic.net[0].weight])
    assert bool(g_weight.abs().sum() > 0)
    # A ReLU critic's input gradient is piecewise constant: use a smooth one for d GP / d fake.
    gp = ref.gradient_penalty(wgan.HalfSquareCritic(), real, fake, 10.0, _gen(12))
    (g_fake,) = torch.autograd.grad(gp, [fake])
    assert bool(g_fake.abs().sum() > 0)
    loss = ref.critic_loss(critic, real, fake, 10.0, _gen(12))
    (g_fake,) = torch.autograd.grad(loss, [fake], allow_unused=True)
    assert g_fake is None
    gen_loss = ref.generator_loss(critic, fake)
    (g_fake,) = torch.autograd.grad(gen_loss, [fake])
    assert bool(g_fake.abs().sum() > 0)


def test_losses_signs():
    critic = wgan.LinearCritic(torch.tensor([1.0, 0.0], dtype=torch.float64))
    real = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    fake = torch.tensor([[-1.0, 0.0]], dtype=torch.float64)
    # |w| = 1: no penalty; D(real) = 2, D(fake) = -1.
    assert float(ref.critic_loss(critic, real, fake)) == pytest.approx(-3.0)
    assert float(ref.generator_loss(critic, fake)) == pytest.approx(1.0)


def test_eps_draw_is_the_contract_line():
    real = torch.randn(3, 2, 2, 2, generator=_gen(13))
    fake = torch.randn(3, 2, 2, 2, generator=_gen(14))
    gp = ref.gradient_penalty(wgan.HalfSquareCritic(), real, fake, 1.0, _gen(15))
    eps = torch.rand(3, 1, 1, 1, generator=_gen(15))
    norms = (eps * real + (1 - eps) * fake).reshape(3, -1).norm(dim=1)
    assert math.isclose(float(gp.detach()), float(((norms - 1) ** 2).mean()), rel_tol=1e-6)


def test_critic_shape_and_structure():
    critic = ref.Critic()
    assert critic(torch.randn(4, 1, 28, 28)).shape == (4, 1)
    kinds = wgan.module_kinds(critic)
    assert not [k for k in kinds if "Sigmoid" in k or "BatchNorm" in k]
    with pytest.raises(ValueError, match="x"):
        critic(torch.randn(4, 28, 28))


@pytest.mark.parametrize("call", [
    lambda c: ref.gradient_penalty(c, torch.randn(4), torch.randn(4)),
    lambda c: ref.gradient_penalty(c, torch.randn(4, 2), torch.randn(4, 3)),
    lambda c: ref.gradient_penalty(c, torch.randn(4, 2), torch.randn(4, 2), -1.0),
    lambda c: ref.gradient_penalty(c, torch.randn(4, 2), torch.randn(4, 2), math.nan),
    lambda c: ref.generator_loss(c, torch.randn(4)),
])
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call(wgan.HalfSquareCritic())


def test_history_of_a_draw_free_run():
    """Constant generator, fixed data, linear critic: recompute the first step by hand."""
    point = torch.tensor([0.5, -0.5])
    data = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    w = torch.tensor([0.6, 0.0])
    gen, critic = wgan.ConstantGenerator(point), wgan.LinearCritic(w)
    hist = ref.train_wgan_gp(gen, critic, wgan.FixedSampler(data), steps=2, n_critic=1,
                             lr=0.1, lambda_gp=2.0, batch_size=2, latent_dim=3)
    assert sorted(hist) == sorted(ref.HISTORY_KEYS)
    assert all(len(v) == 2 for v in hist.values())
    d_real, d_fake = float(data.mean(0) @ w), float(point @ w)
    gp = 2.0 * (0.6 - 1) ** 2
    assert hist["wasserstein_estimate"][0] == pytest.approx(d_real - d_fake)
    assert hist["gradient_penalty"][0] == pytest.approx(gp)
    assert hist["critic_loss"][0] == pytest.approx(d_fake - d_real + gp)
    # After one Adam step every weight moved by lr against its gradient's sign.
    grad_w = torch.tensor([point[0] - data[:, 0].mean(), point[1] - data[:, 1].mean()])
    grad_w += 2 * 2.0 * (0.6 - 1) * w / 0.6
    w1 = w - 0.1 * torch.sign(grad_w)
    assert hist["generator_loss"][0] == pytest.approx(-float(point @ w1), abs=1e-5)


def test_training_validates_arguments():
    gen, critic = wgan.ToyGenerator(2, 8, 1), wgan.ToyCritic(8, 1)
    for name, value in (("steps", 0), ("n_critic", 0), ("batch_size", 0), ("lr", -1.0),
                        ("latent_dim", 0), ("betas", (0.5,)), ("lambda_gp", -1.0)):
        kwargs = {"steps": 1, "latent_dim": 2, name: value}
        with pytest.raises(ValueError, match=name):
            ref.train_wgan_gp(gen, critic, wgan.RingSampler(), **kwargs)
