"""The grader-author API: declare checks and compare answers with tensor-aware feedback.

A check is a pytest test decorated with ``@check(points=..., kind=...)``. Comparisons raise
``CheckFailure`` with a message that says what was expected, what came back and a hint. In
hidden checks (``reveal()`` is False) messages never echo inputs or expected values, only how
far off the answer was. A check whose property any constant satisfies first asks for evidence
of a real answer (``expect_answer``, ``expect_nonconstant``, ``expect_changed``): the audit's
degenerate twins of the stub (``torchgrade.twins``) must score zero.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any

import pytest

from torchgrade.proxy import StudentError, StudentTimeout, SubmissionUnloadable, WorkerCrashed
from torchgrade.report import KINDS, VISIBILITIES

MARKER = "torchgrade_check"
_REVEAL: contextvars.ContextVar[bool] = contextvars.ContextVar("torchgrade_reveal", default=True)


class CheckFailure(AssertionError):
    """The submission answered, but wrongly."""


class GraderConfigError(ValueError):
    """A grader declared a check wrongly (bad points, kind or visibility)."""


def check(*, points: float, kind: str, visibility: str = "hidden", timeout: float | None = None,
          profiles: tuple[str, ...] = ("cpu", "gpu"), catches: str = "",
          rules: tuple[str, ...] = ()) -> Any:
    """Mark a test as a graded check.

    points: what the check is worth. kind: shape | value | invariant | training | robustness.
    visibility: public (students run it locally, against shipped fixtures) or hidden.
    timeout: the check's budget in CPU seconds of the student's code (default: the rubric's
    ``check_timeout_s``); a busy machine never uses it up (``torchgrade.cputime``).
    profiles: the profiles the check runs in. catches: the mistake it is designed to catch,
    shown to the student when it fails. rules: the ids of the handout's rules the check pins
    (``("loss.no-removed",)``, a literal tuple: ``torchgrade.contract`` reads it from the
    grader's source for the audit's rule table).
    """
    if not (isinstance(points, int | float) and points > 0):
        raise GraderConfigError(f"points must be a positive number, got {points!r}")
    if kind not in KINDS:
        raise GraderConfigError(f"kind must be one of {KINDS}, got {kind!r}")
    if visibility not in VISIBILITIES:
        raise GraderConfigError(f"visibility must be one of {VISIBILITIES}, got {visibility!r}")
    if timeout is not None and timeout <= 0:
        raise GraderConfigError(f"timeout must be positive, got {timeout!r}")
    from torchgrade.contract import RULE

    if isinstance(rules, str) or not all(isinstance(r, str) and RULE.fullmatch(f"[{r}]")
                                         for r in rules):
        raise GraderConfigError(f"rules must be a tuple of rule ids like 'loss.no-removed', "
                                f"got {rules!r}")
    return pytest.mark.torchgrade_check(points=float(points), kind=kind, visibility=visibility,
                                        timeout=timeout, profiles=tuple(profiles),
                                        catches=catches, rules=tuple(rules))


@contextlib.contextmanager
def revealing(reveal: bool) -> Iterator[None]:
    token = _REVEAL.set(reveal)
    try:
        yield
    finally:
        _REVEAL.reset(token)


def reveal() -> bool:
    """Whether feedback may show values (public checks) or only summaries (hidden checks)."""
    return _REVEAL.get()


# What the running check measured (``measured``), taken by the plugin when the check ends.
_MEASURED: list[dict[str, Any]] = []


def measured(metric: str, value: float, threshold: float, *, better: str, data: str = "",
             **more: Any) -> None:
    """Record what a training check measured against its threshold, whether it passes or
    not: the report keeps it (``extra["measured"][check]``), and ``torchgrade gpu-check``
    prints and calibrates from it. ``better``: "higher" (value >= threshold passes) or
    "lower"; ``data``: which data set it was measured on; ``more``: other numbers (plain,
    JSON-able) worth keeping, such as a baseline."""
    if better not in ("higher", "lower"):
        raise GraderConfigError(f"better must be 'higher' or 'lower', got {better!r}")
    record = {"metric": metric, "value": _plain(value), "threshold": _plain(threshold),
              "better": better}
    if data:
        record["data"] = data
    record.update({k: _plain(v) for k, v in more.items()})
    _MEASURED.append(record)


def take_measured() -> list[dict[str, Any]]:
    """What the check that just ended recorded with ``measured`` (and forget it)."""
    out = list(_MEASURED)
    _MEASURED.clear()
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    try:
        return _plain(float(value))  # a 0-dim tensor or numpy number
    except (TypeError, ValueError):
        return str(value)


def fail(what: str, *, expected: str, got: str, hint: str = "") -> None:
    lines = [what, f"  expected: {expected}", f"  got:      {got}"]
    if hint:
        lines.append(f"  hint: {hint}")
    raise CheckFailure("\n".join(lines))


def _describe(x: Any) -> str:
    import torch

    if isinstance(x, torch.Tensor):
        return f"tensor(shape={list(x.shape)}, dtype={str(x.dtype).removeprefix('torch.')}, " \
               f"device={x.device})"
    if not reveal() and x is not None and not isinstance(x, bool):
        # Hidden checks never echo values: a wrong answer may be an input handed back.
        size = f" of length {len(x)}" if hasattr(x, "__len__") else ""
        return f"a {type(x).__name__}{size}"
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def expect_tensor(got: Any, expected: Any, *, what: str, rtol: float = 1e-5, atol: float = 1e-6,
                  dtype: Any = None, check_device: bool = True, hint: str = "") -> None:
    """``got`` must be a tensor shaped like ``expected`` with close values.

    ``dtype`` (when given) is the dtype required of ``got``; values are compared in float64.
    """
    import torch

    expect_type(got, torch.Tensor, what=what, hint=hint)
    if tuple(got.shape) != tuple(expected.shape):
        fail(f"{what} has the wrong shape.", expected=f"shape {list(expected.shape)}",
             got=f"shape {list(got.shape)}", hint=hint)
    if dtype is not None and got.dtype != dtype:
        fail(f"{what} has the wrong dtype.", expected=str(dtype), got=str(got.dtype), hint=hint)
    if check_device and got.device.type != expected.device.type:
        fail(f"{what} is on the wrong device (results come back on the input's device).",
             expected=str(expected.device), got=str(got.device), hint=hint)
    g = got.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    bad_g = ~torch.isfinite(g)
    if bad_g.any() and not torch.equal(bad_g, ~torch.isfinite(e)):
        n = int(bad_g.sum())
        fail(f"{what} contains {n} non-finite value(s) (NaN or inf).",
             expected="finite values", got=_sample(g) if reveal() else f"{n} non-finite",
             hint=hint or "look for division by zero, log(0) or overflow")
    close = torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if not bool(close.all()):
        diff = (g - e).abs().nan_to_num(nan=math.inf)
        worst = int(diff.reshape(-1).argmax()) if diff.numel() else 0
        idx = list(_unravel(worst, tuple(g.shape)))
        n_bad = int((~close).sum())
        if reveal():
            expected_s = f"{_sample(e)} (at {idx}: {e.reshape(-1)[worst].item():.6g})"
            got_s = f"{_sample(g)} (at {idx}: {g.reshape(-1)[worst].item():.6g})"
        else:
            expected_s = f"values within rtol={rtol:g}, atol={atol:g} of the reference"
            got_s = f"{n_bad} of {g.numel()} value(s) off, largest error " \
                    f"{diff.reshape(-1)[worst].item():.3g}"
        fail(f"{what} has wrong values ({n_bad} of {g.numel()} off).", expected=expected_s,
             got=got_s, hint=hint)


def _sample(t: Any) -> str:
    flat = t.reshape(-1)
    shown = ", ".join(f"{v:.6g}" for v in flat[:6].tolist())
    return f"[{shown}{', ...' if flat.numel() > 6 else ''}]"


def _unravel(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for dim in reversed(shape):
        out.append(index % dim if dim else 0)
        index //= dim if dim else 1
    return tuple(reversed(out))


def expect_shape(got: Any, shape: tuple[int, ...], *, what: str, dtype: Any = None,
                 hint: str = "") -> None:
    """``got`` must be a tensor of ``shape`` (and ``dtype`` when given), with finite values."""
    import torch

    expect_type(got, torch.Tensor, what=what, hint=hint)
    if tuple(got.shape) != tuple(shape):
        fail(f"{what} has the wrong shape.", expected=f"shape {list(shape)}",
             got=f"shape {list(got.shape)}", hint=hint)
    if dtype is not None and got.dtype != dtype:
        fail(f"{what} has the wrong dtype.", expected=str(dtype), got=str(got.dtype), hint=hint)


def expect_type(got: Any, typ: Any, *, what: str, hint: str = "") -> None:
    if not isinstance(got, typ):
        name = getattr(typ, "__name__", str(typ))
        fail(f"{what} has the wrong type.", expected=name, got=_describe(got), hint=hint)


def expect_scalar(got: Any, *, what: str, requires_grad: bool = True, hint: str = "") -> None:
    """``got`` must be a 0-dim tensor, back-propagatable when ``requires_grad``."""
    import torch

    expect_type(got, torch.Tensor, what=what, hint=hint)
    if got.dim() != 0:
        fail(f"{what} must be a scalar (0-dim tensor).", expected="shape []",
             got=f"shape {list(got.shape)}", hint=hint or "reduce with .mean(), not .sum(dim=...)")
    if requires_grad and not got.requires_grad:
        fail(f"{what} cannot be back-propagated.", expected="a tensor with requires_grad=True",
             got="a tensor detached from its inputs",
             hint=hint or "do not call .item(), .detach() or torch.tensor(...) on the result")


def expect_close(got: Any, expected: float, *, what: str, rtol: float = 1e-5,
                 atol: float = 1e-6, hint: str = "") -> None:
    """A number (or a one-element tensor) close to ``expected``."""
    import torch

    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            fail(f"{what} must be a single number.", expected="one element",
                 got=_describe(got), hint=hint)
        value = float(got.detach().to("cpu", torch.float64).reshape(()))
    elif isinstance(got, int | float) and not isinstance(got, bool):
        value = float(got)
    else:
        fail(f"{what} has the wrong type.", expected="a number", got=_describe(got), hint=hint)
        return
    if not math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
        if reveal():
            fail(f"{what} is wrong.", expected=f"{expected:.8g}", got=f"{value:.8g}", hint=hint)
        fail(f"{what} is wrong.", expected="the reference value",
             got=f"off by {abs(value - expected):.3g}", hint=hint)


@contextlib.contextmanager
def expect_raises(exc_name: str, *, what: str, mentions: str | None = None,
                  hint: str = "") -> Iterator[None]:
    """The student call inside must raise ``exc_name`` (e.g. "ValueError"), whose message
    names ``mentions`` when given."""
    try:
        yield
    except (CheckFailure, StudentTimeout, WorkerCrashed, SubmissionUnloadable):
        raise  # not an exception of the student's code: keeps its own status
    except Exception as exc:  # noqa: BLE001 - StudentError, or a real one in-process
        if isinstance(exc, StudentError):
            type_name, message, mro = exc.type_name, exc.message, exc.mro
        else:
            type_name, message = type(exc).__name__, str(exc)
            mro = tuple(c.__name__ for c in type(exc).__mro__)
        if exc_name not in mro:
            fail(f"{what} raised the wrong exception.", expected=exc_name,
                 got=f"{type_name}: {message}", hint=hint)
        if mentions is not None and mentions.lower() not in message.lower():
            fail(f"{what} raised {exc_name}, but its message does not name the argument.",
                 expected=f"a message mentioning {mentions!r}", got=repr(message[:200]),
                 hint=hint)
        return
    fail(f"{what} did not raise.", expected=exc_name, got="a normal return", hint=hint)


# -- evidence of a real answer ------------------------------------------------------------------
# A check whose property any constant satisfies (symmetry, an invariance, a round trip, inputs
# left unmodified) compares the submission with itself: None == None, NaN "equals" NaN under
# equal_nan, and a loss that returns 0.0 is perfectly symmetric. Such a check first validates
# every output it uses with expect_answer, and, where the contract says the output depends on
# an input, shows that it does with expect_nonconstant (or expect_changed). The audit's
# degenerate twins (torchgrade.twins) hold every grader to this.
def expect_answer(got: Any, *, what: str, shape: tuple[int | None, ...] | None = None,
                  dtype: Any = None, hint: str = "") -> Any:
    """``got`` must be an answer at all: a ``torch.Tensor`` of ``shape`` (``None`` in it: any
    size on that dimension; ``()`` for a scalar) and ``dtype`` when given, with every value
    finite (NaN and inf are not answers). Returns ``got``.

    Feedback names what is wrong ("nt_xent_loss(z_i, z_j) is NaN", "... returned None");
    in hidden checks it shows no values, only counts.
    """
    import torch

    wanted = "a tensor" if shape is None else f"a tensor of shape {_shape_text(shape)}"
    wanted += f" ({str(dtype).removeprefix('torch.')})" if dtype is not None else ""
    if got is None:
        fail(f"{what} returned None.", expected=wanted, got="None",
             hint=hint or "the function must return its result (a missing `return` gives None)")
    expect_type(got, torch.Tensor, what=what, hint=hint)
    if shape is not None and (got.dim() != len(shape) or any(
            want is not None and have != want for have, want in zip(got.shape, shape,
                                                                    strict=False))):
        fail(f"{what} has the wrong shape.", expected=f"shape {_shape_text(shape)}",
             got=f"shape {list(got.shape)}", hint=hint)
    if dtype is not None and got.dtype != dtype:
        fail(f"{what} has the wrong dtype.", expected=str(dtype), got=str(got.dtype), hint=hint)
    if got.is_floating_point() or got.is_complex():
        bad = ~torch.isfinite(got.detach())
        n_bad = int(bad.sum())
        if n_bad:
            nan = int(torch.isnan(got.detach()).sum())
            kind = "NaN" if nan == n_bad else "inf" if nan == 0 else "NaN or inf"
            said = f"{what} is {kind}." if got.numel() == 1 else \
                f"{what} contains {n_bad} {kind} value(s) of {got.numel()}."
            fail(said, expected="finite values",
                 got=_sample(got.detach().cpu()) if reveal() else f"{n_bad} non-finite",
                 hint=hint or "look for division by zero, log(0), an overflowing exp(), or a "
                 "placeholder return")
    return got


def expect_nonconstant(first: Any, second: Any, *, what: str, depends_on: str,
                       atol: float = 0.0, hint: str = "") -> None:
    """``first`` and ``second``, what ``what`` returned for two inputs that differ in
    ``depends_on`` (two inputs on which a correct answer differs clearly), must differ by more
    than ``atol``: evidence that the answer is computed from its inputs, not a constant.
    Validate both with :func:`expect_answer` first.

    Feedback: "the loss is the same for every input: it does not depend on the embeddings".
    """
    import torch

    if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor):
        a = first.detach().to("cpu", torch.float64)
        b = second.detach().to("cpu", torch.float64)
        same = a.shape == b.shape and bool(torch.isclose(a, b, rtol=0.0, atol=atol,
                                                         equal_nan=True).all())
    else:  # numbers, strings: equal values of one type
        same = type(first) is type(second) and bool(first == second)
    if same:
        fail(f"{what} is the same for every input: it does not depend on {depends_on}.",
             expected=f"different results when {depends_on} change",
             got=(f"{_describe_value(first)} both times" if reveal() else
                  "the same result both times"),
             hint=hint or "return what the function computes from its arguments, not a "
             "placeholder constant")


def expect_changed(got: Any, given: Any, *, what: str, how: str, hint: str = "") -> None:
    """``got``, what ``what`` returned for the input ``given``, must not be ``given`` handed
    back unchanged (same shape and values): evidence of a real answer for a function whose
    contract changes its input (``how``, what it should have done: "cut into patches").
    Validate ``got`` with :func:`expect_answer` first."""
    import torch

    if isinstance(got, torch.Tensor) and isinstance(given, torch.Tensor) and \
            got.shape == given.shape and got.dtype == given.dtype and \
            torch.equal(got.detach().cpu(), given.detach().cpu()):
        fail(f"{what} returned its input unchanged.", expected=f"the input {how}",
             got="the input, unchanged",
             hint=hint or "the function must transform its argument, not hand it back")


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"


def _describe_value(x: Any) -> str:
    import torch

    if isinstance(x, torch.Tensor):
        return _sample(x.detach().cpu()) if x.dim() else f"{x.item():.6g}"
    return _describe(x)
