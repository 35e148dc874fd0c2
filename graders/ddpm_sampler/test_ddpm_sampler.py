"""Grader of the ddpm_sampler assignment (DDPM and DDIM sampling), contract §5 of the spec.

Every check names the mistake it is designed to catch (``catches=``). Public checks compare
with fixtures built from the reference (fixtures/public.safetensors); hidden checks call the
reference live, or compare with values computed here independently in float64.

A ``DiffusionSchedule`` crosses the trust boundary as a plain record of its four fields: the
grader builds :class:`DiffusionSchedule` below (same name, same fields) from betas it computed
itself, and the student's functions receive a read-only record with attribute access
(``schedule.alphas_cumprod``). The student's own ``DiffusionSchedule.from_betas`` is judged on
its own, by ``student.call("DiffusionSchedule.from_betas", betas)``.

Samplers are driven by course models built in the worker (``torchgrade.course.toy2d``): the
closed-form ``GaussianOracle`` (the exact moments of the discretised sampler are computed here
by an affine recursion), a ``StepRecorder`` that records the timesteps visited, and, for the
training check, a small ``NoisePredictor`` trained on a 2-D mixture.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchgrade.checks import (
    check,
    expect_answer,
    expect_changed,
    expect_close,
    expect_nonconstant,
    expect_raises,
    expect_shape,
    expect_tensor,
    fail,
    measured,
)
from torchgrade.course import toy2d

ORACLE = "torchgrade.course.toy2d:GaussianOracle"
RECORDER = "torchgrade.course.toy2d:StepRecorder"
COSINE = "the cosine schedule without the 0.008 offset, without the 0.999 clip, or normalised "
PREV = "alphas_cumprod_prev shifted wrongly (prev[0] = abar[0], or abar itself), or not 1 at t=0"
VARIANCE = "beta and beta_tilde swapped, or beta_tilde with abar_t in place of abar_{t-1}"
LAST_STEP = "noise added (or drawn) at t = 0, the last step"
DRAW = ("a draw other than the contract's: torch.randn without the generator (randn_like, as "
        "in the course text), another shape or dtype, or drawing before the model call")
MEAN = "a wrong DDPM mean: sqrt(abar_t) or 1 - abar_t in place of sqrt(alpha_t) or sqrt(1 - abar_t)"
SPACING = ("DDIM timesteps other than the 'leading' spacing (linspace, 'trailing' T - 1 - ..., "
           "or t - ratio taken from the wrong list)")
ETA = "DDIM's sigma with eta ignored, squared or applied twice"


@dataclasses.dataclass
class DiffusionSchedule:
    """The grader's own schedule record: the four fields of the contract, float64 [T]."""

    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor


def schedule_of(betas: torch.Tensor) -> DiffusionSchedule:
    """Build the schedule in float64 with plain loops (independent of any submission)."""
    b = [float(v) for v in betas]
    abar, prod = [], 1.0
    for v in b:
        prod *= 1 - v
        abar.append(prod)
    f64 = torch.float64
    return DiffusionSchedule(
        torch.tensor(b, dtype=f64), torch.tensor([1 - v for v in b], dtype=f64),
        torch.tensor(abar, dtype=f64), torch.tensor([1.0] + abar[:-1], dtype=f64))


def linear_betas(total: int, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    return torch.linspace(start, end, total, dtype=torch.float64)


def cosine_betas(total: int) -> list[float]:
    def abar(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    return [min(1 - abar((i + 1) / total) / abar(i / total), 0.999) for i in range(total)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _fields(record) -> dict[str, torch.Tensor]:
    names = ("betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev")
    try:
        return {n: getattr(record, n) for n in names}
    except AttributeError as exc:
        fail("DiffusionSchedule.from_betas must return a schedule with the contract's fields.",
             expected=", ".join(names), got=str(exc)[:200])
    raise AssertionError("unreachable")


def posterior_step(eps, t, x_t, sched, noise, variance):
    """DDPM's x_{t-1} from the posterior form, eq. (7), with the given standard normal noise."""
    beta, abar = float(sched.betas[t]), float(sched.alphas_cumprod[t])
    abar_prev = float(sched.alphas_cumprod[t - 1]) if t > 0 else 1.0
    x0 = (x_t - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
    mean = (math.sqrt(abar_prev) * beta / (1 - abar) * x0
            + math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar) * x_t)
    if t == 0:
        return mean
    var = beta if variance == "beta" else beta * (1 - abar_prev) / (1 - abar)
    return mean + math.sqrt(var) * noise


# -- public checks: fixtures built from the reference -------------------------------------------
@check(points=4, kind="value", visibility="public",
       catches=f"{COSINE}, or a float32 or torch.arange-based linear schedule",
       rules=("schedule.linear", "schedule.cosine"))
def test_schedules_public(student, fixture_case):
    """make_beta_schedule gives the reference's linear and cosine betas (T = 10), in float64."""
    case = fixture_case("schedules")
    got = student.make_beta_schedule(10, "linear", 1e-3, 0.2)
    expect_tensor(got, case["linear"], what="make_beta_schedule(10, 'linear', 1e-3, 0.2)",
                  rtol=1e-12, atol=1e-15, dtype=torch.float64,
                  hint="torch.linspace(beta_start, beta_end, T, dtype=torch.float64)")
    got = student.make_beta_schedule(10, "cosine")
    expect_tensor(got, case["cosine"], what="make_beta_schedule(10, 'cosine')", rtol=1e-10,
                  atol=1e-13, dtype=torch.float64,
                  hint="abar(u) = cos((u + 0.008) / 1.008 * pi / 2)^2; beta_i = min(1 - "
                  "abar((i+1)/T) / abar(i/T), 0.999)")


@check(points=4, kind="value", visibility="public", catches=PREV, rules=("schedule.fields",))
def test_schedule_fields_public(student, fixture_case):
    """DiffusionSchedule.from_betas fills betas, alphas, alphas_cumprod, alphas_cumprod_prev."""
    case = fixture_case("fields")
    got = _fields(student.call("DiffusionSchedule.from_betas", case["betas"]))
    for name in ("alphas", "alphas_cumprod", "alphas_cumprod_prev"):
        expect_tensor(got[name], case[name], what=f"schedule.{name}", rtol=1e-12, atol=1e-15,
                      dtype=torch.float64, hint="alphas = 1 - betas; alphas_cumprod = "
                      "cumprod(alphas); alphas_cumprod_prev = [1, alphas_cumprod[:-1]]")


@check(points=4, kind="value", visibility="public",
       catches="q_sample or predict_x0 with abar_t and 1 - abar_t swapped, a missing sqrt, or "
       "one timestep for the whole batch",
       rules=("forward.q-sample", "forward.predict-x0", "schedule.record"))
def test_forward_process_public(student, fixture_case):
    """q_sample and predict_x0 match the reference with a different t per sample."""
    case = fixture_case("forward")
    sched = schedule_of(fixture_case("fields")["betas"])
    got = student.q_sample(case["x0"], case["t"], case["noise"], sched)
    expect_tensor(got, case["x_t"], what="q_sample(x0, t, noise, schedule)", rtol=1e-10,
                  atol=1e-12, hint="sqrt(abar[t]) * x0 + sqrt(1 - abar[t]) * noise, abar[t] "
                  "reshaped to [B, 1, ...]")
    got = student.predict_x0(case["x_t"], case["t"], case["noise"], sched)
    expect_tensor(got, case["x0_hat"], what="predict_x0(x_t, t, eps, schedule)", rtol=1e-10,
                  atol=1e-12, hint="(x_t - sqrt(1 - abar[t]) * eps) / sqrt(abar[t])")


@check(points=5, kind="value", visibility="public",
       catches=f"{VARIANCE}; {LAST_STEP}; {DRAW}; clip_sample without the posterior-mean form",
       rules=("ddpm.mean", "ddpm.variance", "ddpm.last-step", "ddpm.draw", "ddpm.clip",
              "schedule.record"))
def test_ddpm_step_public(student, fixture_case):
    """ddpm_step reproduces the reference's seeded step: both variances, t = 0, clip_sample."""
    case = fixture_case("step")
    sched = schedule_of(fixture_case("fields")["betas"])
    for name, t, variance, clip in (("mid_tilde", 7, "beta_tilde", False),
                                    ("mid_beta", 7, "beta", False),
                                    ("last_beta", 0, "beta", False),
                                    ("clip", 3, "beta_tilde", True)):
        got = student.ddpm_step(case["eps"], t, case["x_t"], sched, generator=_gen(case["seed"]),
                                variance=variance, clip_sample=clip)
        expect_tensor(got, case[name], what=f"ddpm_step(eps, t={t}, x_t, schedule, generator, "
                      f"variance={variance!r}, clip_sample={clip})", rtol=1e-9, atol=1e-12,
                      hint="mean (x_t - beta_t / sqrt(1 - abar_t) * eps) / sqrt(alpha_t); "
                      "beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t); at t = 0 return "
                      "the mean (no draw); noise = torch.randn(x_t.shape, generator=generator, "
                      "device=x_t.device, dtype=x_t.dtype)")


@check(points=5, kind="value", visibility="public", catches=f"{DRAW}; {SPACING}; {ETA}",
       rules=("sampler.draws", "sampler.timesteps", "ddim.spacing", "ddim.update", "ddim.draws"))
def test_samplers_public(student, fixture_case):
    """Seeded ddpm_sample and ddim_sample (eta 0 and 1) driven by the Gaussian oracle."""
    case = fixture_case("samplers")
    sched = schedule_of(fixture_case("fields")["betas"])
    oracle = student.construct(ORACLE, case["mu"], case["s"], sched.alphas_cumprod)
    got = student.ddpm_sample(oracle, (6, 2), sched, generator=_gen(case["seed"]))
    expect_tensor(got, case["ddpm"], what="ddpm_sample(oracle, (6, 2), schedule [T = 20])",
                  rtol=1e-5, atol=1e-5, dtype=torch.float32,
                  hint="x = torch.randn(shape, generator=generator, device=device), then "
                  "ddpm_step for t = T-1, ..., 0 with model(x, t_batch)")
    for eta, key in ((0.0, "ddim_eta0"), (1.0, "ddim_eta1")):
        got = student.ddim_sample(oracle, (6, 2), sched, num_steps=6, eta=eta,
                                  generator=_gen(case["seed"]))
        expect_tensor(got, case[key], what=f"ddim_sample(oracle, (6, 2), schedule [T = 20], "
                      f"num_steps=6, eta={eta})", rtol=1e-5, atol=1e-5, dtype=torch.float32,
                      hint="timesteps arange(num_steps) * (T // num_steps), reversed: 15, 12, "
                      "..., 0; abar_prev = 1 below 0; sigma = eta * sqrt((1 - abar_prev) / "
                      "(1 - abar_t) * (1 - abar_t / abar_prev))")


@check(points=3, kind="robustness", visibility="public",
       catches="no ValueError for eta outside [0, 1] or an unknown variance",
       rules=("conv.names-argument", "ddim.eta", "ddpm.variance-name"))
def test_bad_arguments_public(student):
    """eta = 1.5 and variance = 'fixed_large' raise ValueError naming the argument."""
    sched = schedule_of(linear_betas(10))
    oracle = student.construct(ORACLE, 0.0, 1.0, sched.alphas_cumprod)
    with expect_raises("ValueError", what="ddim_sample with eta=1.5", mentions="eta"):
        student.ddim_sample(oracle, (2, 2), sched, num_steps=5, eta=1.5, generator=_gen(0))
    with expect_raises("ValueError", what="ddpm_step with variance='fixed_large'",
                       mentions="variance"):
        student.ddpm_step(torch.zeros(2, 2), 3, torch.zeros(2, 2), sched,
                          variance="fixed_large")


# -- hidden checks: schedules ---------------------------------------------------------------------
@check(points=2, kind="value", catches="a linear schedule in float32, with arange, or with "
       "beta_start and beta_end swapped", rules=("schedule.linear",))
def test_linear_schedule(student):
    """make_beta_schedule(T, 'linear', ...) is linspace in float64 for several T and ranges."""
    for total, start, end in ((1000, 1e-4, 0.02), (7, 0.01, 0.3), (1, 0.05, 0.05)):
        got = student.make_beta_schedule(total, "linear", start, end)
        expect_tensor(got, linear_betas(total, start, end), what=f"linear schedule (T={total})",
                      rtol=1e-12, atol=1e-15, dtype=torch.float64)


@check(points=5, kind="value", catches=COSINE, rules=("schedule.cosine",))
def test_cosine_schedule_closed_form(student):
    """The cosine schedule equals Nichol & Dhariwal's formula, the 0.999 clip at the end."""
    for total in (1000, 50, 3):
        got = student.make_beta_schedule(total, "cosine")
        want = torch.tensor(cosine_betas(total), dtype=torch.float64)
        expect_tensor(got, want, what=f"cosine schedule (T={total})", rtol=1e-9, atol=1e-13,
                      dtype=torch.float64)


@st.composite
def _schedule_args(draw):
    kind = draw(st.sampled_from(["linear", "cosine"]))
    start = draw(st.floats(1e-5, 0.05))
    return draw(st.integers(1, 400)), kind, start, draw(st.floats(start, 0.5))


@check(points=4, kind="invariant", catches=f"{PREV}; betas outside (0, 1) (an unclipped "
       "cosine schedule reaches 1)",
       rules=("schedule.fields", "schedule.linear", "schedule.cosine"))
@given(args=_schedule_args())
@example(args=(1000, "cosine", 1e-4, 0.02))
@example(args=(1, "cosine", 1e-4, 0.02))
def test_schedule_invariants(student, args):
    """Betas increase (strictly from the first to the last, where T > 1 and the schedule has a
    range) and stay in (0, 1); abar decreases; prev[0] = 1, prev[t] = abar[t-1]."""
    total, kind, start, end = args
    what = f"make_beta_schedule(T={total}, {kind!r})"
    betas = expect_answer(student.make_beta_schedule(total, kind, start, end), what=what,
                          shape=(total,), dtype=torch.float64)
    if not (bool((betas > 0).all()) and bool((betas < 1).all())):
        fail(f"the {kind} schedule has betas outside (0, 1).", expected="0 < beta < 1",
             got=f"min {float(betas.min()):.3g}, max {float(betas.max()):.6g}")
    if total > 1 and not bool((betas[1:] >= betas[:-1] - 1e-15).all()):
        fail(f"the {kind} schedule's betas are not increasing.", expected="beta_t <= beta_t+1",
             got="a decrease")
    if total > 1 and (kind == "cosine" or end - start > 1e-6):
        # Constant betas are increasing and in (0, 1): the schedule must move with t (the
        # cosine schedule's ends are 0.51 and 0.999 at T = 2; linear ones start and end).
        expect_nonconstant(betas[0], betas[-1], what=f"the {kind} schedule",
                           depends_on="the timestep t", hint="linear: linspace(beta_start, "
                           "beta_end, T); cosine: Nichol & Dhariwal's abar ratio per step")
    got = _fields(student.call("DiffusionSchedule.from_betas", betas))
    abar = expect_answer(got["alphas_cumprod"], what="schedule.alphas_cumprod",
                         shape=(total,), dtype=torch.float64)
    expect_answer(got["alphas_cumprod_prev"], what="schedule.alphas_cumprod_prev",
                  shape=(total,), dtype=torch.float64)
    if total > 1 and not bool((abar[1:] < abar[:-1]).all()):
        fail("alphas_cumprod does not decrease.", expected="abar_t+1 < abar_t", got="not")
    expect_close(got["alphas_cumprod_prev"][0], 1.0, what="alphas_cumprod_prev[0]", rtol=0,
                 atol=0, hint="abar_{-1} = 1: nothing has been noised before the first step")
    expect_tensor(got["alphas_cumprod_prev"][1:], abar[:-1], what="alphas_cumprod_prev[1:]",
                  rtol=0, atol=0, hint="alphas_cumprod_prev[t] = alphas_cumprod[t - 1]")


@check(points=4, kind="value", catches=f"{PREV}; alphas_cumprod as a sum or in float32",
       rules=("schedule.fields",))
def test_from_betas_matches(student):
    """from_betas of arbitrary betas gives the four fields computed here in float64."""
    betas = 0.001 + 0.2 * torch.rand(37, generator=_gen(8), dtype=torch.float64)
    want = schedule_of(betas)
    got = _fields(student.call("DiffusionSchedule.from_betas", betas))
    for name in ("betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev"):
        expect_tensor(got[name], getattr(want, name), what=f"schedule.{name}", rtol=1e-12,
                      atol=1e-15, dtype=torch.float64)


# -- hidden checks: the forward process -----------------------------------------------------------
@check(points=4, kind="invariant", catches="q_sample or predict_x0 with a wrong coefficient, "
       "one timestep for the whole batch, or results in another dtype or shape",
       rules=("forward.q-sample", "forward.predict-x0", "conv.keep"))
@given(seed=st.integers(0, 2**31 - 1), rank=st.integers(1, 4),
       dtype=st.sampled_from([torch.float32, torch.float64]))
@example(seed=0, rank=4, dtype=torch.float32)
def test_forward_process_invariants(student, seed, rank, dtype):
    """q_sample is sqrt(abar) x0 + sqrt(1 - abar) noise per sample; predict_x0 inverts it."""
    sched = schedule_of(torch.tensor(cosine_betas(100), dtype=torch.float64))
    shape = (5, 3, 2, 2)[:rank]
    x0, noise = _randn(*shape, seed=seed, dtype=dtype), _randn(*shape, seed=seed + 1,
                                                                dtype=dtype)
    t = torch.randint(0, 100, (shape[0],), generator=_gen(seed + 2))
    abar = sched.alphas_cumprod[t].reshape(-1, *([1] * (rank - 1)))
    want = abar.sqrt() * x0.double() + (1 - abar).sqrt() * noise.double()
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    x_t = student.q_sample(x0, t, noise, sched)
    expect_tensor(x_t, want, what=f"q_sample of {list(shape)} {dtype}", rtol=tol, atol=tol,
                  dtype=dtype)
    back = student.predict_x0(x_t, t, noise, sched)
    expect_tensor(back, x0, what="predict_x0(q_sample(x0, t, noise), t, noise)",
                  rtol=1e3 * tol, atol=1e3 * tol, dtype=dtype)


# -- hidden checks: one DDPM step ---------------------------------------------------------------
@check(points=6, kind="value", catches=f"{VARIANCE}; {DRAW}; {MEAN}; clip_sample without "
       "clamping or without the posterior-mean form",
       rules=("ddpm.mean", "ddpm.variance", "ddpm.draw", "ddpm.clip"))
def test_ddpm_step_matches_reference(student, reference):
    """ddpm_step equals the reference for cosine and linear schedules, each variance and t,
    with and without clip_sample, with the same seeded generator."""
    for kind, seed in (("cosine", 1), ("linear", 2)):
        sched = schedule_of(reference.make_beta_schedule(50, kind))
        x = 2.0 * _randn(4, 2, 3, seed=seed)
        eps = _randn(4, 2, 3, seed=seed + 10)
        for t in (49, 20, 1):
            for variance in ("beta", "beta_tilde"):
                for clip in (False, True):
                    want = reference.ddpm_step(eps.clone(), t, x.clone(), sched,
                                               _gen(seed + t), variance, clip)
                    got = student.ddpm_step(eps, t, x, sched, generator=_gen(seed + t),
                                            variance=variance, clip_sample=clip)
                    expect_tensor(got, want, what=f"ddpm_step ({kind}, t={t}, {variance}, "
                                  f"clip_sample={clip})", rtol=1e-9, atol=1e-11,
                                  dtype=torch.float64)


@check(points=5, kind="value", catches=f"{MEAN}; {VARIANCE}; {PREV} inside ddpm_step",
       rules=("ddpm.mean", "ddpm.variance"))
def test_ddpm_posterior_closed_form(student):
    """ddpm_step equals the posterior q(x_{t-1} | x_t, x0_hat) computed here (eq. (6)-(7)),
    its noise being the contract's one draw from the seeded generator."""
    sched = schedule_of(linear_betas(200, 1e-3, 0.05))
    x = _randn(3, 5, seed=21)
    eps = _randn(3, 5, seed=22)
    for t in (199, 100, 1):
        noise = torch.randn(x.shape, generator=_gen(t), dtype=x.dtype)
        for variance in ("beta", "beta_tilde"):
            got = student.ddpm_step(eps, t, x, sched, generator=_gen(t), variance=variance)
            expect_tensor(got, posterior_step(eps, t, x, sched, noise, variance),
                          what=f"ddpm_step (t={t}, {variance})", rtol=1e-9, atol=1e-11)


@check(points=4, kind="value", catches=LAST_STEP, rules=("ddpm.last-step",))
def test_no_noise_at_last_step(student):
    """At t = 0 ddpm_step returns the mean (x_t - beta_0/sqrt(1 - abar_0) eps)/sqrt(alpha_0),
    whatever the generator, for both variances: no noise and no draw."""
    sched = schedule_of(linear_betas(20, 0.05, 0.2))
    x, eps = _randn(4, 3, seed=31), _randn(4, 3, seed=32)
    beta = 0.05
    mean = (x - beta / math.sqrt(beta) * eps) / math.sqrt(1 - beta)  # 1 - abar_0 = beta_0
    for variance in ("beta", "beta_tilde"):
        for seed in (1, 2):
            got = student.ddpm_step(eps, 0, x, sched, generator=_gen(seed), variance=variance)
            expect_tensor(got, mean, what=f"ddpm_step at t=0 ({variance})", rtol=1e-10,
                          atol=1e-12, hint="the last step returns the mean: no noise at t = 0")


# -- hidden checks: the samplers --------------------------------------------------------------
@check(points=4, kind="value", catches=f"{SPACING}; DDPM timesteps other than T-1, ..., 0 "
       "(one step too many or too few, 1-based timesteps)",
       rules=("sampler.timesteps", "ddim.spacing"))
def test_timesteps_visited(student):
    """A recording model sees T-1, ..., 0 in ddpm_sample and the 'leading' timesteps in
    ddim_sample (T = 100: num_steps 7 -> ratio 14 -> 84, 70, ..., 0)."""
    sched = schedule_of(linear_betas(100))
    rec = student.construct(RECORDER)
    student.ddpm_sample(rec, (2, 3), sched, generator=_gen(1))
    seen = list(rec.seen)
    if seen != list(range(99, -1, -1)):
        fail("ddpm_sample does not call the model at t = T-1, ..., 0 in order.",
             expected="99, 98, ..., 0 (100 calls)", got=f"{len(seen)} calls: {seen[:3]} ... "
             f"{seen[-3:]}", hint="for t in reversed(range(T))")
    for steps, want in ((7, list(range(84, -1, -14))), (10, list(range(90, -1, -10))),
                        (100, list(range(99, -1, -1)))):
        rec = student.construct(RECORDER)
        student.ddim_sample(rec, (2, 3), sched, num_steps=steps, eta=0.0, generator=_gen(1))
        seen = list(rec.seen)
        if seen != want:
            fail(f"ddim_sample with num_steps={steps} (T=100) visits the wrong timesteps.",
                 expected=f"{want[:3]} ... {want[-2:]} ({len(want)} calls)",
                 got=f"{seen[:3]} ... {seen[-2:]} ({len(seen)} calls)",
                 hint="'leading' spacing: ratio = T // num_steps; timesteps "
                 "arange(num_steps) * ratio, reversed")


@check(points=4, kind="value", catches=f"{DRAW}; {VARIANCE} in the sampler; {LAST_STEP}",
       rules=("sampler.draws", "ddpm.draw"))
def test_ddpm_sample_matches_reference(student, reference):
    """Seeded ddpm_sample driven by the oracle equals the reference (T = 60, both variances)."""
    sched = schedule_of(reference.make_beta_schedule(60, "cosine"))
    oracle = student.construct(ORACLE, 0.3, 0.4, sched.alphas_cumprod)
    local = toy2d.GaussianOracle(0.3, 0.4, sched.alphas_cumprod)
    for variance, seed in (("beta_tilde", 41), ("beta", 42)):
        want = reference.ddpm_sample(local, (8, 3), sched, _gen(seed), variance=variance)
        got = student.ddpm_sample(oracle, (8, 3), sched, generator=_gen(seed),
                                  variance=variance)
        expect_tensor(got, want, what=f"ddpm_sample (T=60, variance={variance!r})", rtol=1e-4,
                      atol=1e-4, dtype=torch.float32)


@check(points=5, kind="value", catches=f"{SPACING}; {ETA}; {DRAW}",
       rules=("ddim.spacing", "ddim.update", "ddim.draws"))
def test_ddim_sample_matches_reference(student, reference):
    """Seeded ddim_sample equals the reference: eta 0, 0.5 and 1, num_steps dividing T or not."""
    sched = schedule_of(reference.make_beta_schedule(100, "linear"))
    oracle = student.construct(ORACLE, -0.4, 0.3, sched.alphas_cumprod)
    local = toy2d.GaussianOracle(-0.4, 0.3, sched.alphas_cumprod)
    for steps, eta, seed in ((7, 0.0, 51), (10, 1.0, 52), (30, 0.5, 53)):
        want = reference.ddim_sample(local, (8, 3), sched, steps, eta, _gen(seed))
        got = student.ddim_sample(oracle, (8, 3), sched, num_steps=steps, eta=eta,
                                  generator=_gen(seed))
        expect_tensor(got, want, what=f"ddim_sample (T=100, num_steps={steps}, eta={eta})",
                      rtol=1e-4, atol=1e-4, dtype=torch.float32)


def _judge_moments(x: torch.Tensor, mean: float, var: float, what: str, hint: str) -> None:
    """Sample mean and std within 5 standard errors of the exact moments."""
    n = x.numel()
    sd = math.sqrt(var)
    got_m, got_sd = float(x.double().mean()), float(x.double().std())
    tol_m, tol_sd = 5 * sd / math.sqrt(n) + 1e-5, 5 * sd / math.sqrt(2 * n) + 1e-5
    if not (abs(got_m - mean) <= tol_m and abs(got_sd - sd) <= tol_sd):
        fail(f"{what}: the samples do not have the exact moments of the discretised sampler "
             "(data N(mu, s^2), the ideal noise predictor).",
             expected=f"mean {mean:.5f} +- {tol_m:.5f}, std {sd:.5f} +- {tol_sd:.5f}",
             got=f"mean {got_m:.5f}, std {got_sd:.5f}", hint=hint)


ORACLE_SHAPE = (4000, 4)  # 16000 independent samples: 5 standard errors of the std are 3 %


@check(points=5, kind="value", catches=f"{MEAN}; {VARIANCE}; {PREV}", rules=("sampler.moments",))
def test_oracle_moments_ddpm(student):
    """DDPM-1000 driven by the Gaussian oracle (mu 0.5, s 0.05) has the recursion's exact mean
    and std, for both variances (beta_tilde's std is 8 % below beta's here)."""
    mu, s = 0.5, 0.05
    betas = linear_betas(1000)
    sched = schedule_of(betas)
    oracle = student.construct(ORACLE, mu, s, sched.alphas_cumprod)
    for variance, seed in (("beta_tilde", 61), ("beta", 62)):
        x = student.ddpm_sample(oracle, ORACLE_SHAPE, sched, generator=_gen(seed),
                                variance=variance)
        expect_shape(x, ORACLE_SHAPE, what="ddpm_sample(oracle, (4000, 4), ...)")
        m, v = toy2d.ddpm_moments(mu, s, betas.tolist(), variance)
        _judge_moments(x, m, v, f"ddpm_sample (variance={variance!r})",
                       "each step: mean (x - beta/sqrt(1 - abar) eps)/sqrt(alpha), noise "
                       "sqrt(variance) z except at t = 0")


@check(points=5, kind="value", catches=f"{ETA}; {SPACING}; a wrong DDIM update (x0 and the "
       "direction to x_t with swapped coefficients, sigma^2 not taken off the direction)",
       rules=("sampler.moments", "ddim.update"))
def test_oracle_moments_ddim(student):
    """DDIM-50 on the cosine schedule driven by the oracle has the recursion's exact moments for
    eta 0 and eta 1 (several percent below s, as the spec says)."""
    mu, s = 0.5, 0.05
    betas = cosine_betas(1000)
    sched = schedule_of(torch.tensor(betas, dtype=torch.float64))
    oracle = student.construct(ORACLE, mu, s, sched.alphas_cumprod)
    for eta, seed in ((0.0, 71), (1.0, 72)):
        x = student.ddim_sample(oracle, ORACLE_SHAPE, sched, num_steps=50, eta=eta,
                                generator=_gen(seed))
        expect_shape(x, ORACLE_SHAPE, what="ddim_sample(oracle, (4000, 4), ...)")
        m, v = toy2d.ddim_moments(mu, s, betas, 50, eta)
        _judge_moments(x, m, v, f"ddim_sample (num_steps=50, eta={eta})",
                       "x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + "
                       "sigma z, sigma = eta * sqrt((1-abar_prev)/(1-abar_t) * (1 - "
                       "abar_t/abar_prev))")


@check(points=2, kind="invariant", catches="results in another dtype, shape or device than "
       "the contract's (float64 steps cast to float32, samplers ignoring shape), or a "
       "placeholder of the right shape (zeros) that ignores x_t and the generator",
       rules=("conv.keep", "sampler.draws"))
def test_shapes_and_dtypes(student):
    """ddpm_step keeps x_t's shape and dtype; samplers return float32 tensors of `shape`. Each
    result is finite and follows its input (x_t for the step, the generator's draws for the
    samplers): a constant of the right shape and dtype is not an answer."""
    sched = schedule_of(linear_betas(10))
    for dtype in (torch.float32, torch.float64):
        x = _randn(2, 1, 3, 3, seed=3, dtype=dtype)
        what = f"ddpm_step of a {dtype} [2, 1, 3, 3] x_t"
        steps = [expect_answer(student.ddpm_step(torch.zeros_like(x), 5, sign * x, sched,
                                                 generator=_gen(1)),
                               what=what, shape=(2, 1, 3, 3), dtype=dtype)
                 for sign in (1.0, -1.0)]
        expect_nonconstant(*steps, what=what, depends_on="x_t",
                           hint="the step's mean is (x_t - beta_t / sqrt(1 - abar_t) * eps) / "
                           "sqrt(alpha_t)")
    rec = student.construct(RECORDER)
    what = "ddpm_sample(model, (3, 1, 2, 2), ...)"
    samples = [expect_answer(student.ddpm_sample(rec, (3, 1, 2, 2), sched, generator=_gen(seed)),
                             what=what, shape=(3, 1, 2, 2), dtype=torch.float32)
               for seed in (1, 2)]
    expect_nonconstant(*samples, what=what, depends_on="the generator's draws",
                       hint="start from torch.randn(shape, generator=generator)")
    what = "ddim_sample(model, [2, 5], ...)"
    samples = [expect_answer(student.ddim_sample(rec, [2, 5], sched, num_steps=3, eta=0.5,
                                                 generator=_gen(seed)),
                             what=what, shape=(2, 5), dtype=torch.float32) for seed in (1, 2)]
    expect_nonconstant(*samples, what=what, depends_on="the generator's draws",
                       hint="start from torch.randn(shape, generator=generator)")


@check(points=4, kind="robustness", catches="missing validation: eta outside [0, 1] (or NaN), "
       "an unknown kind, T < 1, num_steps > T, a t outside [0, T)",
       rules=("conv.names-argument", "ddim.eta", "schedule.kind", "schedule.num-timesteps",
              "ddim.num-steps", "forward.t-range"))
@given(eta=st.one_of(st.floats(-10.0, -1e-9), st.floats(1.0 + 1e-9, 10.0), st.just(math.nan)))
@example(eta=-0.1)
def test_bad_arguments_hidden(student, eta):
    """Bad arguments raise ValueError naming the argument."""
    sched = schedule_of(linear_betas(10))
    rec = student.construct(RECORDER)
    with expect_raises("ValueError", what=f"ddim_sample with eta={eta}", mentions="eta"):
        student.ddim_sample(rec, (2, 2), sched, num_steps=5, eta=eta, generator=_gen(0))
    with expect_raises("ValueError", what="make_beta_schedule with kind='quadratic'",
                       mentions="kind"):
        student.make_beta_schedule(10, "quadratic")
    with expect_raises("ValueError", what="make_beta_schedule with num_timesteps=0",
                       mentions="num_timesteps"):
        student.make_beta_schedule(0)
    with expect_raises("ValueError", what="ddim_sample with num_steps=11 for T=10",
                       mentions="num_steps"):
        student.ddim_sample(rec, (2, 2), sched, num_steps=11, generator=_gen(0))
    with expect_raises("ValueError", what="ddpm_step with t=10 for T=10"):
        student.ddpm_step(torch.zeros(2, 2), 10, torch.zeros(2, 2), sched)
    with expect_raises("ValueError", what="q_sample with t = [0, 10] for T=10"):
        student.q_sample(torch.zeros(2, 2), torch.tensor([0, 10]), torch.zeros(2, 2), sched)


@check(points=2, kind="robustness", catches="missing validation of a linear schedule's "
       "range, of the betas a schedule is built from, of predict_x0's t and of the DDPM "
       "sampler's variance",
       rules=("conv.names-argument", "schedule.linear-range", "schedule.betas",
              "forward.t-range", "ddpm.variance-name"))
def test_bad_arguments_more(student):
    """Linear betas outside 0 < beta_start <= beta_end < 1, betas that are not a 1-D tensor in
    (0, 1), predict_x0 with t = T, and ddpm_sample with an unknown variance raise ValueError."""
    for start, end in ((0.02, 0.01), (1e-4, 1.0), (0.0, 0.02)):
        with expect_raises("ValueError", what=f"make_beta_schedule(10, 'linear', {start}, "
                           f"{end})"):
            student.make_beta_schedule(10, "linear", start, end)
    for what, betas in (("2-D betas", torch.full((2, 5), 0.1, dtype=torch.float64)),
                        ("a beta of 1", torch.tensor([0.1, 1.0], dtype=torch.float64))):
        with expect_raises("ValueError", what=f"DiffusionSchedule.from_betas with {what}",
                           mentions="betas"):
            student.call("DiffusionSchedule.from_betas", betas)
    sched = schedule_of(linear_betas(10))
    with expect_raises("ValueError", what="predict_x0 with t=10 for T=10"):
        student.predict_x0(torch.zeros(2, 2), 10, torch.zeros(2, 2), sched)
    rec = student.construct(RECORDER)
    with expect_raises("ValueError", what="ddpm_sample with variance='fixed_large'",
                       mentions="variance"):
        student.ddpm_sample(rec, (2, 2), sched, generator=_gen(0), variance="fixed_large")


@check(points=2, kind="robustness", catches="editing inputs in place (x_t -= ..., eps "
       "clamped in place)", rules=("conv.no-inplace",))
def test_does_not_modify_inputs(student):
    """q_sample, predict_x0 and ddpm_step leave their tensor inputs unchanged, and answer: a
    finite [2, 4] float64 result that is not their first argument handed back and that
    differs between two inputs (a function that returns nothing modifies nothing either)."""
    sched = schedule_of(linear_betas(10))
    t = torch.tensor([3, 9])
    results: dict[str, list[torch.Tensor]] = {}
    for seed in (1, 11):
        x, eps = 3.0 * _randn(2, 4, seed=seed), 3.0 * _randn(2, 4, seed=seed + 1)
        calls = (("q_sample", (x, t, eps, sched), "noised to step t"),
                 ("predict_x0", (x, t, eps, sched), "denoised to an estimate of x_0"),
                 ("ddpm_step", (eps, 4, x, sched, _gen(0), "beta", True), "turned into x_{t-1}"))
        for name, args, how in calls:
            value, mutated = student.call(name, *args, _check_inputs=True)
            if mutated:
                fail(f"{name} modified its inputs in place.", expected="inputs unchanged",
                     got=f"argument(s) {mutated} changed")
            value = expect_answer(value, what=f"{name} of [2, 4] inputs", shape=(2, 4),
                                  dtype=torch.float64)
            expect_changed(value, args[0], what=name, how=how)
            results.setdefault(name, []).append(value)
    for name, (first, second) in results.items():
        expect_nonconstant(first, second, what=name, depends_on="its tensor inputs")


# -- training: a small noise predictor on a 2-D mixture --------------------------------------
TRAINING_CATCHES = ("a sampler that does not turn a trained noise predictor into samples of "
                    "the data (wrong coefficients or signs, noise of the wrong scale, samples "
                    "that diverge); subtle mistakes (variance swapped, noise at t = 0, another "
                    "DDIM spacing) pass it: see the calibration")


def sampler_distances(student, budget: dict, device: str = "cpu") -> dict[str, float]:
    """Sliced Wasserstein distance to held-out data of DDPM and DDIM samples from the student's
    samplers driving the course's NoisePredictor, trained in the worker."""
    total = int(budget["num_timesteps"])
    sched = schedule_of(torch.tensor(cosine_betas(total), dtype=torch.float64))
    model = student.construct(
        "torchgrade.course.toy2d:trained_noise_predictor", sched.alphas_cumprod,
        steps=int(budget["steps"]), batch_size=int(budget["batch_size"]),
        lr=float(budget["lr"]), n_data=int(budget["n_data"]),
        data_seed=int(budget["data_seed"]), seed=int(budget["seed"]),
        hidden=int(budget["hidden"]))
    n = int(budget["n_samples"])
    held_out = toy2d.toy_data(n, int(budget["eval_seed"]))
    out = {}
    seed = int(budget["seed"])
    x = student.ddpm_sample(model, (n, 2), sched, generator=_gen(seed))
    expect_shape(x, (n, 2), what=f"ddpm_sample(model, ({n}, 2), ...)")
    out["ddpm"] = toy2d.sliced_wasserstein(x, held_out)
    y = student.ddim_sample(model, (n, 2), sched, num_steps=int(budget["ddim_steps"]), eta=0.0,
                            generator=_gen(seed))
    expect_shape(y, (n, 2), what=f"ddim_sample(model, ({n}, 2), ...)")
    out["ddim"] = toy2d.sliced_wasserstein(y, held_out)
    return out


def _judge_training(dist: dict[str, float], budget: dict) -> None:
    bound = float(budget["max_sliced_w1"])
    for name, d in dist.items():
        measured(f"{name} sliced W1 to held-out data", d, bound, better="lower",
                 data="a 4-mode 2-D mixture")
    for name, d in dist.items():
        if not (math.isfinite(d) and d <= bound):
            fail(f"{name} samples from a trained noise predictor do not match the 2-D data.",
                 expected=f"sliced Wasserstein-1 to held-out data <= {bound:.3f} (the "
                 "reference reaches about a third of it; two data samples differ by 0.04)",
                 got=f"{d:.4f}" if math.isfinite(d) else "not finite",
                 hint="check ddpm_step and ddim_sample first (the checks above)")


@check(points=8, kind="training", timeout=300, profiles=("cpu",), catches=TRAINING_CATCHES,
       rules=("sampler.toy2d",))
def test_toy2d_samples_match_data(student, budget):
    """A NoisePredictor trained on a 4-mode 2-D mixture, sampled with ddpm_sample and
    ddim_sample (50 steps, eta 0), lands near held-out data (sliced Wasserstein-1)."""
    _judge_training(sampler_distances(student, budget), budget)


def gpu_betas(table: dict) -> torch.Tensor:
    """The GPU check's betas: ``schedule = "linear"``, Ho et al.'s 1e-4 to 0.02 scaled to
    ``num_timesteps`` steps (its last step keeps alpha_T = 0.98, where the cosine schedule's
    clipped 0.999 multiplies an error of the model by 30 in DDPM's first step), or the cosine
    schedule of the CPU check."""
    total = int(table["num_timesteps"])
    if table.get("schedule", "cosine") == "linear":
        scale = 1000 / total
        return linear_betas(total, 1e-4 * scale, 0.02 * scale)
    return torch.tensor(cosine_betas(total), dtype=torch.float64)


def gpu_digits(budget: dict) -> tuple[dict, torch.Tensor, str]:
    """The GPU check's table and digits ``[n_data + n_samples, 784]`` in [-1, 1]: MNIST's first
    images where $TORCHGRADE_DATA has MNIST (``[profiles.gpu.mnist]`` over ``[profiles.gpu]``),
    else the course's generated digits (torchgrade.course.digits; no download)."""
    from torchgrade.course import datasets
    from torchgrade.course.digits import make_digits

    real = datasets.read_mnist()
    table = {k: v for k, v in budget.items() if not isinstance(v, dict)}
    if real is not None:
        table |= budget.get("mnist", {})
    n = int(table["n_data"]) + int(table["n_samples"])
    if real is not None:
        if n > len(real[0]):
            raise ValueError(f"the rubric asks for {n} MNIST images; MNIST has {len(real[0])}")
        images, data = real[0][:n], "MNIST ($TORCHGRADE_DATA)"
    else:
        images = make_digits(n, seed=int(table["data_seed"]))[0]
        data = "generated digits 28x28"
    return table, images.reshape(n, 784).float() / 127.5 - 1.0, data


@check(points=8, kind="training", timeout=900, profiles=("gpu",), catches=TRAINING_CATCHES,
       rules=("sampler.mnist",))
def test_mnist_samples_gpu(student, budget, device):
    """An MLP noise predictor trained on MNIST (flattened, in [-1, 1]) on the GPU; DDIM samples
    from the student's sampler are closer to held-out digits than the untrained model's.
    Reads $TORCHGRADE_DATA/MNIST (idx files; torchvision's layout too), and without it the
    course's generated digits; DDPM samples are judged the same way."""
    table, images, data = gpu_digits(budget)
    n_train, n = int(table["n_data"]), int(table["n_samples"])
    train, held_out = images[:n_train], images[n_train:]
    sched = schedule_of(gpu_betas(table))
    dist: dict[tuple[str, int], float] = {}
    for steps in (int(table["steps"]), 0):
        model = student.construct(
            "torchgrade.course.toy2d:train_noise_predictor", train.to(device),
            sched.alphas_cumprod, steps=steps, batch_size=int(table["batch_size"]),
            lr=float(table["lr"]), seed=int(table["seed"]), hidden=int(table["hidden"]),
            skip=bool(table.get("skip", False)))
        x = student.ddim_sample(model, (n, 784), sched, num_steps=int(table["ddim_steps"]),
                                generator=torch.Generator(device).manual_seed(1),
                                device=device)
        expect_shape(x, (n, 784), what=f"ddim_sample(model, ({n}, 784), ...)")
        dist["ddim", steps] = toy2d.sliced_wasserstein(x.cpu().clamp(-1, 1), held_out)
        y = student.ddpm_sample(model, (n, 784), sched,
                                generator=torch.Generator(device).manual_seed(2),
                                device=device)
        expect_shape(y, (n, 784), what=f"ddpm_sample(model, ({n}, 784), ...)")
        dist["ddpm", steps] = toy2d.sliced_wasserstein(y.cpu().clamp(-1, 1), held_out)
    bound = float(table["max_ratio_to_untrained"])
    for sampler in ("ddim", "ddpm"):
        trained, untrained = dist[sampler, int(table["steps"])], dist[sampler, 0]
        ratio = trained / untrained if untrained > 0 else math.inf
        measured(f"{sampler} sliced W1 / untrained", ratio, bound, better="lower", data=data,
                 trained=trained, untrained=untrained)
    for sampler in ("ddim", "ddpm"):
        trained, untrained = dist[sampler, int(table["steps"])], dist[sampler, 0]
        if not (math.isfinite(trained) and trained <= bound * untrained):
            fail(f"{sampler.upper()} samples of a trained digit model are not clearly closer "
                 "to held-out digits than those of the untrained model.",
                 expected=f"sliced W1 <= {bound:.2f} x {untrained:.4f} ({data})",
                 got=f"{trained:.4f}", hint="check ddpm_step and ddim_sample first (the checks "
                 "above), on the device of x_T")
