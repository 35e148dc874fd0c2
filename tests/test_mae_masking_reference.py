"""Is the mae_masking reference right? Fast checks against independent computations.

The grader trusts ``solutions/mae_masking/mae_masking.py`` value for value, so it is checked
here without the sandbox: patchify against a loop over patches, the masking draw against the
contract's four lines, the loss against a per-patch loop, and the course's TinyMAE forward
pass for shapes and for where gradients go.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from torchgrade.course.mae import TinyMAE, digits, sincos_pos_embed

ROOT = Path(__file__).resolve().parents[1]


def _load():
    path = ROOT / "solutions" / "mae_masking" / "mae_masking.py"
    spec = importlib.util.spec_from_file_location("mae_masking_reference_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ref = _load()


def loop_patchify(imgs: torch.Tensor, p: int) -> torch.Tensor:
    n, c, height, width = imgs.shape
    h, w = height // p, width // p
    out = torch.empty(n, h * w, p * p * c, dtype=imgs.dtype)
    for i in range(h):
        for j in range(w):
            for a in range(p):
                for b in range(p):
                    for ch in range(c):
                        out[:, i * w + j, (a * p + b) * c + ch] = imgs[:, ch, i * p + a, j * p + b]
    return out


@pytest.mark.parametrize("shape,p", [((2, 3, 8, 12), 4), ((1, 1, 4, 4), 2), ((3, 2, 6, 3), 3),
                                     ((1, 2, 2, 2), 1)])
def test_patchify_matches_a_loop_over_pixels(shape, p):
    imgs = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ref.patchify(imgs, p), loop_patchify(imgs, p))


def test_patchify_is_the_official_einsum():
    imgs = torch.randn(2, 3, 8, 8)
    x = torch.einsum("nchpwq->nhwpqc", imgs.reshape(2, 3, 2, 4, 2, 4)).reshape(2, 4, 48)
    assert torch.equal(ref.patchify(imgs, 4), x)


@pytest.mark.parametrize("grid", [(2, 3), (3, 1), (1, 1)])
def test_unpatchify_inverts_patchify_on_non_square_grids(grid):
    h, w = grid
    imgs = torch.randn(2, 3, 4 * h, 4 * w)
    assert torch.equal(ref.unpatchify(ref.patchify(imgs, 4), 4, 3, grid_size=grid), imgs)
    y = torch.randn(2, h * w, 48)
    assert torch.equal(ref.patchify(ref.unpatchify(y, 4, 3, grid_size=grid), 4), y)


def test_unpatchify_defaults_to_a_square_grid_and_refuses_others():
    y = torch.randn(1, 9, 4)
    assert ref.unpatchify(y, 2, 1).shape == (1, 1, 6, 6)
    with pytest.raises(ValueError, match="grid_size"):
        ref.unpatchify(torch.randn(1, 6, 4), 2, 1)


def test_random_masking_is_the_contracts_draw():
    x = torch.randn(3, 10, 4)
    x_masked, mask, ids_restore = ref.random_masking(x, 0.6, torch.Generator().manual_seed(5))
    noise = torch.rand(3, 10, generator=torch.Generator().manual_seed(5))
    ids_shuffle = noise.argsort(dim=1)
    assert torch.equal(ids_restore, ids_shuffle.argsort(dim=1))
    assert torch.equal(x_masked, torch.stack([x[i, ids_shuffle[i, :4]] for i in range(3)]))
    want = torch.ones(3, 10)
    for i in range(3):
        want[i, ids_shuffle[i, :4]] = 0.0
    assert mask.dtype == torch.float32 and torch.equal(mask, want)


@pytest.mark.parametrize("length,ratio,keep", [(100, 0.8, 19), (4, 0.8, 0), (10, 0.0, 10),
                                               (7, 0.5, 3), (50, 0.9, 4)])
def test_len_keep_truncates(length, ratio, keep):
    x_masked, mask, _ = ref.random_masking(torch.zeros(2, length, 1), ratio)
    assert x_masked.shape == (2, keep, 1)
    assert mask.sum(dim=1).tolist() == [length - keep] * 2


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, math.nan, True, "0.5"])
def test_mask_ratio_outside_range_raises(ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        ref.random_masking(torch.zeros(1, 4, 2), ratio)


def test_restore_order_undoes_the_shuffle():
    x = torch.randn(2, 7, 3)
    _, _, ids_restore = ref.random_masking(x, 0.5, torch.Generator().manual_seed(1))
    ids_shuffle = ids_restore.argsort(dim=1)
    shuffled = torch.stack([x[i, ids_shuffle[i]] for i in range(2)])
    assert torch.equal(ref.restore_order(shuffled, ids_restore), x)


def loop_loss(pred, imgs, mask, p, norm):
    target = loop_patchify(imgs, p)
    total, count = 0.0, 0
    for n in range(target.shape[0]):
        for j in range(target.shape[1]):
            if mask[n, j] == 1:
                t = target[n, j].tolist()
                if norm:
                    m = sum(t) / len(t)
                    v = sum((a - m) ** 2 for a in t) / (len(t) - 1)
                    t = [(a - m) / math.sqrt(v + 1e-6) for a in t]
                total += sum((a - b) ** 2 for a, b in zip(pred[n, j].tolist(), t, strict=True)) \
                    / len(t)
                count += 1
    return total / count


@pytest.mark.parametrize("norm", [True, False])
def test_mae_loss_matches_a_per_patch_loop(norm):
    g = torch.Generator().manual_seed(3)
    imgs = torch.rand(2, 3, 4, 6, generator=g, dtype=torch.float64)
    imgs[0, :, :2, :2] = 0.25  # a flat patch
    pred = torch.randn(2, 6, 12, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 1, 0, 0, 1, 1]], dtype=torch.float32)
    got = ref.mae_loss(pred, imgs, mask, 2, norm)
    assert got.dim() == 0 and got.dtype == torch.float64
    assert math.isclose(float(got), loop_loss(pred, imgs, mask, 2, norm), rel_tol=1e-12)


def test_mae_loss_raises_for_a_mask_without_removed_patches():
    with pytest.raises(ValueError, match="mask"):
        ref.mae_loss(torch.randn(1, 4, 4), torch.rand(1, 1, 4, 4), torch.zeros(1, 4), 2)


def test_mae_loss_gradient_is_zero_at_kept_patches():
    pred = torch.randn(2, 4, 4, requires_grad=True)
    mask = torch.tensor([[1.0, 0, 0, 1], [0, 0, 1, 0]])
    ref.mae_loss(pred, torch.rand(2, 1, 4, 4), mask, 2).backward()
    assert torch.all(pred.grad[mask == 0] == 0) and torch.all(pred.grad[mask == 1] != 0)


def test_bad_arguments_name_the_argument():
    cases = [(lambda: ref.patchify(torch.zeros(3, 4, 4), 2), "imgs"),
             (lambda: ref.patchify(torch.zeros(1, 1, 4, 6), 4), "patch_size"),
             (lambda: ref.patchify(torch.zeros(1, 1, 4, 4), 0), "patch_size"),
             (lambda: ref.unpatchify(torch.zeros(1, 4, 5), 2, 1), "x"),
             (lambda: ref.random_masking(torch.zeros(4, 4), 0.5), "x"),
             (lambda: ref.restore_order(torch.zeros(1, 4, 2), torch.zeros(1, 5).long()),
              "ids_restore"),
             (lambda: ref.mae_loss(torch.zeros(1, 4, 4), torch.zeros(1, 1, 4, 4),
                                   torch.ones(1, 3), 2), "mask"),
             (lambda: ref.mae_loss(torch.zeros(1, 4, 3), torch.zeros(1, 1, 4, 4),
                                   torch.ones(1, 4), 2), "pred")]
    for call, name in cases:
        with pytest.raises(ValueError, match=name):
            call()


def test_sincos_pos_embed_distinguishes_every_patch():
    pos = sincos_pos_embed(32, (4, 4))
    assert pos.shape == (16, 32)
    assert torch.cdist(pos, pos).add(torch.eye(16)).min() > 0.1


def test_mae_forward_shapes_and_gradients_reach_the_model():
    torch.manual_seed(0)
    model = TinyMAE()
    imgs = torch.rand(3, 1, 8, 8)
    pred, mask = ref.mae_forward(model, imgs, 0.75, torch.Generator().manual_seed(0))
    assert pred.shape == (3, 16, 4) and mask.sum().item() == 3 * 12
    ref.mae_loss(pred, imgs, mask, 2).backward()
    assert model.mask_token.grad.abs().sum() > 0 and model.patch_embed.weight.grad.abs().sum() > 0


def test_mae_forward_keeps_every_patch_or_none():
    model = TinyMAE()
    pred, mask = ref.mae_forward(model, torch.rand(2, 1, 8, 8), 0.99)  # keeps 0 of 16
    assert pred.shape == (2, 16, 4) and mask.sum().item() == 32
    pred, mask = ref.mae_forward(model, torch.rand(2, 1, 8, 8), 0.0)  # keeps all 16
    assert pred.shape == (2, 16, 4) and mask.sum().item() == 0


def test_train_mae_is_deterministic_and_changes_the_weights():
    train_x, _ = digits(0)

    def trained():
        torch.manual_seed(0)
        model = TinyMAE()
        return ref.train_mae(model, train_x[:64], steps=3, batch_size=8, lr=1e-3,
                             generator=torch.Generator().manual_seed(1))

    a, b = trained(), trained()
    torch.manual_seed(0)
    fresh = TinyMAE()
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.patch_embed.weight, fresh.patch_embed.weight)


def test_train_mae_rejects_bad_arguments():
    model = TinyMAE()
    images = torch.rand(4, 1, 8, 8)
    for kwargs, name in (({"steps": 0}, "steps"), ({"batch_size": 0}, "batch_size"),
                         ({"lr": -1.0}, "lr"), ({"mask_ratio": 0.0}, "mask_ratio")):
        args = {"steps": 1, "batch_size": 2, "lr": 1e-3, **kwargs}
        with pytest.raises(ValueError, match=name):
            ref.train_mae(model, images, **args)


def test_digits_are_a_fixed_split_in_the_unit_range():
    train_x, test_x = digits(3)
    again, _ = digits(3)
    assert train_x.shape == (1400, 1, 8, 8) and test_x.shape == (397, 1, 8, 8)
    assert torch.equal(train_x, again) and 0 <= float(train_x.min()) <= float(train_x.max()) <= 1
