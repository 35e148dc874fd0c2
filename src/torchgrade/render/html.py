"""The student-facing HTML page for one report.

Feedback and ``student_output`` are derived from what the student's code did, so they are
untrusted text: the page is rendered by jinja2 with autoescaping on, control characters are
stripped from every value, and a Content-Security-Policy forbids scripts and remote loads. The
page is self-contained (inline CSS, no JavaScript) so it can be mailed or opened offline.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from torchgrade.nbcode import summary_lines
from torchgrade.render._text import strip_controls
from torchgrade.report import Report, atomic_write_text

TEMPLATES = Path(__file__).resolve().parent / "templates"

def _strip_controls(value: Any) -> Any:
    return strip_controls(value) if isinstance(value, str) else value


def _fmt_number(value: float) -> str:
    """2.0 -> "2", 0.25 -> "0.25", 1/3 -> "0.33"."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_strip_controls,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt_number
    return env


def _percent(report: Report) -> float:
    if report.max_score <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * report.score / report.max_score))


def render_student_html(report: Report) -> str:
    """The HTML page a student sees for ``report``."""
    template = _environment().get_template("student.html.j2")
    return template.render(
        report=report,
        percent=_percent(report),
        sha_short=report.submission_sha256[:12],
        not_passed=[c for c in report.checks if c.status != "passed"],
        notebook=summary_lines(report.extra.get("notebook")),
    )


def write_student_html(report: Report, path: Path) -> Path:
    """Render ``report`` to ``path`` atomically; return ``path``."""
    path = Path(path)
    atomic_write_text(path, render_student_html(report))
    return path


def render_audit_html(result: Any) -> str:
    """The page course staff read for a ``torchgrade.audit.AuditResult``. Mutant descriptions
    quote code of the reference and feedback may quote submissions: escaped like the rest."""
    template = _environment().get_template("audit.html.j2")
    survivors = [m for m in result.mutants if not m.killed]
    return template.render(result=result, survivors=survivors,
                           score=result.mutation_score,
                           slowest=sorted(result.timings, key=lambda t: -t.median_s))
