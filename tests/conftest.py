"""Fixtures shared by the test modules.

``shipped_audit(assignment)`` runs the CI form of ``torchgrade audit`` on a shipped
assignment once per test session: the reference, the stub, the stub's degenerate twins and
every example in ``examples/<assignment>/`` graded in sandboxed batches, exactly as an
instructor grades (training checks only for the reference, the stub, its twins and the
examples that claim one), plus a few mutants of the reference graded without training.
``example_reports(assignment)`` is that audit's report of each example, keyed by the example's
name. So the audit test (tests/test_audit_shipped.py), the example contract shared by every
assignment (tests/test_example_submissions.py) and each assignment's own tests
(tests/test_<assignment>_grader.py) read one grading of each example instead of grading it
two or three times.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from torchgrade.assignment import load
from torchgrade.audit import AuditOptions, AuditResult, run_audit
from torchgrade.report import Report, read_report

ROOT = Path(__file__).resolve().parents[1]
# One run (determinism is compared by regrading one example: tests/test_example_submissions.py),
# a small mutant budget, mutants without training (the audit's default), and training checks
# only where they are claimed: the reference, the stub, the examples expecting full marks or
# zero and those whose about.toml names a training check run every check, the other examples
# run all but the training checks. The stub's four degenerate twins run every check beside the
# reference (they fail fast: about 25 s of the two jobs per assignment, mostly while the
# reference trains) and must score 0.
QUICK = AuditOptions(mutants=4, repeats=1, jobs=2, example_skip_kinds=("training",),
                     twins=True)
PREFIX = "example-"


@pytest.fixture(scope="session")
def shipped_audit(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], tuple[AuditResult, dict[str, Report]]]:
    done: dict[str, tuple[AuditResult, dict[str, Report]]] = {}

    def audit(assignment: str) -> tuple[AuditResult, dict[str, Report]]:
        if assignment not in done:
            a = load(assignment, ROOT)
            out = tmp_path_factory.mktemp(f"audit-{assignment}")
            result = run_audit(a, out, QUICK)
            run1 = out / "reports" / "run1"
            reports = {p.name: read_report(p / f"{assignment}.json")
                       for p in sorted(run1.iterdir()) if p.is_dir()}
            done[assignment] = (result, reports)
        return done[assignment]

    return audit


@pytest.fixture(scope="session")
def example_reports(shipped_audit) -> Callable[[str], dict[str, Report]]:
    def reports(assignment: str) -> dict[str, Report]:
        _, graded = shipped_audit(assignment)
        return {name.removeprefix(PREFIX): r for name, r in graded.items()
                if name.startswith(PREFIX)}

    return reports
