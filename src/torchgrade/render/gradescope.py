"""Gradescope's autograder ``results.json``, made from a report.

Field names follow the Gradescope autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/). Hidden checks are marked
``after_published`` and carry only their status: their feedback would tell students what the
hidden checks test, so it never enters this file. Nor does ``student_output``: the student's code
may print the hidden inputs it was given. All text is declared plain ``text`` so that nothing
derived from student code is rendered as HTML or Markdown by Gradescope, and control characters
(NUL, ESC, ...) are stripped from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torchgrade.leaderboard import finite_number
from torchgrade.render._text import strip_controls
from torchgrade.report import CheckResult, Report, atomic_write_text

VISIBILITY = {"public": "visible", "hidden": "after_published"}

# NUL in particular is rejected by some JSON consumers (PostgreSQL's jsonb among them).
_text = strip_controls


def _check_output(check: CheckResult) -> str:
    if check.visibility != "public":
        return f"hidden check: {check.status}"
    lines = [f"{check.status}: {check.description}" if check.description else check.status]
    if check.status != "passed":
        if check.feedback:
            lines += ["", check.feedback]
        if check.catches:
            lines += ["", f"This check catches: {check.catches}"]
    return _text("\n".join(lines))


def _test(check: CheckResult) -> dict[str, Any]:
    return {
        "name": _text(check.name),
        "name_format": "text",
        "score": check.points,
        # A check an overloaded machine could not grade gives and takes no points.
        "max_score": 0.0 if check.status == "infrastructure" else check.max_points,
        "status": "passed" if check.status == "passed" else "failed",
        "output": _check_output(check),
        "output_format": "text",
        "tags": [check.kind],
        "visibility": VISIBILITY[check.visibility],
    }


def _summary(report: Report) -> str:
    lines = [
        f"{report.assignment}: {report.score:g} / {report.max_score:g} points",
        f"graded by torchgrade {report.torchgrade_version} (grader {report.grader_version}), "
        f"profile {report.profile}, sandbox {report.sandbox}",
    ]
    if report.submission_error:
        lines += ["", "Problem with your submission:", report.submission_error]
    return _text("\n".join(lines))


def to_gradescope(report: Report) -> dict[str, Any]:
    """The ``results.json`` document for ``report``."""
    return {
        "score": report.score,
        "execution_time": round(report.duration_s, 3),
        "output": _summary(report),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [_test(c) for c in report.checks],
    } | ({"leaderboard": board} if (board := _leaderboard(report)) else {})


def _leaderboard(report: Report) -> list[dict[str, Any]]:
    """Gradescope's top-level ``leaderboard``: what each training check measured (Gradescope
    ranks it under the pseudonym each student gives when submitting)."""
    out = []
    for records in (report.extra.get("measured") or {}).values():
        for rec in records if isinstance(records, list) else []:
            value = rec.get("value") if isinstance(rec, dict) else None
            if finite_number(value):
                out.append({"name": _text(str(rec.get("metric", ""))), "value": value,
                            "order": "asc" if rec.get("better") == "lower" else "desc"})
    return out


def write_gradescope(report: Report, path: Path) -> Path:
    """Write ``results.json`` for ``report`` to ``path`` atomically; return ``path``."""
    path = Path(path)
    atomic_write_text(path, json.dumps(to_gradescope(report), indent=2) + "\n")
    return path
