"""The toy grader: one check of each kind the engine supports."""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from torchgrade.checks import (
    check,
    expect_close,
    expect_raises,
    expect_scalar,
    expect_tensor,
)


@check(points=2, kind="value", visibility="public", catches="multiplying by the wrong factor")
def test_scale_public(student, fixture_case):
    """scale(x, s) matches the reference on the public fixture."""
    case = fixture_case("scale")
    got = student.scale(case["x"], case["s"])
    expect_tensor(got, case["expected"], what="scale(x, 2.5)")


@check(points=2, kind="value", catches="a wrong result on unseen inputs")
def test_scale_hidden(student, reference):
    """scale(x, s) matches the reference on hidden inputs."""
    x = torch.arange(6.0).reshape(2, 3)
    got, mutated = student.call("scale", x.clone(), -1.5, _check_inputs=True)
    expect_tensor(got, reference.scale(x, -1.5), what="scale(x, -1.5)")
    if mutated:
        raise AssertionError("scale modified its input in place")


@check(points=2, kind="invariant", catches="a result that is not linear in s")
@given(s=st.floats(-10, 10, allow_nan=False))
def test_scale_linear(student, s):
    """scale is linear in s."""
    x = torch.ones(3)
    got = student.scale(x, s)
    expect_tensor(got, torch.full((3,), s), what="scale(ones, s)", atol=1e-5)


@check(points=2, kind="robustness", catches="accepting a non-finite factor")
def test_scale_rejects_nan(student):
    """scale rejects a non-finite factor with ValueError naming s."""
    with expect_raises("ValueError", what="scale(x, nan)", mentions="s"):
        student.scale(torch.ones(2), math.nan)


@check(points=2, kind="shape", catches="returning a Python number or a detached value")
def test_total_scalar(student):
    """total(x) is a scalar tensor with the gradient of a sum."""
    out = student.grad("total", torch.ones(2, 2), wrt=(0,))
    expect_scalar(out.value, what="total(x)")
    expect_close(out.value, 4.0, what="total(ones(2, 2))")
    expect_tensor(out.grads[0], torch.ones(2, 2), what="d total / dx")
