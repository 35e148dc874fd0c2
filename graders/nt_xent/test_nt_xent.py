"""Grader of the nt_xent assignment (SimCLR's NT-Xent loss), contract §3 of the spec.

Every check names the mistake it is designed to catch (``catches=``). Public checks compare
with fixtures built from the reference (fixtures/public.safetensors); hidden checks may call
the reference live, on the grader's own copies of the inputs. The course text's loss (the
positive counted twice in the denominator) fails every value check and the closed forms.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchgrade.checks import (
    check,
    expect_answer,
    expect_close,
    expect_nonconstant,
    expect_raises,
    expect_scalar,
    expect_shape,
    expect_tensor,
    fail,
    measured,
)

DOUBLE_POSITIVE = ("the course text's loss, which puts the positive in the denominator twice "
                   "(it concatenates the positive column with a similarity matrix that still "
                   "contains it)")


def _pair(n: int, d: int, seed: int, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=dtype),
            torch.randn(n, d, generator=g, dtype=dtype))


def _loss(student, z_i, z_j, t, what):
    """The student's loss of (z_i, z_j), validated: a finite 0-dim tensor of the inputs' dtype
    (None, NaN or a [2] tensor agree with themselves: no invariant may pass on them)."""
    return expect_answer(student.nt_xent_loss(z_i, z_j, t), what=what, shape=(),
                         dtype=z_i.dtype)


def _expect_real_loss(student):
    """Evidence of a real answer for the checks that compare the loss with itself: two
    different float64 batches give two different losses (a constant is symmetric and
    invariant to everything). N = 4, so the loss is not the N = 1 constant log(1) = 0."""
    a, b = (_loss(student, *_pair(4, 8, seed), 0.5,
                  what=f"nt_xent_loss of float64 batch {k} (N=4, D=8)")
            for k, seed in ((1, 101), (2, 102)))
    expect_nonconstant(a, b, what="nt_xent_loss", depends_on="the embeddings z_i and z_j",
                       hint="compute the loss from z_i and z_j (cosine similarities, then "
                       "cross-entropy over the 2N - 1 candidates)")


def _reference_grads(reference, z_i, z_j, t):
    a = z_i.clone().requires_grad_(True)
    b = z_j.clone().requires_grad_(True)
    loss = reference.nt_xent_loss(a, b, t)
    ga, gb = torch.autograd.grad(loss, [a, b])
    return loss.detach(), ga, gb


# -- public checks: fixtures built from the reference -------------------------------------------
@check(points=5, kind="shape", visibility="public",
       catches="returning a Python float or a tensor cut off from autograd (.item(), .detach())",
       rules=("loss.scalar", "loss.dtype"))
def test_loss_is_differentiable_scalar(student, fixture_case):
    """nt_xent_loss returns a 0-dim float tensor that back-propagates to both inputs."""
    case = fixture_case("random")
    out = student.grad("nt_xent_loss", case["z_i"], case["z_j"], 0.5, wrt=(0, 1))
    expect_scalar(out.value, what="nt_xent_loss(z_i, z_j)", requires_grad=False)
    if out.value.dtype != torch.float32:
        fail("nt_xent_loss on float32 inputs returned another dtype.", expected="float32",
             got=str(out.value.dtype))
    if not out.differentiable or any(g is None for g in out.grads):
        fail("nt_xent_loss cannot be back-propagated to z_i and z_j.",
             expected="gradients for both inputs", got="no gradient",
             hint="build the loss from z_i and z_j with torch operations only")


@check(points=9, kind="value", visibility="public", catches=DOUBLE_POSITIVE,
       rules=("loss.formula", "loss.cosine"))
def test_loss_matches_reference_public(student, fixture_case):
    """nt_xent_loss matches the reference on the public fixtures (float32 and float64)."""
    for name, atol in (("random", 1e-5), ("correlated_f64", 1e-10)):
        case = fixture_case(name)
        got = student.nt_xent_loss(case["z_i"], case["z_j"], case["temperature"])
        expect_tensor(got, case["expected"], what=f"nt_xent_loss on fixture '{name}'",
                      rtol=1e-5, atol=atol,
                      hint="each anchor's denominator has 2N - 1 terms: its positive once and "
                      "the 2N - 2 negatives, never the anchor itself")


@check(points=4, kind="value", visibility="public",
       catches=f"{DOUBLE_POSITIVE}: it gives log(2N) here instead of log(2N - 1)",
       rules=("loss.all-equal", "loss.formula"))
def test_all_equal_closed_form_public(student):
    """When all 2N embeddings are equal the loss is log(2N - 1)."""
    for n in (2, 4, 7):
        z = torch.ones(n, 5, dtype=torch.float64)
        got = student.nt_xent_loss(z, z.clone(), 0.5)
        expect_close(got, math.log(2 * n - 1), what=f"nt_xent_loss of {2 * n} equal embeddings",
                     rtol=1e-9, atol=1e-9,
                     hint="every similarity is 1, so each anchor picks its positive among "
                     "2N - 1 equally likely candidates")


@check(points=5, kind="value", visibility="public",
       catches="a projection head with other layers, names (net.0, net.2) or activation",
       rules=("head.layout",))
def test_projection_head_public(student, fixture_case):
    """ProjectionHead(32, 64, 16) loads the reference weights and gives the same output."""
    case = fixture_case("head")
    state = {k.removeprefix("sd."): v for k, v in case.items() if k.startswith("sd.")}
    head = student.ProjectionHead(32, 64, 16)
    names = sorted(head.state_dict().keys())
    if names != sorted(state):
        fail("ProjectionHead has the wrong parameters.", expected=str(sorted(state)),
             got=str(names), hint="keep the layers in self.net = nn.Sequential(Linear, ReLU, "
             "Linear)")
    head.load_state_dict(state)
    expect_tensor(head(case["h"]), case["expected"], what="ProjectionHead(32, 64, 16)(h)",
                  rtol=1e-5, atol=1e-6)


@check(points=4, kind="invariant", visibility="public",
       catches="views outside [0, 1], of another shape, identical views, or randomness not "
       "drawn from the generator argument", rules=("views.invariants", "conv.generator"))
def test_simclr_views_public(student):
    """simclr_views returns two different [0, 1] views of the input's shape, reproducible
    from a seeded generator."""
    g = torch.Generator().manual_seed(3)
    images = torch.rand(6, 3, 16, 16, generator=g)
    first = student.simclr_views(images, generator=torch.Generator().manual_seed(11))
    again = student.simclr_views(images, generator=torch.Generator().manual_seed(11))
    if not (isinstance(first, tuple | list) and len(first) == 2):
        fail("simclr_views must return two views.", expected="(view_1, view_2)",
             got=type(first).__name__)
    for k, view in enumerate(first):
        expect_answer(view, what=f"view_{k + 1}", shape=tuple(images.shape),
                      dtype=images.dtype)
        if float(view.min()) < -1e-6 or float(view.max()) > 1 + 1e-6:
            fail(f"view_{k + 1} leaves [0, 1].", expected="values in [0, 1]",
                 got=f"[{float(view.min()):.3g}, {float(view.max()):.3g}]",
                 hint="clamp after colour jitter")
        expect_tensor(again[k], view, what=f"view_{k + 1} with the same seed",
                      hint="draw every random number from the `generator` argument")
    if torch.equal(first[0], first[1]):
        fail("the two views are identical.", expected="two different augmentations",
             got="view_1 == view_2")


@check(points=5, kind="robustness", visibility="public",
       catches="missing argument validation (1-D input, mismatched shapes, temperature <= 0)",
       rules=("conv.names-argument", "loss.rank", "loss.shapes", "loss.temperature"))
def test_bad_arguments_public(student):
    """nt_xent_loss raises ValueError naming the argument for bad inputs."""
    z = torch.randn(4, 8)
    with expect_raises("ValueError", what="nt_xent_loss with 1-D z_i", mentions="z_i"):
        student.nt_xent_loss(torch.randn(8), z)
    with expect_raises("ValueError", what="nt_xent_loss with shapes [4, 8] and [5, 8]"):
        student.nt_xent_loss(z, torch.randn(5, 8))
    with expect_raises("ValueError", what="nt_xent_loss with temperature 0",
                       mentions="temperature"):
        student.nt_xent_loss(z, z.clone(), 0.0)


@check(points=3, kind="value", visibility="public", catches="a training loop that does not "
       "update the encoder, returns another object, or does not reproduce its run from a seeded "
       "generator (randomness drawn elsewhere)",
       rules=("train.loop", "train.returns", "conv.generator"))
def test_train_simclr_public(student):
    """train_simclr for one epoch on 8 small images: the encoder it was given comes back with
    changed weights, and a second run from the same weights and seeds gives the same weights.
    simclr_views with a generator leaves the global random generator alone."""
    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    runs = []
    for _ in range(2):
        student.reseed(21)
        encoder = student.construct("torchgrade.course.encoders:SmallConvEncoder", 3, 4, 8)
        before = {k: v.clone() for k, v in encoder.state_dict().items()}
        trained = student.train_simclr(encoder, images, epochs=1, batch_size=4,
                                       temperature=0.5, lr=1e-2,
                                       generator=torch.Generator().manual_seed(5))
        if getattr(getattr(trained, "_ref", None), "id", None) != encoder._ref.id:
            fail("train_simclr must return the encoder it was given, trained.",
                 expected="the same encoder object",
                 got=getattr(trained, "type_name", type(trained).__name__))
        after = encoder.state_dict()
        if all(torch.equal(before[k], after[k]) for k in before):
            fail("train_simclr did not change the encoder's weights.", expected="Adam steps "
                 "on the NT-Xent loss of every mini-batch", got="the weights it was given",
                 hint="optimise the encoder's and the head's parameters together")
        runs.append(after)
    for k in runs[0]:
        expect_tensor(runs[1][k], runs[0][k], what=f"the encoder's {k} after a second run "
                      "with the same seeds", rtol=1e-5, atol=1e-6, hint="draw every random "
                      "number from the generator argument (randperm, simclr_views)")
    student.reseed(22)
    student.simclr_views(images, generator=torch.Generator().manual_seed(6))
    drawn = student.construct("torchgrade.course.rng:global_draw")
    student.reseed(22)
    untouched = student.construct("torchgrade.course.rng:global_draw")
    if not torch.equal(drawn, untouched):
        fail("simclr_views with a generator drew from the global random generator.",
             expected="the global RNG untouched", got="global draws consumed",
             hint="pass generator=generator to every torch.rand / randint / randperm")


# -- hidden checks: the reference, live ----------------------------------------------------------
@check(points=9, kind="value", catches=DOUBLE_POSITIVE,
       rules=("loss.formula", "loss.cosine", "loss.n-one"))
def test_loss_matches_reference_hidden(student, reference):
    """nt_xent_loss matches the reference on unseen sizes and temperatures (float64)."""
    for n, d, t, seed in ((1, 3, 0.5, 1), (2, 4, 0.1, 2), (5, 64, 1.0, 3), (33, 7, 0.3, 4)):
        z_i, z_j = _pair(n, d, seed)
        expected = reference.nt_xent_loss(z_i.clone(), z_j.clone(), t)
        got = student.nt_xent_loss(z_i, z_j, t)
        expect_tensor(got, expected, what=f"nt_xent_loss (N={n}, D={d}, t={t})", rtol=1e-7,
                      atol=1e-9, dtype=torch.float64)


@check(points=5, kind="value",
       catches=f"{DOUBLE_POSITIVE}, or a temperature applied to only part of the logits",
       rules=("loss.formula",))
def test_orthogonal_closed_form(student):
    """z_i == z_j with orthonormal rows gives log(1 + (2N - 2) exp(-1/t))."""
    for n, t in ((3, 0.5), (6, 0.1), (4, 1.0)):
        z = torch.eye(n, 8, dtype=torch.float64) * 3.0
        got = student.nt_xent_loss(z, z.clone(), t)
        expect_close(got, math.log1p((2 * n - 2) * math.exp(-1 / t)),
                     what=f"orthonormal closed form (N={n}, t={t})", rtol=1e-7, atol=1e-12)


@check(points=5, kind="value", catches="a loss whose value is right but whose gradient is "
       "not (a detached normalisation, an in-place edit, a hard-coded label)",
       rules=("loss.scalar", "loss.formula"))
def test_gradients_match_reference(student, reference):
    """The gradients w.r.t. z_i and z_j equal the reference's."""
    z_i, z_j = _pair(6, 12, 21)
    _, ga, gb = _reference_grads(reference, z_i, z_j, 0.2)
    out = student.grad("nt_xent_loss", z_i, z_j, 0.2, wrt=(0, 1))
    if not out.differentiable or out.grads[0] is None or out.grads[1] is None:
        fail("the loss does not back-propagate to both inputs.", expected="gradients",
             got="none")
    expect_tensor(out.grads[0], ga, what="d loss / d z_i", rtol=1e-6, atol=1e-10)
    expect_tensor(out.grads[1], gb, what="d loss / d z_j", rtol=1e-6, atol=1e-10)


_sizes = st.tuples(st.integers(1, 12), st.integers(1, 24), st.integers(0, 2**31 - 1))
_temps = st.floats(0.05, 2.0)


# The invariant checks compare the loss with itself, which a constant would pass: each first
# asks for a real loss (_expect_real_loss, once), then runs its property over Hypothesis'
# examples. Outside @given, so that a non-answer fails at once instead of being shrunk.
@check(points=5, kind="invariant", catches="averaging over one view's anchors only, or "
       "treating the two views differently", rules=("loss.formula",))
def test_symmetric_in_views(student):
    """Swapping the two views leaves the loss unchanged."""
    _expect_real_loss(student)

    @given(size=_sizes, t=_temps)
    @example(size=(1, 1, 0), t=0.5)
    def symmetric(size, t):
        z_i, z_j = _pair(*size)
        a = _loss(student, z_i, z_j, t, what="nt_xent_loss(z_i, z_j)")
        b = _loss(student, z_j, z_i, t, what="nt_xent_loss(z_j, z_i)")
        expect_tensor(b, a, what="nt_xent_loss(z_j, z_i) vs nt_xent_loss(z_i, z_j)",
                      rtol=1e-7, atol=1e-9)

    symmetric()


@check(points=5, kind="invariant", catches="dot products instead of cosine similarity (no L2 "
       "normalisation)", rules=("loss.cosine",))
def test_invariant_to_scale(student):
    """Scaling the embeddings does not change the loss (cosine similarity)."""
    _expect_real_loss(student)

    @given(size=_sizes, t=_temps, scale=st.floats(1e-3, 1e3))
    def scale_invariant(size, t, scale):
        z_i, z_j = _pair(*size)
        a = _loss(student, z_i, z_j, t, what="nt_xent_loss(z_i, z_j)")
        b = _loss(student, z_i * scale, z_j * (scale * 0.5), t,
                  what="nt_xent_loss of rescaled embeddings")
        expect_tensor(b, a, what="nt_xent_loss of rescaled embeddings", rtol=1e-6, atol=1e-9)

    scale_invariant()


@check(points=5, kind="invariant", catches="pairing rows by position in a way that breaks "
       "when the batch is shuffled (e.g. a fixed label vector)", rules=("loss.formula",))
def test_invariant_to_batch_permutation(student):
    """Shuffling the pairs (the same permutation for both views) leaves the loss unchanged."""
    _expect_real_loss(student)

    @given(size=_sizes, t=_temps, perm_seed=st.integers(0, 1000))
    def permutation_invariant(size, t, perm_seed):
        z_i, z_j = _pair(*size)
        perm = torch.randperm(size[0], generator=torch.Generator().manual_seed(perm_seed))
        a = _loss(student, z_i, z_j, t, what="nt_xent_loss(z_i, z_j)")
        b = _loss(student, z_i[perm], z_j[perm], t, what="nt_xent_loss of the shuffled batch")
        expect_tensor(b, a, what="nt_xent_loss of the shuffled batch", rtol=1e-7, atol=1e-9)

    permutation_invariant()


@check(points=5, kind="robustness", catches="exp() without the log-sum-exp trick, which "
       "overflows at low temperature or large norms", rules=("loss.stable",))
def test_stable_at_low_temperature_and_large_norms(student, reference):
    """Temperature 0.05 and norms of 1e4 give a finite loss and finite gradients, equal to the
    reference's."""
    z_i, z_j = _pair(16, 32, 5, dtype=torch.float32)
    z_i, z_j = z_i * 1e4 / z_i.norm(dim=1, keepdim=True), z_j * 1e4 / z_j.norm(dim=1,
                                                                               keepdim=True)
    loss, ga, gb = _reference_grads(reference, z_i, z_j, 0.05)
    out = student.grad("nt_xent_loss", z_i, z_j, 0.05, wrt=(0, 1))
    expect_tensor(out.value, loss, what="loss at t=0.05, |z|=1e4", rtol=1e-4, atol=1e-4)
    for got, want, name in ((out.grads[0], ga, "z_i"), (out.grads[1], gb, "z_j")):
        if got is None:
            fail("no gradient at t=0.05.", expected=f"a gradient for {name}", got="none")
        expect_tensor(got, want, what=f"d loss / d {name} at t=0.05", rtol=1e-3, atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@check(points=2.5, kind="robustness", catches="computing in half precision (the -9e15 fill is "
       "-inf in float16, exp overflows) instead of upcasting to float32",
       rules=("loss.stable", "loss.dtype"))
def test_half_precision_inputs(student, reference, dtype):
    """Half-precision inputs give a finite float32 loss and finite gradients."""
    z_i, z_j = _pair(8, 16, 9, dtype=torch.float32)
    z_i, z_j = z_i.to(dtype), z_j.to(dtype)
    want = reference.nt_xent_loss(z_i.float(), z_j.float(), 0.05)
    out = student.grad("nt_xent_loss", z_i, z_j, 0.05, wrt=(0, 1))
    expect_tensor(out.value, want, what=f"loss of {dtype} inputs at t=0.05", rtol=1e-4,
                  atol=1e-4, dtype=torch.float32,
                  hint="compute in float32 and return float32")
    for got in out.grads:
        if got is None or not bool(torch.isfinite(got.float()).all()):
            fail(f"gradients for {dtype} inputs are missing or not finite.",
                 expected="finite gradients", got="none" if got is None else "NaN/inf")


@check(points=2, kind="robustness", catches="normalising the inputs in place (z.div_(...)), "
       "which corrupts the caller's embeddings", rules=("conv.no-inplace",))
def test_does_not_modify_inputs(student):
    """nt_xent_loss returns a loss and leaves its input tensors unchanged."""
    _expect_real_loss(student)  # a function that returns nothing modifies nothing either
    z_i, z_j = _pair(5, 6, 13)
    loss, mutated = student.call("nt_xent_loss", z_i, z_j, 0.5, _check_inputs=True)
    expect_answer(loss, what="nt_xent_loss(z_i, z_j)", shape=(), dtype=z_i.dtype)
    if mutated:
        fail("nt_xent_loss modified its inputs in place.", expected="inputs unchanged",
             got=f"argument(s) {mutated} changed")


@check(points=3, kind="robustness", catches="missing validation of rank, batch size and "
       "temperature", rules=("conv.names-argument", "loss.rank", "loss.empty", "loss.temperature"))
def test_bad_arguments_hidden(student):
    """More bad arguments: 3-D input, empty batch, negative or NaN temperature."""
    z = torch.randn(3, 4)
    with expect_raises("ValueError", what="nt_xent_loss with 3-D z_j", mentions="z_j"):
        student.nt_xent_loss(z, torch.randn(3, 4, 1))
    with expect_raises("ValueError", what="nt_xent_loss with an empty batch"):
        student.nt_xent_loss(torch.randn(0, 4), torch.randn(0, 4))
    for t in (-0.5, math.nan):
        with expect_raises("ValueError", what=f"nt_xent_loss with temperature {t}",
                           mentions="temperature"):
            student.nt_xent_loss(z, z.clone(), t)


@check(points=2, kind="robustness", catches="missing validation of the head's sizes, of the "
       "images to augment and of the training loop's arguments",
       rules=("conv.names-argument", "head.dims", "views.images", "train.epochs",
              "train.batch-size", "train.lr"))
def test_bad_arguments_more(student):
    """ProjectionHead with a non-positive size, simclr_views of 3-D or integer images, and
    train_simclr with epochs 0, batch_size 1, lr 0 or temperature 0 raise ValueError naming
    the argument."""
    for name, args in (("in_dim", (0,)), ("hidden_dim", (4, -1)), ("out_dim", (4, 8, 0))):
        with expect_raises("ValueError", what=f"ProjectionHead{args}", mentions=name):
            student.ProjectionHead(*args)
    for what, images in (("3-D images", torch.rand(3, 8, 8)),
                         ("integer images", torch.zeros(2, 3, 8, 8, dtype=torch.uint8))):
        with expect_raises("ValueError", what=f"simclr_views of {what}", mentions="images"):
            student.simclr_views(images, generator=torch.Generator().manual_seed(0))
    encoder = student.construct("torchgrade.course.encoders:SmallConvEncoder", 3, 4, 8)
    images = torch.rand(4, 3, 8, 8)
    for name, value in (("epochs", 0), ("batch_size", 1), ("lr", 0.0), ("temperature", 0.0)):
        kwargs = {"epochs": 1, "batch_size": 2, "temperature": 0.5, "lr": 1e-3, name: value}
        with expect_raises("ValueError", what=f"train_simclr with {name}={value}",
                           mentions=name):
            student.train_simclr(encoder, images, **kwargs)


@check(points=4, kind="shape", catches="wrong default sizes (hidden 512, out 128) or a head "
       "whose first layer does not receive gradients", rules=("head.layout",))
def test_projection_head_defaults(student):
    """ProjectionHead(20) has hidden width 512 and output 128, and trains end to end."""
    head = student.ProjectionHead(20)
    shapes = {k: list(v.shape) for k, v in head.state_dict().items()}
    want = {"net.0.weight": [512, 20], "net.0.bias": [512], "net.2.weight": [128, 512],
            "net.2.bias": [128]}
    if shapes != want:
        fail("ProjectionHead(20) has the wrong parameter shapes.", expected=str(want),
             got=str(shapes))
    out = student.grad(head, torch.randn(3, 20), wrt=(0,), grad_params=("self",))
    expect_shape(out.value, (3, 128), what="ProjectionHead(20)(h)")
    first = out.param_grads[0].get("net.0.weight") if out.param_grads else None
    if out.grads[0] is None or first is None or not bool(first.abs().sum() > 0):
        fail("gradients do not reach the head's first layer.", expected="non-zero gradients "
             "for the input and net.0.weight", got="none", hint="do not detach inside forward")


# -- training: a linear probe on the SimCLR encoder ---------------------------------------------
TRAINING_CATCHES = ("a loss or training loop that does not learn (wrong positives, no "
                    "optimizer step, views that are not augmentations, gradients cut off)")


def _probe_accuracies(student, budget, device):
    """Train the course encoder with the student's train_simclr; return the probe accuracies
    of (SimCLR features, raw pixels, the same encoder untrained)."""
    from torchgrade.course.encoders import SmallConvEncoder
    from torchgrade.course.probe import linear_probe_accuracy
    from torchgrade.course.shapes import make_shapes

    size = int(budget["image_size"])
    train_x, train_y = make_shapes(int(budget["n_train"]), size=size, seed=int(budget["seed"]))
    test_x, test_y = make_shapes(int(budget["n_test"]), size=size, seed=int(budget["seed"]) + 1)
    torch.manual_seed(int(budget["seed"]))
    untrained = SmallConvEncoder(3, int(budget["width"]), int(budget["out_dim"]))
    encoder = student.construct("torchgrade.course.encoders:SmallConvEncoder", 3,
                                int(budget["width"]), int(budget["out_dim"]))
    encoder.load_state_dict({k: v.clone() for k, v in untrained.state_dict().items()})
    if device != "cpu":
        encoder = encoder.to(device)
    trained = student.train_simclr(
        encoder, train_x.to(device), epochs=int(budget["epochs"]),
        batch_size=int(budget["batch_size"]), temperature=float(budget["temperature"]),
        lr=float(budget["lr"]), generator=torch.Generator().manual_seed(int(budget["seed"])))
    # A handle to the worker's module (or, in the benchmarks' in-process mode only, the module).
    if not (hasattr(trained, "type_name") or isinstance(trained, torch.nn.Module)):
        fail("train_simclr must return the trained encoder.", expected="an nn.Module",
             got=type(trained).__name__)
    feats = [student.call(trained, x.to(device), _no_grad=True) for x in (train_x, test_x)]
    for f, n in zip(feats, (len(train_x), len(test_x)), strict=True):
        expect_shape(f, (n, int(budget["out_dim"])), what="the trained encoder's features")
    simclr = linear_probe_accuracy(feats[0].cpu(), train_y, feats[1].cpu(), test_y)
    raw = linear_probe_accuracy(train_x.flatten(1), train_y, test_x.flatten(1), test_y)
    with torch.no_grad():
        rand = linear_probe_accuracy(untrained(train_x), train_y, untrained(test_x), test_y)
    return simclr, raw, rand


def _judge(simclr, raw, rand, budget):
    floor, margin = float(budget["min_accuracy"]), float(budget["min_margin"])
    best = max(raw, rand)
    data = f"generated shapes {int(budget['image_size'])}x{int(budget['image_size'])}"
    measured("probe accuracy", simclr, floor, better="higher", data=data)
    measured("margin over the baselines", simclr - best, margin, better="higher", data=data,
             raw_pixels=raw, untrained=rand)
    if simclr < floor or simclr - best < margin:
        fail("a linear probe on your SimCLR encoder is not clearly better than the baselines.",
             expected=f"accuracy >= {floor:.2f} and >= {margin:.2f} above the best baseline "
             f"(raw pixels {raw:.3f}, untrained encoder {rand:.3f})",
             got=f"accuracy {simclr:.3f}",
             hint="check the loss on the examples above first; then that every batch makes "
             "two augmented views and that the optimizer updates the encoder")


@check(points=10, kind="training", timeout=240, profiles=("cpu",), catches=TRAINING_CATCHES,
       rules=("train.probe", "views.recipe", "train.loop"))
def test_simclr_linear_probe(student, budget):
    """SimCLR training on synthetic shapes: a linear probe on the encoder beats a probe on raw
    pixels and on the untrained encoder by a clear margin."""
    _judge(*_probe_accuracies(student, budget, "cpu"), budget)


@check(points=10, kind="training", timeout=500, profiles=("gpu",), catches=TRAINING_CATCHES,
       rules=("train.probe",))
def test_simclr_linear_probe_gpu(student, budget, device):
    """The training check on the GPU, with a larger data set, more epochs and a higher bar."""
    _judge(*_probe_accuracies(student, budget, device), budget)
