"""Checks of the mae_masking grader particular to mae_masking, on its example submissions.

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
    return example_reports("mae_masking")


def test_training_check_separates_trained_from_untrained(reports):
    """Does the training check pass a correct trainer and fail one that never trains?"""
    status = {n: {c.name: c.status for c in r.checks} for n, r in reports.items()}
    assert status["correct"]["test_mae_reconstruction"] == "passed"
    assert status["no_training"]["test_mae_reconstruction"] == "failed"


def test_masking_mistakes_lose_the_exact_draw(reports):
    """Do a bare torch.rand and a shuffled-order mask both lose the seeded-draw checks?"""
    for name in ("no_generator", "mask_shuffled_order"):
        status = {c.name: c.status for c in reports[name].checks}
        for check in ("test_random_masking_public", "test_random_masking_matches_reference"):
            assert status[check] == "failed", (name, check)
