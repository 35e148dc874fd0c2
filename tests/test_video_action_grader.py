"""Checks of the video_action grader particular to video_action, on its example submissions.

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
    return example_reports("video_action")


def _check(report: Report, name: str):
    return next(c for c in report.checks if c.name == name)


def test_training_check_separates_temporal_models_from_frame_averaging(reports):
    """Does the training check pass the correct classifier and fail the frame-averaging one,
    whose feedback points at the lost direction of motion?"""
    assert _check(reports["correct"], "test_training_cpu").status == "passed"
    failed = _check(reports["frame_average"], "test_training_cpu")
    assert failed.status == "failed"
    assert "direction of motion" in failed.feedback


def test_bgr_frames_are_named_in_the_feedback(reports):
    """Do BGR frames (the course text's, and alone) fail the colour check with a hint that
    names the conversion?"""
    for name in ("course_text", "bgr_frames"):
        rgb = _check(reports[name], "test_extract_frames_rgb")
        assert rgb.status == "failed", name
        assert "BGR" in rgb.feedback, (name, rgb.feedback)


def test_sampler_mistakes_keep_the_invariants(reports):
    """Are segment starts and float centres caught by the exact checks only (their indices are
    still in range and non-decreasing)?"""
    for name in ("course_text", "float_sampler"):
        assert _check(reports[name], "test_uniform_indices_exact").status == "failed"
        assert _check(reports[name], "test_uniform_indices_invariants").status == "passed"


def test_every_check_names_the_mistake_it_catches(reports):
    """Does every check in the reports carry the mistake it catches?"""
    for name, report in reports.items():
        for c in report.checks:
            assert c.catches.strip(), (name, c.name)
