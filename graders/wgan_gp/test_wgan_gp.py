"""Grader of the wgan_gp assignment (WGAN-GP), contract §1 of the spec.

Every check names the mistake it is designed to catch (``catches=``). Public checks compare
with fixtures built from the reference (fixtures/public.safetensors); hidden checks call the
reference live on the grader's own copies of the inputs, or compare with answers known in
closed form: for a linear critic ``D(x) = w.x + b`` the penalty is ``lambda (|w| - 1)^2``,
and for ``D(x) = |x|^2 / 2`` with ``real == fake`` the gradient is ``x`` itself. The critics
are course modules (``torchgrade.course.wgan``) built in the worker; seeded
``torch.Generator``s cross the boundary as their state, so the student's ``eps`` draw must
reproduce the reference's.

The training check trains the course's small generator/critic pair with the student's
``train_wgan_gp`` on a ring of Gaussians whose size, centre, rotation and number of modes the
grader chooses (so a hard-coded 8-Gaussians sampler cannot pass), brings the weights back as
plain ``state_dict``s and judges them in this process: the generator's samples (mode
coverage and quality at its best of four snapshots) and the critic's gradient norms at
interpolates, which WGAN-GP holds near 1 and a BCE GAN or a broken penalty does not.
"""

from __future__ import annotations

import math

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
    expect_tensor,
    fail,
    measured,
)
from torchgrade.course import wgan

COURSE = "torchgrade.course.wgan"
PER_SAMPLE = ("the gradient norm taken over the whole batch (or over the wrong dims) instead "
              "of per sample over all non-batch dims")
CREATE_GRAPH = ("torch.autograd.grad without create_graph=True: the penalty does not "
                "back-propagate into the critic's parameters")
DRAW = ("an eps draw other than the contract's: without the generator, of shape [B, C, H, W] "
        "or [B] instead of [B, 1, ..., 1], or in another dtype")
SIGNS = "the losses' signs swapped (D(real) - D(fake), or +mean D(fake) for the generator)"
TOY = {"hidden": 16, "depth": 2}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _toy_pair(student, seed: int, dtype: torch.dtype = torch.float64):
    """The same ToyCritic here (for the reference) and in the worker (for the student)."""
    torch.manual_seed(seed)
    local = wgan.ToyCritic(**TOY).to(dtype)
    remote = student.construct(f"{COURSE}:ToyCritic", **TOY)
    remote.to(dtype)
    remote.load_state_dict({k: v.clone() for k, v in local.state_dict().items()})
    return local, remote


def _linear(student, w: torch.Tensor, b: float = 0.3):
    return student.construct(f"{COURSE}:LinearCritic", w, b)


def _penalty_grads(student, critic, real, fake, lam=10.0, seed=0):
    out = student.grad("gradient_penalty", critic, real, fake, lam, generator=_gen(seed),
                       wrt=(), grad_params=(0,))
    if not out.differentiable or not out.param_grads or not out.param_grads[0]:
        fail("the gradient penalty does not back-propagate into the critic's parameters.",
             expected="a penalty with requires_grad=True that reaches the critic's weights",
             got="a penalty cut off from the critic's parameters",
             hint="torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)")
    return out.param_grads[0]


# -- public checks: fixtures built from the reference -------------------------------------------
def _public_critic(student, case):
    remote = student.construct(f"{COURSE}:ToyCritic", **TOY)
    remote.load_state_dict({k.removeprefix("state."): v for k, v in case.items()
                            if k.startswith("state.")})
    return remote


@check(points=5, kind="value", visibility="public", catches=f"{PER_SAMPLE}; or {DRAW}",
       rules=("gp.eps-draw", "gp.per-sample", "gp.formula", "gp.requires-grad"))
def test_gradient_penalty_public(student, fixture_case):
    """gradient_penalty of a small ReLU critic on [6, 2] points, with a seeded generator."""
    case = fixture_case("losses")
    critic = _public_critic(student, case)
    got = student.gradient_penalty(critic, case["real"], case["fake"], case["lambda_gp"],
                                   generator=_gen(case["seed"]))
    expect_scalar(got, what="gradient_penalty(...)", requires_grad=False)
    expect_tensor(got, case["gp"], what="gradient_penalty(critic, real, fake, 10.0, generator)",
                  rtol=1e-4, atol=1e-5, hint="eps = torch.rand(B, 1, generator=generator, ...); "
                  "x_hat = eps*real + (1-eps)*fake; grad of critic(x_hat).sum() w.r.t. x_hat; "
                  "lambda * mean((|grad|_2 per sample - 1)**2)")


@check(points=5, kind="value", visibility="public", catches=SIGNS,
       rules=("loss.critic", "loss.generator"))
def test_losses_public(student, fixture_case):
    """critic_loss and generator_loss of the same critic match the reference."""
    case = fixture_case("losses")
    critic = _public_critic(student, case)
    got = student.critic_loss(critic, case["real"], case["fake"], case["lambda_gp"],
                              generator=_gen(case["seed"]))
    expect_tensor(got, case["critic_loss"], what="critic_loss(critic, real, fake, 10.0, "
                  "generator)", rtol=1e-4, atol=1e-5,
                  hint="mean D(fake) - mean D(real) + gradient_penalty(...) with the same "
                  "generator")
    got = student.generator_loss(critic, case["fake"])
    expect_tensor(got, case["generator_loss"], what="generator_loss(critic, fake)", rtol=1e-5,
                  atol=1e-6, hint="-mean D(fake)")


def _student_critic(student):
    critic = student.Critic()
    if not hasattr(critic, "type_name"):
        fail("Critic() must build an nn.Module.", expected="a module",
             got=type(critic).__name__)
    return critic


@check(points=2, kind="shape", visibility="public", catches="the course text's discriminator "
       "kept (a Sigmoid or BatchNorm layer), other layers than the contract's, or an output "
       "that is not [B, 1]", rules=("critic.layers", "critic.no-sigmoid", "critic.no-batchnorm"))
def test_critic_public(student):
    """Critic() maps [4, 1, 28, 28] to [4, 1] scores with the contract's layers: two convs and
    a linear layer, no Sigmoid, no BatchNorm."""
    critic = _student_critic(student)
    kinds = student.construct(f"{COURSE}:module_kinds", critic)
    banned = sorted(k for k in kinds if "Sigmoid" in k or "BatchNorm" in k)
    if banned:
        fail("the critic holds layers a WGAN-GP critic does not have.", expected="no Sigmoid, "
             "no BatchNorm", got=", ".join(banned), hint="drop the course text's nn.Sigmoid "
             "and nn.BatchNorm2d")
    shapes = sorted(list(v.shape) for v in critic.state_dict().values())
    want = sorted([[64, 1, 4, 4], [64], [128, 64, 4, 4], [128], [1, 128 * 7 * 7], [1]])
    if shapes != want:
        fail("the critic's parameters are not the contract's layers.", expected=f"parameter "
             f"shapes {want}", got=str(shapes), hint="Conv2d(1, 64, 4, 2, 1) -> LeakyReLU(0.2) "
             "-> Conv2d(64, 128, 4, 2, 1) -> LeakyReLU(0.2) -> Flatten -> Linear(128*7*7, 1)")
    out = student.call(critic, torch.randn(4, 1, 28, 28, generator=_gen(3)), _no_grad=True)
    expect_answer(out, shape=(4, 1), what="Critic()(x [4, 1, 28, 28])")


@check(points=2, kind="value", visibility="public", catches="a history other than the "
       "contract's (keys, one value per generator step, means over the n_critic updates, "
       "values before each update), or the modules left in train mode",
       rules=("train.loop", "train.history", "train.modes"))
def test_train_wgan_gp_public(student, fixture_case):
    """A 2-step run with a constant generator, fixed data and a linear critic, both in eval
    mode, gives the reference's history and leaves both modules in eval mode."""
    case = fixture_case("training")
    gen = student.construct(f"{COURSE}:ConstantGenerator", case["point"])
    critic = student.construct(f"{COURSE}:LinearCritic", case["w"])
    sampler = student.construct(f"{COURSE}:FixedSampler", case["data"])
    gen.eval()
    critic.eval()
    got = student.train_wgan_gp(gen, critic, sampler, **case["kwargs"],
                                generator_rng=_gen(case["seed"]))
    want = {k.removeprefix("history."): v for k, v in case.items() if k.startswith("history.")}
    check_history(got, want, steps=case["kwargs"]["steps"])
    for name, module in (("generator", gen), ("critic", critic)):
        if module.training is not False:
            fail(f"train_wgan_gp left the {name} in train mode.", expected="both modules back "
                 "in the mode they came in (eval here)", got=f"the {name} in train mode",
                 hint="was = module.training; module.train(); ...; module.train(was)")


def check_history(got, want: dict, steps: int) -> None:
    """``got`` is train_wgan_gp's history: the keys of ``want``, ``steps`` numbers each, close
    to ``want``'s."""
    if not isinstance(got, dict) or any(k not in got for k in want):
        fail("train_wgan_gp must return the history dict.", expected=f"keys {sorted(want)}",
             got=type(got).__name__ if not isinstance(got, dict) else f"keys {sorted(got)}")
    for key, expected in want.items():
        values = got[key]
        if not isinstance(values, list | tuple) or len(values) != steps:
            fail(f"history[{key!r}] must hold one value per generator step.",
                 expected=f"a list of {steps} numbers", got=repr(type(values).__name__))
        try:
            series = torch.tensor([float(v) for v in values], dtype=torch.float64)
        except (TypeError, ValueError):
            fail(f"history[{key!r}] must hold numbers.", expected="floats", got="other values")
        expect_tensor(series, torch.as_tensor(expected, dtype=torch.float64),
                      what=f"history[{key!r}]", rtol=1e-4, atol=1e-5,
                      hint="per generator step: the mean over its n_critic critic updates of "
                      "each value before the update; wasserstein_estimate = mean D(real) - "
                      "mean D(fake); one Adam per network with lr and betas")


@check(points=3, kind="robustness", visibility="public",
       catches="no ValueError for mismatched real/fake or a negative lambda_gp",
       rules=("conv.names-argument", "args.same-shape", "args.lambda"))
def test_bad_arguments_public(student):
    """Mismatched real and fake, and a negative lambda_gp, raise ValueError naming them."""
    critic = student.construct(f"{COURSE}:HalfSquareCritic")
    with expect_raises("ValueError", what="gradient_penalty with real [4, 2] and fake [4, 3]",
                       mentions="fake"):
        student.gradient_penalty(critic, torch.randn(4, 2), torch.randn(4, 3))
    with expect_raises("ValueError", what="gradient_penalty with lambda_gp=-1",
                       mentions="lambda_gp"):
        student.gradient_penalty(critic, torch.randn(4, 2), torch.randn(4, 2), -1.0)


# -- hidden checks: the penalty in closed form ---------------------------------------------------
@check(points=7, kind="value", catches=f"{PER_SAMPLE}; a squared norm, a missing '- 1', a sum "
       "instead of the batch mean, or lambda_gp ignored",
       rules=("gp.formula", "gp.per-sample", "gp.shapes", "gp.requires-grad"))
def test_linear_critic_closed_form(student):
    """For D(x) = w.x + b the penalty is lambda (|w| - 1)^2, for points and for images."""
    for shape, scale, lam, seed in (((5, 3), 0.4, 10.0, 1), ((4, 1, 4, 4), 0.1, 10.0, 2),
                                    ((3, 2, 3, 5), 0.3, 2.5, 3), ((1, 6), 1.7, 1.0, 4)):
        w = scale * _randn(*shape[1:], seed=seed)
        critic = _linear(student, w)
        critic.to(torch.float64)
        real, fake = _randn(*shape, seed=seed + 10), _randn(*shape, seed=seed + 20)
        got = student.gradient_penalty(critic, real, fake, lam, generator=_gen(seed))
        expected = lam * (float(w.norm()) - 1) ** 2
        expect_close(got, expected, what=f"the penalty of a linear critic on {list(shape)} "
                     f"inputs (lambda_gp={lam})", rtol=1e-7, atol=1e-9,
                     hint="every interpolate has gradient w: the norm per sample is |w|")


@check(points=7, kind="value", catches=PER_SAMPLE, rules=("gp.per-sample", "gp.shapes"))
def test_half_square_per_sample(student):
    """For D(x) = |x|^2/2 and real == fake the gradient at x_i is x_i: the penalty is
    lambda mean_i (|x_i| - 1)^2, which a norm over the whole batch does not give."""
    for shape, lam, seed in (((6, 2), 10.0, 1), ((4, 1, 5, 5), 10.0, 2), ((3, 3, 2, 4), 3.0, 3)):
        x = 0.3 * _randn(*shape, seed=seed)
        critic = student.construct(f"{COURSE}:HalfSquareCritic")
        got = student.gradient_penalty(critic, x, x.clone(), lam, generator=_gen(seed))
        norms = x.reshape(shape[0], -1).norm(dim=1)
        expected = lam * float(((norms - 1) ** 2).mean())
        expect_close(got, expected, what=f"the penalty of |x|^2/2 on {list(shape)} inputs with "
                     "real == fake", rtol=1e-7, atol=1e-9,
                     hint="grad.reshape(B, -1).norm(2, dim=1): one norm per sample over all "
                     "non-batch dims")


@check(points=8, kind="value", catches=CREATE_GRAPH, rules=("gp.create-graph",))
def test_penalty_reaches_critic_weights(student, reference):
    """The penalty back-propagates into the critic: for a linear critic d GP / d w is
    2 lambda (|w| - 1) w / |w|, and a ReLU critic's weight gradients equal the reference's
    (with real == fake, so that they do not depend on eps)."""
    w = 0.5 * _randn(3, seed=1)
    lin = _linear(student, w)
    lin.to(torch.float64)
    grads = _penalty_grads(student, lin, _randn(4, 3, seed=2), _randn(4, 3, seed=3))
    norm = float(w.norm())
    want = 2 * 10.0 * (norm - 1) * w / norm
    if grads.get("weight") is None:
        fail("the penalty does not reach the linear critic's weight.", expected="a gradient",
             got="none", hint="create_graph=True keeps the gradient in the graph")
    expect_tensor(grads["weight"], want, what="d GP / d w for a linear critic", rtol=1e-7,
                  atol=1e-9)

    # real == fake: every interpolate is real whatever eps is, so an eps mistake (checked
    # elsewhere) does not cost these points too.
    local, remote = _toy_pair(student, 5)
    real = _randn(8, 2, seed=6)
    fake = real.clone()
    gp = reference.gradient_penalty(local, real.clone(), fake.clone(), 10.0, _gen(8))
    names = [n for n, _ in local.named_parameters() if n.endswith("weight")]
    want_grads = torch.autograd.grad(gp, [dict(local.named_parameters())[n] for n in names])
    grads = _penalty_grads(student, remote, real, fake, seed=8)
    for name, want_g in zip(names, want_grads, strict=True):
        if grads.get(name) is None:
            fail(f"the penalty does not reach the ReLU critic's {name}.",
                 expected="a gradient", got="none", hint="create_graph=True")
        expect_tensor(grads[name], want_g, what=f"d GP / d {name} for a ReLU critic",
                      rtol=1e-6, atol=1e-9)


@check(points=7, kind="value", catches=DRAW, rules=("gp.eps-draw", "gp.shapes"))
def test_eps_draw_matches_reference(student, reference):
    """With a seeded generator the penalty equals the reference's: points (a ReLU critic,
    float32 and float64) and images (|x|^2/2 with real != fake, whose gradient is x_hat)."""
    for dtype, seed in ((torch.float32, 11), (torch.float64, 12)):
        local, remote = _toy_pair(student, seed, dtype)
        real, fake = _randn(7, 2, seed=seed, dtype=dtype), _randn(7, 2, seed=seed + 1,
                                                                   dtype=dtype)
        want = reference.gradient_penalty(local, real.clone(), fake.clone(), 10.0,
                                          _gen(seed + 2))
        got = student.gradient_penalty(remote, real, fake, 10.0, generator=_gen(seed + 2))
        expect_tensor(got, want.detach(), what=f"gradient_penalty on [7, 2] {dtype} points",
                      rtol=1e-4 if dtype == torch.float32 else 1e-8, atol=1e-6, dtype=dtype,
                      hint="eps = torch.rand(B, 1, generator=generator, device=real.device, "
                      "dtype=real.dtype)")
    square = student.construct(f"{COURSE}:HalfSquareCritic")
    for shape, seed in (((5, 1, 4, 4), 21), ((3, 2, 3, 3), 22)):
        real, fake = _randn(*shape, seed=seed), _randn(*shape, seed=seed + 1)
        want = reference.gradient_penalty(wgan.HalfSquareCritic(), real.clone(), fake.clone(),
                                          10.0, _gen(seed + 2))
        got = student.gradient_penalty(square, real, fake, 10.0, generator=_gen(seed + 2))
        expect_tensor(got, want.detach(), what=f"gradient_penalty on {list(shape)} images",
                      rtol=1e-8, atol=1e-10, hint="one eps per sample, shape [B, 1, 1, 1], "
                      "drawn with torch.rand(..., generator=generator)")


@check(points=4, kind="value", catches="fake detached (or x_hat rebuilt from detached inputs) "
       "inside gradient_penalty: the contract leaves detaching to the caller",
       rules=("gp.no-detach",))
def test_penalty_keeps_fake_in_the_graph(student, reference):
    """gradient_penalty itself does not detach fake: with real == fake = x the gradients
    w.r.t. real and fake are eps * g and (1 - eps) * g, so both exist and their sum is the
    reference's g = d GP / d x_hat, whatever eps is. The critic is |x|^2/2: a ReLU critic's
    input gradient is piecewise constant, so its penalty has zero gradient almost everywhere."""
    remote = student.construct(f"{COURSE}:HalfSquareCritic")
    x = 0.5 * _randn(6, 2, 2, seed=32)
    real_ref, fake_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    gp = reference.gradient_penalty(wgan.HalfSquareCritic(), real_ref, fake_ref, 10.0,
                                    _gen(34))
    want = sum(torch.autograd.grad(gp, [real_ref, fake_ref]))
    out = student.grad("gradient_penalty", remote, x, x.clone(), 10.0, generator=_gen(34),
                       wrt=(1, 2))
    if not out.differentiable or out.grads[1] is None:
        fail("gradient_penalty does not back-propagate to fake.", expected="a gradient for "
             "fake", got="none", hint="do not detach fake inside gradient_penalty; "
             "critic_loss detaches it")
    if out.grads[0] is None:
        fail("gradient_penalty does not back-propagate to real.", expected="a gradient for "
             "real", got="none", hint="x_hat = eps * real + (1 - eps) * fake, undetached")
    expect_tensor(out.grads[0] + out.grads[1], want, what="d GP / d real + d GP / d fake "
                  "(real == fake)", rtol=1e-6, atol=1e-9)


# -- hidden checks: the losses -------------------------------------------------------------------
@check(points=6, kind="value", catches=f"{SIGNS}; the penalty missing from critic_loss, or its "
       "lambda_gp or generator not passed on", rules=("loss.critic",))
def test_critic_loss_matches_reference(student, reference):
    """critic_loss equals the reference on points and images, with seeded generators."""
    for shape, lam, seed in (((8, 2), 10.0, 41), ((5, 2), 0.5, 42)):
        local, remote = _toy_pair(student, seed)
        real, fake = _randn(*shape, seed=seed + 1), _randn(*shape, seed=seed + 2)
        want = reference.critic_loss(local, real.clone(), fake.clone(), lam, _gen(seed + 3))
        got = student.critic_loss(remote, real, fake, lam, generator=_gen(seed + 3))
        expect_tensor(got, want.detach(), what=f"critic_loss on {list(shape)} points "
                      f"(lambda_gp={lam})", rtol=1e-8, atol=1e-10)
    w = 0.2 * _randn(1, 3, 3, seed=43)
    lin = _linear(student, w)
    lin.to(torch.float64)
    real, fake = _randn(4, 1, 3, 3, seed=44), _randn(4, 1, 3, 3, seed=45)
    flat = lambda x: (x.reshape(4, -1) @ w.reshape(-1)).mean()  # noqa: E731
    expected = float(flat(fake) - flat(real)) + 10.0 * (float(w.norm()) - 1) ** 2
    expect_close(student.critic_loss(lin, real, fake, 10.0, generator=_gen(46)), expected,
                 what="critic_loss of a linear critic on images", rtol=1e-8, atol=1e-10,
                 hint="mean D(fake) - mean D(real) + lambda (|w| - 1)^2")


@check(points=5, kind="value", catches="fake not detached in critic_loss (the critic's loss "
       "would train the generator too), or a critic_loss cut off from the critic",
       rules=("loss.critic-detaches", "loss.scalar"))
def test_critic_loss_detaches_fake(student):
    """critic_loss sends no gradient to fake, and its gradient w.r.t. a linear critic's w is
    mean(fake) - mean(real) + 2 lambda (|w| - 1) w / |w| (no eps in it)."""
    w = 0.4 * _randn(3, seed=51)
    lin = _linear(student, w)
    lin.to(torch.float64)
    real, fake = _randn(6, 3, seed=52), _randn(6, 3, seed=53)
    out = student.grad("critic_loss", lin, real, fake, 10.0, generator=_gen(54), wrt=(2,),
                       grad_params=(0,))
    if not out.differentiable:
        fail("critic_loss cannot be back-propagated.", expected="a loss that trains the critic",
             got="a tensor without grad", hint="no .item() or .detach() on the loss")
    g = out.grads[0]
    if g is not None and bool(g.abs().max() > 0):
        fail("critic_loss back-propagates into fake.", expected="no gradient for fake",
             got="a non-zero gradient", hint="fake = fake.detach() first: the critic's update "
             "must not push the generator")
    norm = float(w.norm())
    want = fake.mean(0) - real.mean(0) + 2 * 10.0 * (norm - 1) * w / norm
    got = out.param_grads[0].get("weight")
    if got is None:
        fail("critic_loss does not reach the critic's weight.", expected="a gradient",
             got="none", hint="create_graph=True in the penalty; no .detach() on D(real)")
    expect_tensor(got, want, what="d critic_loss / d w for a linear critic", rtol=1e-7,
                  atol=1e-9, hint="mean D(fake) - mean D(real) + lambda (|w| - 1)^2")


@check(points=5, kind="value", catches=f"{SIGNS}; or fake detached in generator_loss (the "
       "generator gets no gradient)", rules=("loss.generator", "loss.scalar"))
def test_generator_loss(student, reference):
    """generator_loss = -mean D(fake), with the reference's gradient w.r.t. fake."""
    local, remote = _toy_pair(student, 61)
    fake = _randn(9, 2, seed=62)
    fake_ref = fake.clone().requires_grad_(True)
    want_loss = reference.generator_loss(local, fake_ref)
    (want,) = torch.autograd.grad(want_loss, [fake_ref])
    out = student.grad("generator_loss", remote, fake, wrt=(1,))
    expect_scalar(out.value, what="generator_loss(critic, fake)", requires_grad=False)
    expect_tensor(out.value, want_loss.detach(), what="generator_loss(critic, fake)",
                  rtol=1e-8, atol=1e-10, hint="-critic(fake).mean()")
    if not out.differentiable or out.grads[0] is None:
        fail("generator_loss does not back-propagate to fake.", expected="a gradient for fake",
             got="none", hint="do not detach fake in the generator's loss")
    expect_tensor(out.grads[0], want, what="d generator_loss / d fake", rtol=1e-7, atol=1e-10)


def _loss_answer(got, what: str):
    """A penalty or loss of float64 inputs must be a finite 0-dim float64 tensor: a number,
    a [1] tensor, None or NaN is not one (expect_close alone accepts a plain number)."""
    return expect_answer(got, what=what, shape=(), dtype=torch.float64,
                         hint="return the mean as a 0-dim tensor (no .item(), no [None])")


@st.composite
def _shapes(draw):
    b = draw(st.integers(1, 6))
    rest = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    return (b, *rest)


@check(points=6, kind="invariant", catches=f"{PER_SAMPLE}; or lambda_gp not a plain factor",
       rules=("gp.formula", "gp.per-sample", "gp.shapes", "loss.critic", "loss.scalar"))
@given(shape=_shapes(), lam=st.floats(0.0, 50.0), seed=st.integers(0, 2**31 - 1))
@example(shape=(1, 3), lam=10.0, seed=0)
@example(shape=(4, 1, 2, 2), lam=0.0, seed=1)
def test_penalty_invariants(student, shape, lam, seed):
    """For any shape, batch size and lambda: the linear critic's penalty is lambda (|w|-1)^2,
    |x|^2/2 with real == fake gives lambda mean (|x_i| - 1)^2, and critic_loss with
    real == fake is the penalty alone."""
    w = _randn(*shape[1:], seed=seed) / math.sqrt(math.prod(shape[1:]))
    real, fake = _randn(*shape, seed=seed + 1), _randn(*shape, seed=seed + 2)
    lin = _linear(student, w)
    lin.to(torch.float64)
    what = "the linear critic's penalty"
    got = _loss_answer(student.gradient_penalty(lin, real, fake, lam, generator=_gen(seed)),
                       what)
    expect_close(got, lam * (float(w.norm()) - 1) ** 2, what=what, rtol=1e-7, atol=1e-9)
    square = student.construct(f"{COURSE}:HalfSquareCritic")
    norms = real.reshape(shape[0], -1).norm(dim=1)
    expected = lam * float(((norms - 1) ** 2).mean())
    what = "the penalty of |x|^2/2 with real == fake"
    got = _loss_answer(student.gradient_penalty(square, real, real.clone(), lam,
                                                generator=_gen(seed)), what)
    expect_close(got, expected, what=what, rtol=1e-7, atol=1e-9)
    what = "critic_loss with real == fake (the penalty alone)"
    got = _loss_answer(student.critic_loss(square, real, real.clone(), lam, generator=_gen(seed)),
                       what)
    expect_close(got, expected, what=what, rtol=1e-7, atol=1e-9)


# -- hidden checks: the critic -------------------------------------------------------------------
@check(points=4, kind="shape", catches="the course text's discriminator kept: a Sigmoid "
       "output or BatchNorm layers in the critic, or an output not [B, 1]",
       rules=("critic.layers", "critic.no-sigmoid", "critic.no-batchnorm"))
def test_critic_structure(student):
    """Critic maps [B, 1, 28, 28] to [B, 1] and holds no Sigmoid and no BatchNorm layer."""
    critic = _student_critic(student)
    kinds = student.construct(f"{COURSE}:module_kinds", critic)
    banned = sorted(k for k in kinds if "Sigmoid" in k or "BatchNorm" in k)
    if banned:
        fail("the critic holds layers a WGAN-GP critic must not have.",
             expected="no Sigmoid (the score is unbounded), no BatchNorm (the penalty is "
             "per sample)", got=", ".join(banned),
             hint="drop the course text's nn.Sigmoid and nn.BatchNorm2d (LayerNorm is fine)")
    out = student.call(critic, torch.randn(5, 1, 28, 28, generator=_gen(1)), _no_grad=True)
    expect_answer(out, shape=(5, 1), what="Critic()(x [5, 1, 28, 28])")


@check(points=5, kind="invariant", catches="a critic squashed into [0, 1] (torch.sigmoid in "
       "forward) or whose scores depend on the rest of the batch (batch statistics)",
       rules=("critic.no-sigmoid", "critic.no-batchnorm"))
def test_critic_is_unbounded_and_per_sample(student):
    """In train mode each sample's score ignores the rest of the batch, and scores are not
    confined to [0, 1]."""
    critic = _student_critic(student)
    critic.train()
    x = torch.randn(8, 1, 28, 28, generator=_gen(2))
    full = student.call(critic, x, _no_grad=True)
    part = student.call(critic, x[:3].clone(), _no_grad=True)
    expect_answer(full, shape=(8, 1), what="Critic()(x [8, 1, 28, 28])")
    expect_answer(part, shape=(3, 1), what="Critic()(x [3, 1, 28, 28])")
    expect_tensor(part, full[:3], what="the scores of 3 samples alone vs within a batch of 8",
                  rtol=1e-4, atol=1e-5, hint="no batch statistics in a WGAN-GP critic: "
                  "BatchNorm (or anything mixing samples) changes each sample's gradient")
    scores = [full]
    for scale in (5.0, 25.0):
        scores.append(expect_answer(student.call(critic, scale * x, _no_grad=True),
                                    shape=(8, 1), what=f"Critic()({scale:g} * x)"))
    # A constant score is per sample and unbounded: the scores must follow the images.
    expect_nonconstant(full, scores[1], what="Critic()", depends_on="the images",
                       hint="score each image with the network (no constant output)")
    allv = torch.cat([s.reshape(-1) for s in scores])
    if bool(((allv >= 0) & (allv <= 1)).all()):
        fail("the critic's scores all lie in [0, 1].", expected="an unbounded score",
             got="scores confined to [0, 1]", hint="no sigmoid: the critic is not a "
             "classifier")


# -- hidden checks: arguments and in-place edits ------------------------------------------------
@check(points=3, kind="robustness", catches="missing validation of ranks, lambda_gp and the "
       "training loop's arguments",
       rules=("conv.names-argument", "args.batch", "args.lambda", "args.same-shape",
              "train.positive-ints", "train.lr"))
def test_bad_arguments_hidden(student):
    """1-D inputs, NaN lambda_gp, and non-positive steps, n_critic or batch_size."""
    square = student.construct(f"{COURSE}:HalfSquareCritic")
    with expect_raises("ValueError", what="gradient_penalty with 1-D real and fake",
                       mentions="real"):
        student.gradient_penalty(square, torch.randn(4), torch.randn(4))
    with expect_raises("ValueError", what="gradient_penalty with lambda_gp=nan",
                       mentions="lambda_gp"):
        student.gradient_penalty(square, torch.randn(4, 2), torch.randn(4, 2), math.nan)
    with expect_raises("ValueError", what="generator_loss with 1-D fake", mentions="fake"):
        student.generator_loss(square, torch.randn(4))
    with expect_raises("ValueError", what="critic_loss with real [4, 2] and fake [4, 3]",
                       mentions="fake"):
        student.critic_loss(square, torch.randn(4, 2), torch.randn(4, 3))
    gen = student.construct(f"{COURSE}:ToyGenerator", 2, 8, 1)
    critic = student.construct(f"{COURSE}:ToyCritic", 8, 1)
    sampler = student.construct(f"{COURSE}:RingSampler")
    for name, value in (("steps", 0), ("n_critic", 0), ("batch_size", -2), ("lr", 0.0),
                        ("latent_dim", 0)):
        kwargs = {"steps": 1, "latent_dim": 2, name: value}
        with expect_raises("ValueError", what=f"train_wgan_gp with {name}={value}",
                           mentions=name):
            student.train_wgan_gp(gen, critic, sampler, **kwargs)


@check(points=2, kind="robustness", catches="editing inputs in place (real.requires_grad_(), "
       "fake.detach_(), interpolating into real)", rules=("conv.no-inplace",))
def test_does_not_modify_inputs(student):
    """gradient_penalty, critic_loss and generator_loss leave their inputs unchanged, and
    answer: a finite loss that differs between two batches (a function that returns nothing,
    or a constant, modifies nothing either)."""
    square = student.construct(f"{COURSE}:HalfSquareCritic")
    for name, n_inputs, base in (("gradient_penalty", 2, 0), ("critic_loss", 2, 2),
                                 ("generator_loss", 1, 4)):
        losses = []
        for offset in (0, 10):  # the reference: 1.42 and 4.90, 2.58 and 1.72, -1.21 and -1.91
            inputs = [_randn(4, 3, seed=base + offset + k) for k in range(1, n_inputs + 1)]
            extra = (10.0, _gen(0)) if n_inputs == 2 else ()
            loss, mutated = student.call(name, square, *inputs, *extra, _check_inputs=True)
            if mutated:
                fail(f"{name} modified its inputs in place.", expected="inputs unchanged",
                     got=f"argument(s) {mutated} changed")
            losses.append(_loss_answer(loss, f"{name} of [4, 3] inputs"))
        expect_nonconstant(*losses, what=name, depends_on="the samples",
                           hint="compute the loss from the critic's scores of the inputs")


# -- hidden checks: the training loop's history --------------------------------------------------
def history_setup():
    """A run whose history does not depend on any random draw: a constant generator, a fixed
    batch of data and a linear critic (whose penalty ignores eps)."""
    g = _gen(71)
    return {"point": torch.randn(3, generator=g), "data": torch.randn(4, 3, generator=g) + 1.0,
            "w": 0.3 * torch.randn(3, generator=g)}


@check(points=4, kind="value", catches="a history other than the contract's (values not "
       "averaged over the n_critic updates, W estimate with the wrong sign, missing keys), "
       "Adam's betas or lr ignored, or n_critic not honoured",
       rules=("train.loop", "train.history"))
def test_training_history_matches_reference(student, reference):
    """A 3-step run (n_critic=2, betas=(0.5, 0.9)) with a constant generator, fixed data and a
    linear critic gives the reference's history."""
    setup = history_setup()
    kwargs = {"steps": 3, "n_critic": 2, "lr": 0.05, "betas": (0.5, 0.9), "lambda_gp": 2.0,
              "batch_size": 4, "latent_dim": 2}
    want = reference.train_wgan_gp(wgan.ConstantGenerator(setup["point"]),
                                   wgan.LinearCritic(setup["w"]),
                                   wgan.FixedSampler(setup["data"]), **kwargs,
                                   generator_rng=_gen(72))
    gen = student.construct(f"{COURSE}:ConstantGenerator", setup["point"])
    critic = student.construct(f"{COURSE}:LinearCritic", setup["w"])
    sampler = student.construct(f"{COURSE}:FixedSampler", setup["data"])
    got = student.train_wgan_gp(gen, critic, sampler, **kwargs, generator_rng=_gen(72))
    check_history(got, want, steps=3)


# -- training: the randomised ring of Gaussians --------------------------------------------------
TRAINING_CATCHES = ("a training loop that does not learn the data (no optimizer step, "
                    "sample_real ignored, the generator pushed away from the data by a flipped "
                    "sign, a collapse onto a single mode), or a critic that is not trained "
                    "towards gradient norm 1: the course text's BCE GAN without the penalty, a "
                    "penalty that never reaches the critic (no create_graph) or a norm over "
                    "the whole batch")


def ring_config(budget: dict) -> dict:
    """The ring of this grading run: chosen by ``ring_seed`` (modes, radius, centre, phase)."""
    g = _gen(int(budget["ring_seed"]))
    lo, hi = (int(m) for m in budget["modes"])
    n_modes = int(torch.randint(lo, hi + 1, (1,), generator=g))
    r_lo, r_hi = (float(r) for r in budget["radius"])
    radius = r_lo + (r_hi - r_lo) * float(torch.rand(1, generator=g))
    centre = [float(c) for c in (torch.rand(2, generator=g) * 2 - 1) * float(budget["shift"])]
    phase = 2 * math.pi * float(torch.rand(1, generator=g))
    return {"n_modes": n_modes, "radius": radius, "centre": centre, "phase": phase,
            "std": float(budget["std_ratio"]) * radius}


def _fetch(local: torch.nn.Module, remote, what: str) -> None:
    """Load the trained weights of ``remote`` (a plain state_dict) into ``local``."""
    try:
        local.load_state_dict({k: v.detach().to("cpu", torch.float32)
                               for k, v in remote.state_dict().items()})
    except (RuntimeError, AttributeError, TypeError) as exc:
        fail(f"the {what} no longer has the course model's parameters.",
             expected=f"the {what} it was given, trained", got=str(exc)[:200])


def critic_gradient_norms(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor,
                          seed: int) -> torch.Tensor:
    """``|grad D(x_hat)|`` per point at random interpolates of ``real`` and ``fake`` -> [N]."""
    eps = torch.rand(len(real), 1, generator=_gen(seed))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    return grad.norm(dim=1)


def train_ring(student, budget: dict, device: str = "cpu") -> dict:
    """Train the course's toy pair with the student's loop; score both networks here.

    The ``steps`` generator steps are given as ``snapshots`` consecutive calls of
    ``train_wgan_gp`` on the same networks; after each, the weights come back as plain
    ``state_dict``s and are scored. GAN training on the ring hops between modes, so a single
    snapshot's coverage is partly luck: the generator is judged by its best snapshot (most
    modes covered, then most good samples). The critic is judged at the end: ``lipschitz`` is
    the fraction of its input-gradient norms, at interpolates of fresh data and generated
    points, that lie within ``lipschitz_band`` (WGAN-GP trains them towards 1 there).
    """
    ring = ring_config(budget)
    seed = int(budget["seed"])
    model = {"hidden": int(budget["hidden"]), "depth": int(budget["depth"])}
    latent = int(budget.get("latent_dim", 2))
    snapshots = max(1, int(budget.get("snapshots", 1)))
    torch.manual_seed(seed)
    g_local = wgan.ToyGenerator(latent, **model)
    c_local = wgan.ToyCritic(**model)
    gen = student.construct(f"{COURSE}:ToyGenerator", latent, **model)
    gen.load_state_dict({k: v.clone() for k, v in g_local.state_dict().items()})
    critic = student.construct(f"{COURSE}:ToyCritic", **model)
    critic.load_state_dict({k: v.clone() for k, v in c_local.state_dict().items()})
    sampler = student.construct(f"{COURSE}:RingSampler", ring["n_modes"], ring["radius"],
                                ring["centre"], ring["std"], ring["phase"], seed)
    centres = wgan.ring_centres(ring["n_modes"], ring["radius"], tuple(ring["centre"]),
                                ring["phase"])
    n_eval = int(budget["n_eval"])
    z = torch.randn(n_eval, latent, generator=_gen(seed + 1))
    history: list[dict] = []
    for k in range(snapshots):
        student.train_wgan_gp(gen, critic, sampler, steps=int(budget["steps"]) // snapshots,
                              n_critic=int(budget["n_critic"]), lr=float(budget["lr"]),
                              batch_size=int(budget["batch_size"]), latent_dim=latent,
                              generator_rng=_gen(seed + 100 * k))
        _fetch(g_local, gen, "generator")
        with torch.no_grad():
            samples = g_local(z)
        history.append(wgan.ring_scores(samples, centres, ring["std"],
                                        k=float(budget["k_std"]),
                                        min_share=float(budget["min_share"])))
    scores = dict(max(history, key=lambda h: (h["covered"], h["quality"])))
    scores["snapshots"] = [(h["covered"], round(h["quality"], 3)) for h in history]
    _fetch(c_local, critic, "critic")
    fresh = wgan.RingSampler(ring["n_modes"], ring["radius"], tuple(ring["centre"]),
                             ring["std"], ring["phase"], seed + 2)(n_eval)
    norms = critic_gradient_norms(c_local, fresh, samples, seed + 3)
    lo, hi = (float(b) for b in budget["lipschitz_band"])
    inside = (norms >= lo) & (norms <= hi)
    scores["lipschitz"] = float(inside.double().mean()) if bool(norms.isfinite().all()) else 0.0
    scores["median_norm"] = float(norms.median())
    return scores


def judge_ring(scores: dict, budget: dict) -> None:
    need_q, need_m = float(budget["min_quality"]), int(budget["min_covered"])
    need_l = float(budget["min_lipschitz"])
    data = f"a ring of {scores['n_modes']} Gaussians"
    measured("good samples", scores["quality"], need_q, better="higher", data=data)
    measured("modes covered", scores["covered"], need_m, better="higher", data=data)
    measured("critic gradient norms in band", scores["lipschitz"], need_l, better="higher",
             data=data)
    if scores["covered"] < need_m or scores["quality"] < need_q:
        fail("the generator trained by your train_wgan_gp does not learn the ring.",
             expected=f">= {need_m} of the {scores['n_modes']} modes covered and >= "
             f"{need_q:.0%} of samples within {float(budget['k_std']):g} std of a mode",
             got=f"{scores['covered']} modes covered, {scores['quality']:.1%} good samples",
             hint="check the penalty and the losses first (the checks above); then that each "
             "critic update uses sample_real(batch_size) and the optimizers step")
    if scores["lipschitz"] < need_l:
        lo, hi = (float(b) for b in budget["lipschitz_band"])
        fail("the critic trained by your train_wgan_gp is not a WGAN-GP critic: its gradient "
             "norm at interpolates of real and generated points is not held near 1.",
             expected=f">= {need_l:.0%} of the gradient norms within [{lo:g}, {hi:g}]",
             got=f"{scores['lipschitz']:.1%} within, median norm {scores['median_norm']:.3g}",
             hint="the penalty must be lambda_gp * mean((|grad|_2 - 1)^2) with the norm per "
             "sample and create_graph=True, and the critic's loss must be the Wasserstein "
             "one (mean D(fake) - mean D(real) + penalty), not a BCE")


@check(points=10, kind="training", timeout=600, profiles=("cpu",), catches=TRAINING_CATCHES,
       rules=("train.ring", "train.sample-real"))
def test_ring_training(student, budget):
    """The course's toy pair trained by train_wgan_gp on a randomised ring of Gaussians: the
    generator puts a fair share of its samples on the ring's modes (more than one mode
    covered), and the critic's gradient norm at interpolates is held near 1."""
    judge_ring(train_ring(student, budget), budget)


# -- GPU profile: the course's MNIST GAN -------------------------------------------------------
def gpu_digits(budget: dict) -> tuple[dict, torch.Tensor, torch.Tensor, str]:
    """The GPU check's table, digits ``uint8 [n_train, 28, 28]`` and labels: MNIST where
    $TORCHGRADE_DATA has it (``[profiles.gpu.mnist]`` over ``[profiles.gpu]``), else the
    course's generated digits (torchgrade.course.digits; no download)."""
    from torchgrade.course import datasets
    from torchgrade.course.digits import make_digits

    real = datasets.read_mnist()
    table = {k: v for k, v in budget.items() if not isinstance(v, dict)}
    if real is not None:
        table |= budget.get("mnist", {})
        n = int(table["n_train"])
        return table, real[0][:n], real[1][:n], "MNIST ($TORCHGRADE_DATA)"
    images, labels = make_digits(int(table["n_train"]), seed=int(table["data_seed"]))
    return table, images, labels, "generated digits 28x28"


def digit_classifier(images: torch.Tensor, labels: torch.Tensor, device: str,
                     epochs: int) -> torch.nn.Module:
    """A small CNN trained here on real MNIST (inputs in [-1, 1]): the judge of the digits."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = (images.float() / 127.5 - 1.0).unsqueeze(1).to(device)
    y = labels.to(device)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(256):
            loss = torch.nn.functional.cross_entropy(net(x[idx.to(device)]), y[idx.to(device)])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@check(points=10, kind="training", timeout=3000, profiles=("gpu",), catches=TRAINING_CATCHES,
       rules=("train.mnist",))
def test_mnist_wgan_gp_gpu(student, budget, device):
    """The course's MNIST generator and the student's Critic, trained by train_wgan_gp, make
    confident digits of all ten classes. Reads $TORCHGRADE_DATA/MNIST (idx files), and without
    it trains on the course's generated digits; a small CNN trained here on the same digits
    judges the samples, and the critic's input-gradient norms at interpolates of real and
    generated digits must be held near 1."""
    table, images, labels, data = gpu_digits(budget)
    seed, latent = int(table["seed"]), int(table["latent_dim"])
    torch.manual_seed(seed)
    g_local = wgan.MnistGenerator(latent)
    gen = student.construct(f"{COURSE}:MnistGenerator", latent)
    gen.load_state_dict({k: v.clone() for k, v in g_local.state_dict().items()})
    gen = gen.to(device)
    critic = _student_critic(student).to(device)
    sampler = student.construct(f"{COURSE}:TensorSampler", images.unsqueeze(1), seed, device)
    student.train_wgan_gp(gen, critic, sampler, steps=int(table["steps"]),
                          n_critic=int(table["n_critic"]), lr=float(table["lr"]),
                          batch_size=int(table["batch_size"]), latent_dim=latent,
                          generator_rng=torch.Generator(device).manual_seed(seed))
    g_local.load_state_dict({k: v.detach().cpu() for k, v in gen.state_dict().items()})
    g_local = g_local.to(device).eval()
    judge = digit_classifier(images, labels, device, int(table["classifier_epochs"]))
    with torch.no_grad():
        z = torch.randn(int(table["n_eval"]), latent, generator=_gen(seed + 1)).to(device)
        fake = g_local(z)
        probs = torch.softmax(judge(fake), dim=1).cpu()
    lipschitz, median = _critic_norms(student, critic, images, fake.cpu(), table, device)
    confident = probs.max(dim=1).values >= float(table["min_confidence"])
    counts = torch.bincount(probs.argmax(dim=1)[confident], minlength=10).double()
    fair = len(probs) / 10
    covered = int((counts >= float(table["min_share"]) * fair).sum())
    share = float(confident.double().mean()) if bool(probs.isfinite().all()) else 0.0
    need_covered, need_share = int(table.get("min_covered", 10)), float(table["min_confident"])
    measured("confident samples", share, need_share, better="higher", data=data)
    measured("digits covered", covered, need_covered, better="higher", data=data)
    lo, hi = (float(b) for b in table["lipschitz_band"])
    need_l = float(table["min_lipschitz"])
    measured(f"critic gradient norms in [{lo:g}, {hi:g}]", lipschitz, need_l, better="higher",
             data=data, median_norm=median)
    if covered < need_covered or share < need_share:
        fail("the digit generator trained by your train_wgan_gp does not make confident "
             "digits of every class.",
             expected=f"{need_covered} digits covered, >= {need_share:.0%} confident samples "
             f"({data})", got=f"{covered} digits covered, {share:.1%} confident",
             hint="check the critic (no Sigmoid, no BatchNorm) and the penalty first")
    if lipschitz < need_l:
        fail("the critic trained by your train_wgan_gp is not a WGAN-GP critic: its gradient "
             "norm at interpolates of real and generated digits is not held near 1.",
             expected=f">= {need_l:.0%} of the gradient norms within [{lo:g}, {hi:g}]",
             got=f"{lipschitz:.1%} within, median norm {median:.3g}",
             hint="the penalty must be lambda_gp * mean((|grad|_2 - 1)^2) with the norm per "
             "sample and create_graph=True")


def _critic_norms(student, critic, images: torch.Tensor, fake: torch.Tensor, table: dict,
                  device: str) -> tuple[float, float]:
    """The share of the student's critic's input-gradient norms, at random interpolates of
    real digits and ``fake``, within ``lipschitz_band`` (0 when any is not finite), and their
    median; computed in the worker (``student.grad``), compared here."""
    seed, n = int(table["seed"]), len(fake)
    pick = torch.randperm(len(images), generator=_gen(seed + 2))[:n]
    real = images[pick].unsqueeze(1).float() / 127.5 - 1.0  # [n, 1, 28, 28] in [-1, 1]
    eps = torch.rand(n, 1, 1, 1, generator=_gen(seed + 3))
    x_hat = eps * real + (1 - eps) * fake
    out = student.grad(critic, x_hat.to(device), wrt=(0,))
    grad = out.grads[0] if out.grads else None
    if not isinstance(grad, torch.Tensor) or tuple(grad.shape) != tuple(x_hat.shape):
        fail("the trained critic gives no gradient with respect to its input.",
             expected=f"a gradient of shape {list(x_hat.shape)}", got=type(grad).__name__,
             hint="the critic must be differentiable in its input (no .detach() in forward)")
    norms = grad.detach().to("cpu", torch.float64).flatten(1).norm(dim=1)
    lo, hi = (float(b) for b in table["lipschitz_band"])
    if not bool(norms.isfinite().all()):
        return 0.0, float("inf")
    return float(((norms >= lo) & (norms <= hi)).double().mean()), float(norms.median())
