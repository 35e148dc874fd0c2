"""Is the ddpm_sampler grader fair and sharp? The named example submissions, graded for real.

Each folder in examples/ddpm_sampler/ holds a submission and an about.toml saying what it is:
``expect = "full" | "zero" | "partial"`` and, for a mistake, ``must_fail``: the checks meant
to catch it. The whole folder is graded once as a batch, exactly as an instructor would.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from torchgrade.assignment import load
from torchgrade.batch import grade_batch
from torchgrade.report import Report
from torchgrade.runner import Options, grade_submission

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "ddpm_sampler"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "about.toml").is_file())


def about(name: str) -> dict:
    return tomllib.loads((EXAMPLES / name / "about.toml").read_text())


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    out = tmp_path_factory.mktemp("reports")
    result = grade_batch(load("ddpm_sampler", ROOT), EXAMPLES, out, options=Options(), jobs=2,
                         students=NAMES)
    return {r.student: r for r in result.reports}


def test_examples_cover_the_required_cases():
    """Are there a correct submission, the stub and at least three typical mistakes?"""
    kinds = [about(n)["expect"] for n in NAMES]
    assert "correct" in NAMES and "stub" in NAMES
    assert kinds.count("partial") >= 3


def test_reference_copy_scores_full_marks(reports):
    """Does a correct submission get every point?"""
    r = reports["correct"]
    failing = {c.name: c.feedback for c in r.checks if c.status != "passed"}
    assert not failing
    assert r.score == r.max_score == 100


def test_stub_scores_zero_with_clean_failures(reports):
    """Does the untouched stub score zero, each check failing on the stub, not on the grader?"""
    r = reports["stub"]
    assert r.score == 0
    for c in r.checks:
        assert c.status in ("failed", "error"), c.name
        assert "grader could not evaluate" not in c.feedback, (c.name, c.feedback)
        assert "NotImplementedError" in c.feedback or c.status == "failed", (c.name, c.feedback)


@pytest.mark.parametrize("name", [n for n in NAMES if about(n)["expect"] == "partial"])
def test_each_mistake_loses_points_on_its_checks(reports, name):
    """Does each typical mistake lose points exactly where the grader says it catches it?"""
    r = reports[name]
    spec = about(name)
    status = {c.name: c.status for c in r.checks}
    assert 0 < r.score < r.max_score
    for check in spec["must_fail"]:
        assert status[check] != "passed", f"{name}: {check} should catch {spec['description']}"
    for check in spec.get("must_pass", []):
        assert status[check] == "passed", f"{name}: {check} should not be affected"


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


def test_hidden_feedback_does_not_echo_inputs(reports):
    """Do hidden checks keep their inputs and expected values to themselves?"""
    for r in reports.values():
        for c in r.checks:
            if c.visibility == "hidden" and c.status == "failed":
                assert "Falsifying example" not in c.feedback, c.name


def test_same_submission_gets_the_same_report_twice(reports):
    """Is grading deterministic: statuses, points and feedback identical on a second run?"""
    first = reports["variance_swapped"]
    again = grade_submission(load("ddpm_sampler", ROOT),
                             EXAMPLES / "variance_swapped" / "ddpm_sampler.py",
                             "variance_swapped", Options())
    assert [(c.name, c.status, c.points, c.feedback) for c in again.checks] == \
        [(c.name, c.status, c.points, c.feedback) for c in first.checks]
