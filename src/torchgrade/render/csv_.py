"""The class CSV: one row per report, for the course staff's spreadsheet or gradebook import.

Named ``csv_`` so it does not shadow the standard library's :mod:`csv`. Student names and error
text end up in spreadsheet cells, so any text cell that a spreadsheet would read as a formula
(starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is prefixed with ``'``, and
control characters are stripped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from torchgrade.render._text import strip_controls
from torchgrade.report import Report, atomic_write_text

BASE_COLUMNS: tuple[str, ...] = (
    "student", "assignment", "score", "max_score", "percent",
    "passed", "failed", "error", "timeout", "skipped",
    "duration_s", "sandbox", "submission_sha256", "submission_error",
    # Checks an overloaded machine could not grade (they give and take no points; their cells
    # are left empty): non-zero means "grade this student again".
    "infrastructure",
)
STATUS_COLUMNS: tuple[str, ...] = ("passed", "failed", "error", "timeout", "skipped",
                                   "infrastructure")

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(text: str) -> str:
    """``text`` as a cell a spreadsheet shows verbatim instead of evaluating."""
    text = strip_controls(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _num(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _check_columns(reports: Iterable[Report]) -> dict[str, str]:
    """Check name -> column header, in order of first appearance across ``reports``."""
    columns: dict[str, str] = {}
    for report in reports:
        for check in report.checks:
            if check.name not in columns:
                header = check.name if check.name not in BASE_COLUMNS else f"check:{check.name}"
                columns[check.name] = _safe(header)
    return columns


def _row(report: Report, check_columns: dict[str, str]) -> dict[str, str]:
    statuses = [c.status for c in report.checks]
    percent = 100.0 * report.score / report.max_score if report.max_score > 0 else 0.0
    row = {
        "student": _safe(report.student),
        "assignment": _safe(report.assignment),
        "score": _num(report.score),
        "max_score": _num(report.max_score),
        "percent": f"{percent:.2f}",
        **{status: str(statuses.count(status)) for status in STATUS_COLUMNS},
        "duration_s": f"{report.duration_s:.3f}",
        "sandbox": _safe(report.sandbox),
        "submission_sha256": _safe(report.submission_sha256),
        "submission_error": _safe(report.submission_error),
    }
    row.update({check_columns[c.name]: _num(c.points) for c in report.checks
                if c.status != "infrastructure"})
    return row


def write_class_csv(reports: list[Report], path: Path) -> Path:
    """Write one row per report, sorted by student, to ``path`` atomically; return ``path``.

    A check a student's report lacks leaves that cell empty (not 0), so "did not run" stays
    distinguishable from "earned nothing".
    """
    path = Path(path)
    ordered = sorted(reports, key=lambda r: (r.student, r.assignment))
    check_columns = _check_columns(ordered)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[*BASE_COLUMNS, *check_columns.values()], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(_row(r, check_columns) for r in ordered)
    atomic_write_text(path, buffer.getvalue())
    return path
