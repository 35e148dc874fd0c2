"""The class summary page: how did the class do, and does the grader look broken?

One self-contained HTML page per batch (``REPORTS/<assignment>-summary.html``) with four plots
drawn as inline SVG (no JavaScript, no remote loads, so the same Content-Security-Policy as the
student pages applies and the page works offline):

- the score distribution (ten bins of the percentage);
- the pass rate of every check: a check that nobody passes usually means a broken grader, and
  is flagged;
- the grading time of every submission;
- the checks that did not pass, by status (failed, error, timeout), per check;
- with ``torchgrade grade --similarity``, the pairs of submissions the similarity pass flagged
  (:class:`SimilaritySection`, linking to its own page: ``torchgrade.render.similarity``).

The numbers come from the JSON reports only, like every other renderer. Geometry is computed
here in Python so the template only places rectangles.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from pathlib import Path

from torchgrade.leaderboard import Leaderboard, from_reports
from torchgrade.render.html import _environment as environment
from torchgrade.render.html import _percent as percent
from torchgrade.report import Report, atomic_write_text

BINS = 10
STATUS_ORDER = ("failed", "error", "timeout", "skipped", "infrastructure")


@dataclasses.dataclass(frozen=True)
class Bar:
    label: str
    value: float  # what the bar shows, in the plot's unit
    width: float  # 0..1 of the plot's width (horizontal bars) or height (columns)
    note: str = ""


@dataclasses.dataclass(frozen=True)
class StackedBar:
    label: str
    parts: tuple[tuple[str, int, float], ...]  # (status, count, fraction of the students)


@dataclasses.dataclass(frozen=True)
class SimilaritySection:
    """The similarity pass's headline: the pairs it flagged, each linking to its page."""

    page: str  # the similarity page, relative to the summary page
    threshold: float
    compared: int  # submissions compared
    pairs: int  # pairs compared
    flagged: tuple[tuple[str, str, float, str], ...]  # (student a, student b, score, page)


@dataclasses.dataclass(frozen=True)
class ClassSummary:
    assignment: str
    students: int
    mean_percent: float
    median_percent: float
    histogram: tuple[Bar, ...]  # BINS columns: students per score bin
    pass_rates: tuple[Bar, ...]  # one per check, in grader order
    durations: tuple[Bar, ...]  # one per student, slowest first
    failures: tuple[StackedBar, ...]  # one per check that anyone did not pass
    broken_checks: tuple[str, ...]  # checks no graded submission passed
    submission_problems: int  # reports with a submission_error
    # Students with checks an overloaded machine could not grade, even graded again alone:
    # (student, the checks). Their scores leave those checks out; grade them again.
    unresolved: tuple[tuple[str, tuple[str, ...]], ...] = ()
    similarity: SimilaritySection | None = None  # only when grade ran the similarity pass
    # The class ranked on what training checks measured (torchgrade.leaderboard), from the
    # ranks the batch wrote into the reports; None when nothing was measured.
    leaderboard: Leaderboard | None = None


def summarise(reports: Sequence[Report],
              similarity: SimilaritySection | None = None) -> ClassSummary:
    if not reports:
        raise ValueError("no reports to summarise")
    percents = [percent(r) for r in reports]
    counts = [0] * BINS
    for p in percents:
        counts[min(BINS - 1, max(0, int(p // (100 / BINS))))] += 1
    top = max(counts) or 1
    histogram = tuple(
        Bar(f"{i * 100 // BINS}-{(i + 1) * 100 // BINS}%", c, c / top) for i, c in
        enumerate(counts))

    order: dict[str, None] = {}
    for r in reports:
        for c in r.checks:
            order.setdefault(c.name, None)
    # Only reports where checks ran count towards a check's pass rate.
    graded = [r for r in reports if r.checks]
    pass_rates, failures, broken = [], [], []
    for name in order:
        results = [c for r in graded for c in r.checks if c.name == name]
        passed = sum(c.status == "passed" for c in results)
        rate = passed / len(results) if results else 0.0
        if results and passed == 0:
            broken.append(name)
        pass_rates.append(Bar(name, round(100 * rate, 1), rate,
                              "nobody passes: check the grader" if results and not passed
                              else ""))
        parts = tuple((s, n, n / len(results)) for s in STATUS_ORDER
                      if (n := sum(c.status == s for c in results)))
        if parts:
            failures.append(StackedBar(name, parts))
    slowest = max((r.duration_s for r in reports), default=0.0) or 1.0
    durations = tuple(Bar(r.student, round(r.duration_s, 1), r.duration_s / slowest)
                      for r in sorted(reports, key=lambda r: -r.duration_s))
    return ClassSummary(
        assignment=reports[0].assignment, students=len(reports),
        mean_percent=round(statistics.mean(percents), 1),
        median_percent=round(statistics.median(percents), 1), histogram=histogram,
        pass_rates=tuple(pass_rates), durations=durations, failures=tuple(failures),
        broken_checks=tuple(broken),
        submission_problems=sum(bool(r.submission_error) for r in reports),
        unresolved=tuple((r.student, r.unresolved) for r in reports if r.unresolved),
        similarity=similarity, leaderboard=from_reports(reports))


def render_class_summary(reports: Sequence[Report],
                         similarity: SimilaritySection | None = None) -> str:
    return environment().get_template("summary.html.j2").render(
        s=summarise(reports, similarity))


def write_class_summary(reports: Sequence[Report], path: Path,
                        similarity: SimilaritySection | None = None) -> Path:
    atomic_write_text(path, render_class_summary(reports, similarity))
    return path
