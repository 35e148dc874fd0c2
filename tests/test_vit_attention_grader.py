"""Checks of the vit_attention grader particular to vit_attention, on its example submissions.

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
    return example_reports("vit_attention")


def test_rollout_mistakes_lose_the_closed_forms(reports):
    """Do the rollout mistakes (wrong order, CLS ranked by the discard) fail the closed forms?"""
    for name in ("rollout_wrong_order", "discard_ranks_cls"):
        status = {c.name: c.status for c in reports[name].checks}
        assert status["test_rollout_closed_forms"] == "failed", name
