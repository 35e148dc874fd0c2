"""Checks of the nt_xent grader particular to nt_xent, on its example submissions.

The checks every assignment shares (full marks for the correct copy, zero for the stub, each
mistake caught where its about.toml says, no echoed hidden inputs, determinism) are in
tests/test_example_submissions.py; both read the reports of one batch (``example_reports``).
"""

from __future__ import annotations

import pytest

from torchgrade.report import Report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reports(example_reports) -> dict[str, Report]:
    return example_reports("nt_xent")


def test_course_text_loss_loses_the_value_checks(reports):
    """Does the course text's double-counted positive lose the value checks and closed forms?"""
    status = {c.name: c.status for c in reports["course_text"].checks}
    for check in ("test_loss_matches_reference_public", "test_all_equal_closed_form_public",
                  "test_loss_matches_reference_hidden", "test_orthogonal_closed_form"):
        assert status[check] == "failed", check
