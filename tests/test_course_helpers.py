"""The public course helpers: the shapes data set, the small encoder and the linear probe.

Why it exists: the training checks compare a submission with baselines computed from these
helpers, in the grader and in the student worker alike, so their determinism, value ranges and
shapes are part of the grading contract.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchgrade.course import SHAPES, SmallConvEncoder, linear_probe_accuracy, make_shapes


def test_make_shapes_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    a_images, a_labels = make_shapes(64, size=24, seed=3)
    b_images, b_labels = make_shapes(64, size=24, seed=3)
    c_images, _ = make_shapes(64, size=24, seed=4)
    assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)
    assert not torch.equal(a_images, c_images)


def test_make_shapes_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    make_shapes(8, seed=0)
    assert torch.equal(torch.get_rng_state(), state)


def test_make_shapes_returns_float_images_in_unit_range_and_int64_labels() -> None:
    images, labels = make_shapes(50, size=20, seed=0)
    assert images.shape == (50, 3, 20, 20) and images.dtype == torch.float32
    assert labels.shape == (50,) and labels.dtype == torch.int64
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.std() > 0.1  # not blank


def test_make_shapes_balances_labels_over_the_classes_asked_for() -> None:
    classes = ("circle", "square", "triangle")
    _, labels = make_shapes(100, seed=1, classes=classes)
    counts = torch.bincount(labels, minlength=len(classes))
    assert counts.sum() == 100 and counts.max() - counts.min() <= 1
    _, labels = make_shapes(40, seed=1, classes=tuple(SHAPES))
    assert set(labels.tolist()) == set(range(len(SHAPES)))


def test_make_shapes_draws_the_shape_in_the_foreground() -> None:
    # With no noise each image holds exactly two colours away from the anti-aliased edge,
    # and the foreground covers a sizeable but minor part of the image.
    images, _ = make_shapes(16, size=32, seed=2, noise=0.0)
    background = images[:, :, :1, :1]  # the corner is always background
    differs = (images - background).abs().amax(dim=1) > 0.05  # [n, H, W]
    coverage = differs.float().mean(dim=(1, 2))
    assert (coverage > 0.03).all() and (coverage < 0.6).all()


@pytest.mark.parametrize("bad", [{"n": 0}, {"size": 4}, {"classes": ("blob",)}, {"classes": ()}])
def test_make_shapes_rejects_bad_arguments(bad: dict) -> None:
    args = {"n": 4, "seed": 0} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        make_shapes(**args)


def test_small_conv_encoder_maps_images_to_features_of_out_dim() -> None:
    torch.manual_seed(0)
    encoder = SmallConvEncoder(in_channels=3, width=8, out_dim=10)
    for size in (16, 20, 32):
        assert encoder(torch.rand(5, 3, size, size)).shape == (5, 10)
    one = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(encoder.eval()(one), encoder.train()(one))  # no BatchNorm
    with pytest.raises(ValueError, match="x"):
        encoder(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="width"):
        SmallConvEncoder(width=0)


def test_small_conv_encoder_treats_each_image_independently() -> None:
    torch.manual_seed(0)
    encoder = SmallConvEncoder(width=8, out_dim=6)
    batch = torch.rand(4, 3, 16, 16)
    alone = torch.cat([encoder(batch[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(encoder(batch), alone, rtol=1e-5, atol=1e-6)


def test_linear_probe_is_near_perfect_on_a_trivially_separable_set() -> None:
    rng = np.random.default_rng(0)
    centres = 5.0 * np.eye(3, 8)
    train_y, test_y = rng.integers(0, 3, 300), rng.integers(0, 3, 200)
    train_x = centres[train_y] + rng.normal(size=(300, 8))
    test_x = torch.tensor(centres[test_y] + rng.normal(size=(200, 8)), dtype=torch.float32)
    accuracy = linear_probe_accuracy(train_x, train_y, test_x, torch.from_numpy(test_y))
    assert accuracy >= 0.98


def test_linear_probe_is_at_chance_on_noise_and_zero_on_non_finite_features() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 5)), rng.integers(0, 4, 400)
    chance = linear_probe_accuracy(x[:200], y[:200], x[200:], y[200:])
    assert 0.1 < chance < 0.45
    bad = x.copy()
    bad[0, 0] = np.nan
    assert linear_probe_accuracy(bad[:200], y[:200], bad[200:], y[200:]) == 0.0


def test_linear_probe_is_deterministic() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 6)), rng.integers(0, 3, 300)
    x[:, 0] += y  # some signal
    first = linear_probe_accuracy(x[:200], y[:200], x[200:], y[200:])
    assert first == linear_probe_accuracy(x[:200], y[:200], x[200:], y[200:])
