"""Do the evidence helpers of torchgrade.checks refuse a non-answer, say why, and accept a real
answer? (expect_answer, expect_nonconstant, expect_changed)

In hidden checks (``revealing(False)``) their feedback must not show values.
"""

from __future__ import annotations

import pytest
import torch

from torchgrade.checks import (
    CheckFailure,
    expect_answer,
    expect_changed,
    expect_nonconstant,
    revealing,
)

LOSS = "nt_xent_loss(z_i, z_j)"


def _feedback(call) -> str:
    with pytest.raises(CheckFailure) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize(("got", "says"), [
    (None, f"{LOSS} returned None."),
    (torch.full((2,), float("nan"), dtype=torch.float64), f"{LOSS} has the wrong shape."),
    (torch.tensor(0.0), f"{LOSS} has the wrong dtype."),
    (torch.tensor(float("nan"), dtype=torch.float64), f"{LOSS} is NaN."),
    (torch.tensor(float("inf"), dtype=torch.float64), f"{LOSS} is inf."),
    (1.5, f"{LOSS} has the wrong type."),
], ids=["none", "nan-vector", "float32-zero", "nan", "inf", "float"])
def test_expect_answer_refuses_each_non_answer_and_names_it(got, says):
    feedback = _feedback(lambda: expect_answer(got, what=LOSS, shape=(), dtype=torch.float64))
    assert feedback.splitlines()[0] == says


def test_expect_answer_accepts_a_real_answer_and_returns_it():
    loss = torch.tensor(1.25, dtype=torch.float64)
    assert expect_answer(loss, what=LOSS, shape=(), dtype=torch.float64) is loss
    ids = torch.arange(6).reshape(2, 3)
    assert expect_answer(ids, what="ids", shape=(2, None), dtype=torch.int64) is ids
    assert "shape [*, 2]" in _feedback(lambda: expect_answer(ids, what="ids", shape=(None, 2)))


def test_expect_answer_counts_non_finite_values_without_showing_them_when_hidden():
    got = torch.tensor([1.0, float("nan"), float("inf"), 4.0])
    shown = _feedback(lambda: expect_answer(got, what="view", shape=(4,)))
    assert "view contains 2 NaN or inf value(s) of 4." in shown and "1, nan, inf, 4" in shown
    with revealing(False):
        hidden = _feedback(lambda: expect_answer(got, what="view", shape=(4,)))
    assert "  got:      2 non-finite" in hidden.splitlines()  # no values


def test_expect_nonconstant_refuses_the_same_answer_for_different_inputs():
    same = torch.tensor(0.5, dtype=torch.float64)
    feedback = _feedback(lambda: expect_nonconstant(
        same, same.clone(), what="the loss", depends_on="the embeddings"))
    assert feedback.splitlines()[0] == ("the loss is the same for every input: it does not "
                                        "depend on the embeddings.")
    assert "0.5 both times" in feedback
    with revealing(False):
        hidden = _feedback(lambda: expect_nonconstant(
            same, same.clone(), what="the loss", depends_on="the embeddings"))
    assert "the same result both times" in hidden and "0.5" not in hidden
    expect_nonconstant(same, same + 1e-3, what="the loss", depends_on="the embeddings")
    with pytest.raises(CheckFailure):  # within atol counts as the same
        expect_nonconstant(same, same + 1e-3, what="the loss", depends_on="z", atol=1e-2)
    expect_nonconstant(torch.zeros(2), torch.zeros(3), what="x", depends_on="n")  # shapes differ
    with pytest.raises(CheckFailure):
        expect_nonconstant(3, 3, what="the count", depends_on="the input")


def test_expect_changed_refuses_the_input_handed_back():
    x = torch.rand(2, 3, 4)
    feedback = _feedback(lambda: expect_changed(x.clone(), x, what="restore_order(x, ids)",
                                                how="reordered"))
    assert feedback.splitlines()[0] == "restore_order(x, ids) returned its input unchanged."
    expect_changed(x.flip(1), x, what="restore_order(x, ids)", how="reordered")
    expect_changed(x.reshape(2, 12), x, what="patchify(x)", how="cut into patches")


def test_hidden_checks_never_echo_a_wrong_answers_value():
    """A wrong type in a hidden check (an input handed back, a list of values) is described
    by its type and length only; a public check shows the value."""
    from torchgrade.checks import CheckFailure, expect_type, revealing

    secret = [0.123456, 0.654321]
    with revealing(False), pytest.raises(CheckFailure) as hidden:
        expect_type(secret, torch.Tensor, what="rollout")
    assert "0.123456" not in str(hidden.value) and "a list of length 2" in str(hidden.value)
    with revealing(True), pytest.raises(CheckFailure) as public:
        expect_type(secret, torch.Tensor, what="rollout")
    assert "0.123456" in str(public.value)
