"""``torchgrade author new NAME``: the files of a new assignment, as a small working example.

It writes a marked reference with its handout source, a grader (rubric, one public and two
hidden checks, the fixture builder) and the examples' ``correct``/``stub`` folders, all for a
one-function assignment (``scale``) that ``torchgrade author build`` turns into a stub scoring
0 and a template whose public check the reference passes. The author then replaces ``scale``
with the real assignment, guided by docs/writing-a-grader.md.
"""

from __future__ import annotations

import keyword
from pathlib import Path

GUIDE = "docs/writing-a-grader.md"


class ScaffoldError(ValueError):
    """A name that cannot be an assignment, or one that already exists."""


def scaffold(root: Path, name: str) -> list[Path]:
    """Write the new assignment's files under ``root``; the paths written, in order."""
    if not name.isidentifier() or keyword.iskeyword(name) or not name.islower() or \
            name.startswith("_"):
        raise ScaffoldError(f"{name!r} cannot name an assignment: use a lower-case Python "
                            "identifier (letters, digits, underscores), e.g. simclr_loss")
    taken = [p for p in (root / "graders" / name, root / "solutions" / name,
                         root / "assignments" / name, root / "examples" / name) if p.exists()]
    if taken:
        raise ScaffoldError(f"assignment {name!r} already exists here: "
                            f"{', '.join(str(p) for p in taken)}")
    files = {
        f"solutions/{name}/{name}.py": SOLUTION,
        f"solutions/{name}/handout.md": HANDOUT,
        f"graders/{name}/rubric.toml": RUBRIC,
        f"graders/{name}/test_{name}.py": GRADER,
        f"graders/{name}/fixture_cases.py": FIXTURE_CASES,
        f"examples/{name}/correct/about.toml": 'description = "a correct submission (a copy '
        'of the reference)"\nexpect = "full"\n',
        f"examples/{name}/correct/{name}.py": SOLUTION,
        f"examples/{name}/stub/about.toml": 'description = "the untouched stub"\n'
        'expect = "zero"\n',
    }
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("NAME", name), encoding="utf-8")
        written.append(path)
    return written


SOLUTION = '''\
# BEGIN SOLUTION
"""Reference solution for `NAME` (hidden from students): what the grader compares with."""
# END SOLUTION
# BEGIN STUB
# """Assignment `NAME`: fill in ``scale`` (read README.md beside this file first).
#
# Keep the name and signature: the grader calls it directly. Check your work with
# ``torchgrade check NAME``.
# """
# END STUB

from __future__ import annotations

import math

from torch import Tensor


# BEGIN SOLUTION
def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)
# END SOLUTION


def scale(x: Tensor, factor: float) -> Tensor:
    """``x * factor``: a new tensor of ``x``'s shape, dtype and device [scale.value]; ``x`` is
    not changed [scale.no-inplace].

    Raises:
        ValueError: ``factor`` is not a finite number, the message naming it
            [scale.bad-factor].
    """
    # BEGIN SOLUTION
    return x * _finite(factor, "factor")
    # END SOLUTION
    # STUB: raise NotImplementedError("scale: multiply x by factor (see the docstring)")
'''

HANDOUT = """\
# Assignment `NAME`

Write `scale(x, factor)` in `NAME.py`: it returns `x * factor`, a new tensor of the input's
shape, dtype and device [scale.value], and leaves `x` unchanged [scale.no-inplace]. Each rule
carries an id in square brackets; the stub's docstring states the same ones, and each check
names the rules it pins (see docs/writing-a-grader.md).

```python
>>> import torch
>>> from NAME import scale
>>> scale(torch.tensor([1.0, -2.0]), 3.0)
tensor([ 3., -6.])
```

<!-- torchgrade:api -->

## Checking your work

Check your work with `torchgrade check NAME`: the public checks run in seconds. Hidden checks
also grade your submission.
"""

RUBRIC = """\
# Rubric of the NAME grader (the keys are documented in graders/nt_xent/rubric.toml).
[assignment]
title = "NAME: scale a tensor"
module = "NAME"             # students submit NAME.py
version = "0.1"             # written into every report; bump when checks change
total_points = 10           # the cpu profile's checks must add up to this

[limits]
check_timeout_s = 30        # CPU seconds of the student's code per check (not wall time)
import_timeout_s = 60       # CPU seconds to import the submission
submission_timeout_s = 300  # CPU seconds of the student's code over the whole grading
memory_mb = 6144            # `import torch` needs > 4096
"""

GRADER = '''\
"""Grader of the NAME assignment: one public check (fixtures) and two hidden ones.

See docs/writing-a-grader.md: @check, kinds and visibility, fixtures, examples and the audit.
"""

from __future__ import annotations

import math

import torch

from torchgrade.checks import check, expect_raises, expect_tensor


@check(points=4, kind="value", visibility="public", rules=("scale.value",),
       catches="multiplying by something else")
def test_scale_public(student, fixture_case):
    """scale(x, factor) matches the reference on the public fixture."""
    case = fixture_case("basic")
    got = student.scale(case["x"], case["factor"])
    expect_tensor(got, case["expected"], what="scale(x, factor)")


@check(points=4, kind="value", catches="a wrong result on inputs you have not seen",
       rules=("scale.value", "scale.no-inplace"))
def test_scale_matches_reference(student, reference):
    """scale(x, factor) matches the reference on hidden inputs, leaving x unchanged."""
    x = torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(3, 4)
    got, changed = student.call("scale", x.clone(), -0.75, _check_inputs=True)
    expect_tensor(got, reference.scale(x, -0.75), what="scale(x, -0.75)", dtype=x.dtype)
    if changed:
        raise AssertionError("scale changed its input in place")


@check(points=2, kind="robustness", catches="accepting a factor that is not a finite number",
       rules=("scale.bad-factor",))
def test_bad_factor(student):
    """scale raises ValueError naming factor when it is NaN."""
    with expect_raises("ValueError", what="scale(x, nan)", mentions="factor"):
        student.scale(torch.ones(2), math.nan)
'''

FIXTURE_CASES = '''\
"""Public fixture cases of the NAME grader, computed from the reference by
`torchgrade author build` (or `torchgrade author fixtures NAME`)."""

from __future__ import annotations

from typing import Any

import torch


def build(reference: Any) -> dict[str, dict[str, Any]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=g)
    return {"basic": {"x": x, "factor": 2.5, "expected": reference.scale(x, 2.5)}}
'''
