"""Checks of the clip_search grader particular to clip_search, on its example submissions.

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
    return example_reports("clip_search")


def _check(report: Report, name: str):
    return next(c for c in report.checks if c.name == name)


def test_tensor_only_engine_passes_the_tensor_check_and_fails_on_output_objects(reports):
    """Does an engine written for transformers 4 (features as tensors) pass with the plain-
    tensor model and fail with the real transformers 5 output objects, saying why?"""
    report = reports["tensor_only_features"]
    assert _check(report, "test_tensor_features_model").status == "passed"
    check = _check(report, "test_zero_shot_public")
    assert check.status in ("failed", "error")
    assert "pooler_output" in check.feedback


def test_pickled_index_is_named_as_a_pickle(reports):
    """Is a torch.save'd index reported as a pickle, and its load as a rejection failure?"""
    report = reports["pickled_index"]
    round_trip = _check(report, "test_save_load_round_trip")
    assert round_trip.status == "failed" and "pickle" in round_trip.feedback
    assert _check(report, "test_pickled_index_rejected").status == "failed"


def test_misaligned_paths_lose_the_folder_checks_but_not_the_tie_check(reports):
    """A path recorded before its file decodes only shows on folders with a corrupt file."""
    report = reports["misaligned_after_corrupt"]
    assert _check(report, "test_build_index_matches_reference").status == "failed"
    assert _check(report, "test_ties_keep_index_order").status == "passed"


def test_one_direction_loss_passes_the_symmetric_closed_forms(reports):
    """The closed forms are symmetric (both directions agree there): the one-direction loss is
    caught by the reference comparison and the swap invariant instead."""
    report = reports["one_direction_loss"]
    assert _check(report, "test_clip_loss_closed_forms").status == "passed"
    assert _check(report, "test_loss_invariants").status == "failed"
