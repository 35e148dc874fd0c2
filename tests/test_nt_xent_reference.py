"""The `nt_xent` reference solution itself: closed forms, a naive oracle, robustness, errors.

Why it exists: every grader check compares submissions with the reference, so a wrong
reference would grade every student wrong. These tests pin the reference against the spec's
closed forms and against a deliberately naive float64 double loop, and check that the course
text's loss (positive counted twice) is told apart from it.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ref = _load(ROOT / "solutions" / "nt_xent" / "nt_xent.py", "nt_xent_reference_under_test")


def naive_nt_xent(z_i: torch.Tensor, z_j: torch.Tensor, t: float) -> float:
    """The definition, one anchor and one denominator term at a time, in float64."""
    z = torch.cat([z_i, z_j]).double()
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for a in range(n2):
        p = (a + n) % n2
        sim = [float(F.cosine_similarity(z[a], z[k], dim=0)) for k in range(n2)]
        denominator = sum(math.exp(sim[k] / t) for k in range(n2) if k != a)
        total += -math.log(math.exp(sim[p] / t) / denominator)
    return total / n2


def course_text_loss(z_i: torch.Tensor, z_j: torch.Tensor, t: float) -> torch.Tensor:
    """The course text's version: the positive column is concatenated to a similarity matrix
    that still contains it, so the positive is in the denominator twice."""
    n = z_i.shape[0]
    z = F.normalize(torch.cat([z_i, z_j]), dim=1)
    sim = (z @ z.T / t).masked_fill(torch.eye(2 * n, dtype=torch.bool), -9e15)
    pos = torch.cat([sim[range(n), range(n, 2 * n)], sim[range(n, 2 * n), range(n)]])
    logits = torch.cat([pos[:, None], sim], dim=1)
    return F.cross_entropy(logits, torch.zeros(2 * n, dtype=torch.long))


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_all_embeddings_equal_gives_log_2n_minus_1(n: int) -> None:
    z = torch.full((n, 5), 0.7, dtype=torch.float64)
    loss = ref.nt_xent_loss(z, z.clone(), temperature=0.3)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(math.log(2 * n - 1), abs=1e-12)


@pytest.mark.parametrize(("n", "t"), [(2, 0.5), (4, 0.1), (6, 0.05), (1, 0.5)])
def test_identical_views_of_orthonormal_rows_give_the_closed_form(n: int, t: float) -> None:
    z = torch.eye(n, 8, dtype=torch.float64) * 3.0  # orthogonal rows, any norm
    expected = math.log1p((2 * n - 2) * math.exp(-1 / t))
    loss = ref.nt_xent_loss(z, z.clone(), temperature=t)
    assert loss.item() == pytest.approx(expected, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_a_naive_double_loop_in_float64(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n, d = 2 + seed, 3 + 2 * seed
    z_i = torch.randn(n, d, generator=g, dtype=torch.float64)
    z_j = torch.randn(n, d, generator=g, dtype=torch.float64)
    t = (0.1, 0.5, 1.0, 0.2)[seed]
    assert ref.nt_xent_loss(z_i, z_j, t).item() == pytest.approx(
        naive_nt_xent(z_i, z_j, t), rel=1e-10
    )


def test_float32_agrees_with_the_naive_loop() -> None:
    g = torch.Generator().manual_seed(7)
    z_i, z_j = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    loss = ref.nt_xent_loss(z_i, z_j, 0.5)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(naive_nt_xent(z_i, z_j, 0.5), rel=1e-5)


def test_course_text_loss_differs_from_the_reference() -> None:
    g = torch.Generator().manual_seed(0)
    z_i, z_j = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    right = ref.nt_xent_loss(z_i, z_j, 0.5).item()
    wrong = course_text_loss(z_i, z_j, 0.5).item()
    assert right == pytest.approx(naive_nt_xent(z_i, z_j, 0.5), rel=1e-5)
    assert abs(wrong - right) > 0.05  # the doubled positive is visible, not rounding


def test_loss_is_symmetric_in_the_two_views_and_scale_invariant() -> None:
    g = torch.Generator().manual_seed(1)
    z_i, z_j = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    base = ref.nt_xent_loss(z_i, z_j, 0.2)
    torch.testing.assert_close(ref.nt_xent_loss(z_j, z_i, 0.2), base)
    torch.testing.assert_close(ref.nt_xent_loss(5 * z_i, 0.1 * z_j, 0.2), base)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(2)
    z_i32, z_j32 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    z_i = z_i32.to(dtype).requires_grad_()
    z_j = z_j32.to(dtype).requires_grad_()
    loss = ref.nt_xent_loss(z_i, z_j, 0.05)
    assert loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(loss)
    assert z_i.grad is not None and z_i.grad.dtype == dtype
    assert torch.isfinite(z_i.grad).all() and torch.isfinite(z_j.grad).all()
    expected = ref.nt_xent_loss(z_i.detach().float(), z_j.detach().float(), 0.05)
    torch.testing.assert_close(loss.detach(), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_large_norms_and_small_temperature_stay_finite(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(3)
    z_i = (1e4 * F.normalize(torch.randn(16, 8, generator=g), dim=1)).to(dtype).requires_grad_()
    z_j = (1e4 * F.normalize(torch.randn(16, 8, generator=g), dim=1)).to(dtype).requires_grad_()
    loss = ref.nt_xent_loss(z_i, z_j, 0.05)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z_i.grad).all() and torch.isfinite(z_j.grad).all()


def test_float64_stays_float64_and_zero_rows_give_no_nan() -> None:
    z_i = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    z_j = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    loss = ref.nt_xent_loss(z_i, z_j)
    loss.backward()
    assert loss.dtype == torch.float64
    assert torch.isfinite(loss) and torch.isfinite(z_i.grad).all()


@pytest.mark.parametrize(
    ("z_i", "z_j", "kwargs", "names"),
    [
        (torch.randn(4), torch.randn(4), {}, "z_i"),
        (torch.randn(2, 3, 4), torch.randn(2, 3, 4), {}, "z_i"),
        (torch.randn(4, 3), torch.randn(4), {}, "z_j"),
        (torch.randn(4, 3), torch.randn(5, 3), {}, "z_i"),
        (torch.randn(4, 3), torch.randn(4, 2), {}, "z_j"),
        (torch.randn(0, 3), torch.randn(0, 3), {}, "z_i"),
        (torch.ones(4, 3, dtype=torch.long), torch.ones(4, 3, dtype=torch.long), {}, "z_i"),
        (torch.randn(4, 3), torch.randn(4, 3), {"temperature": 0.0}, "temperature"),
        (torch.randn(4, 3), torch.randn(4, 3), {"temperature": -0.5}, "temperature"),
        (torch.randn(4, 3), torch.randn(4, 3), {"temperature": float("nan")}, "temperature"),
        (torch.randn(4, 3), torch.randn(4, 3), {"temperature": float("inf")}, "temperature"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(z_i, z_j, kwargs, names) -> None:
    with pytest.raises(ValueError, match=names):
        ref.nt_xent_loss(z_i, z_j, **kwargs)


def test_projection_head_has_the_contract_parameter_names() -> None:
    head = ref.ProjectionHead(7, hidden_dim=5, out_dim=3)
    assert list(dict(head.named_parameters())) == [
        "net.0.weight",
        "net.0.bias",
        "net.2.weight",
        "net.2.bias",
    ]
    assert head(torch.randn(4, 7)).shape == (4, 3)
    for bad in ({"in_dim": 0}, {"in_dim": 3, "hidden_dim": -1}, {"in_dim": 3, "out_dim": 0}):
        with pytest.raises(ValueError, match=next(reversed(bad))):
            ref.ProjectionHead(**bad)


def test_simclr_views_are_reproducible_with_a_seeded_generator() -> None:
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    a = ref.simclr_views(images, generator=torch.Generator().manual_seed(5))
    b = ref.simclr_views(images, generator=torch.Generator().manual_seed(5))
    c = ref.simclr_views(images, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a[0], c[0])
    for view in a:
        assert view.shape == images.shape and view.dtype == images.dtype
        assert view.min() >= 0 and view.max() <= 1
    assert not torch.equal(a[0], a[1])


def test_simclr_views_leave_the_global_rng_alone_and_keep_half_dtype() -> None:
    images = torch.rand(3, 3, 8, 8).half()
    state = torch.get_rng_state()
    views = ref.simclr_views(images, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(v.dtype == torch.float16 and v.shape == images.shape for v in views)
    with pytest.raises(ValueError, match="images"):
        ref.simclr_views(torch.rand(3, 8, 8))


def test_train_simclr_is_deterministic_and_returns_the_same_encoder() -> None:
    images = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        encoder = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 6)
        )
        before = [p.detach().clone() for p in encoder.parameters()]
        out = ref.train_simclr(
            encoder,
            images,
            epochs=2,
            batch_size=4,
            temperature=0.5,
            lr=1e-2,
            generator=torch.Generator().manual_seed(3),
        )
        assert out is encoder
        after = [p.detach().clone() for p in encoder.parameters()]
        assert any(not torch.equal(x, y) for x, y in zip(before, after, strict=True))
        weights.append(after)
    for x, y in zip(*weights, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"batch_size": 1}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"temperature": -1.0}, "temperature"),
    ],
)
def test_train_simclr_rejects_bad_arguments(kwargs: dict, name: str) -> None:
    args = {"epochs": 1, "batch_size": 4, "temperature": 0.5, "lr": 1e-3} | kwargs
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    with pytest.raises(ValueError, match=name):
        ref.train_simclr(encoder, torch.rand(6, 3, 4, 4), **args)
