"""Checks of the wgan_gp grader particular to wgan_gp, on its example submissions.

The checks every assignment shares (full marks for the correct copy, zero for the stub, each
mistake caught where its about.toml says, no echoed hidden inputs, determinism) are in
tests/test_example_submissions.py; both read the reports of one grading (``example_reports``).
"""

from __future__ import annotations

import pytest

from torchgrade.report import Report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reports(example_reports) -> dict[str, Report]:
    return example_reports("wgan_gp")


def _status(report: Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_ring_check_separates_wgan_gp_from_a_bce_gan_and_broken_penalties(reports):
    """Does the ring check pass a correct WGAN-GP and fail the course text's BCE GAN (no
    penalty), a penalty that never reaches the critic and a whole-batch norm, by the trained
    critic's gradient norms? (Their generators cover the ring as well as the reference's.)"""
    assert _status(reports["correct"])["test_ring_training"] == "passed"
    for name in ("course_text_gan", "no_create_graph", "norm_whole_batch"):
        ring = next(c for c in reports[name].checks if c.name == "test_ring_training")
        assert ring.status == "failed", name
        assert "gradient norm at interpolates" in ring.feedback, (name, ring.feedback)


def test_penalty_mistakes_lose_the_exact_checks(reports):
    """Do a whole-batch norm and a bare torch.rand both lose the seeded-penalty checks?"""
    for name in ("norm_whole_batch", "no_generator"):
        status = _status(reports[name])
        for check in ("test_gradient_penalty_public", "test_eps_draw_matches_reference"):
            assert status[check] == "failed", (name, check)
