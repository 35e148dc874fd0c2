"""Checks of the ddpm_sampler grader particular to ddpm_sampler, on its example submissions.

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
    return example_reports("ddpm_sampler")


def test_training_check_passes_correct_samplers(reports):
    """Does the training check pass the reference copy and the rewritten correct sampler?"""
    for name in ("correct",):
        status = {c.name: c.status for c in reports[name].checks}
        assert status["test_toy2d_samples_match_data"] == "passed", name


def test_seeded_draw_mistake_loses_the_exact_step(reports):
    """Does the course text's randn_like (no generator) lose every seeded-step check?"""
    status = {c.name: c.status for c in reports["randn_no_generator"].checks}
    for check in ("test_ddpm_step_public", "test_ddpm_step_matches_reference"):
        assert status[check] == "failed", check
