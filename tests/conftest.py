"""Fixtures shared by the test modules.

``example_reports(assignment)`` grades ``examples/<assignment>/`` once per test session, as an
instructor would (one batch, sandboxed workers), so the example-contract tests that every
assignment shares (tests/test_example_submissions.py) and each assignment's own tests
(tests/test_<assignment>_grader.py) read the same reports instead of grading them twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from torchgrade.assignment import load
from torchgrade.audit import examples_of
from torchgrade.batch import grade_batch
from torchgrade.report import Report
from torchgrade.runner import Options

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def example_reports(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], dict[str, Report]]:
    graded: dict[str, dict[str, Report]] = {}

    def reports(assignment: str) -> dict[str, Report]:
        if assignment not in graded:
            a = load(assignment, ROOT)
            out = tmp_path_factory.mktemp(f"reports-{assignment}")
            result = grade_batch(a, ROOT / "examples" / assignment, out, options=Options(),
                                 jobs=2, students=sorted(examples_of(a)))
            graded[assignment] = {r.student: r for r in result.reports}
        return graded[assignment]

    return reports
