"""Is every assignment's grader fair and sharp? Its named example submissions, graded for real.

Each folder in examples/<assignment>/ holds a submission and an about.toml saying what it is:
``expect = "full" | "zero" | "partial"`` and, for a mistake, ``must_fail``: the checks meant
to catch it (and ``must_pass``: those it must not affect). Each assignment's folder is graded
once, exactly as an instructor would, by the CI audit of that assignment (the
``example_reports`` fixture of tests/conftest.py); a mistake is judged by the same rule as
``torchgrade audit``. Checks particular to one assignment live in
tests/test_<assignment>_grader.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from torchgrade.assignment import load
from torchgrade.audit import _judge_example, examples_of
from torchgrade.runner import Options, grade_submission

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# The example graded a second time for determinism: a partial one, so that passing, failing
# and feedback text are all compared, and where the assignment has one, an example that claims
# the training check, so that it is graded with training (the CI audit grades the other
# examples without: tests/conftest.py).
REGRADED = {"nt_xent": "no_training", "vit_attention": "discard_ranks_cls",
            "mae_masking": "no_training", "ddpm_sampler": "variance_swapped",
            "wgan_gp": "norm_whole_batch", "video_action": "frame_average",
            "clip_search": "one_direction_loss"}
SPECS = {name: examples_of(load(name, ROOT)) for name in REGRADED}
MISTAKES = [(a, n) for a, specs in SPECS.items() for n, s in specs.items()
            if s["expect"] == "partial"]


def test_every_assignment_with_examples_is_covered():
    """Does this module grade every assignment that ships examples?"""
    shipped = {p.parent.parent.name for p in (ROOT / "examples").glob("*/*/about.toml")}
    assert shipped == set(REGRADED)


@pytest.mark.parametrize("assignment", REGRADED)
def test_examples_cover_the_required_cases(assignment):
    """Are there a correct submission, the stub and at least three typical mistakes?"""
    specs = SPECS[assignment]
    assert "correct" in specs and "stub" in specs
    assert [s["expect"] for s in specs.values()].count("partial") >= 3


# What course code and libraries print while the grader runs a correct submission, which the
# report keeps apart from the student's output (torchgrade.worker_output).
COURSE_NOISE = {"clip_search": ("Loading weights", "`max_length` is ignored"),
                "video_action": ("moov atom not found",)}


@pytest.mark.parametrize("assignment", REGRADED)
def test_course_noise_stays_out_of_the_student_output(example_reports, assignment):
    """Does a correct submission's student output hold only what its own code printed? Course
    noise (the small CLIP's progress bars and transformers' warnings, FFmpeg on the grader's
    broken videos) is shown apart as the course's; a warning torch raises at the student's own
    line (wgan_gp's correct example calls float() on a loss) stays the student's."""
    r = example_reports(assignment)["correct"]
    assert "site-packages" not in r.student_output, r.student_output[:500]
    for noise in COURSE_NOISE.get(assignment, ()):
        assert noise not in r.student_output, (noise, r.student_output[:500])
        assert noise in r.extra.get("course_output", ""), noise
    for line in r.student_output.splitlines():
        if "Warning:" in line:  # a warning shown as the student's points at the submission
            assert line.startswith(f"/sandbox/{r.assignment}.py:") or \
                f"{r.assignment}.py" in line, line


@pytest.mark.parametrize("assignment", REGRADED)
def test_reference_copy_scores_full_marks(example_reports, assignment):
    """Does a correct submission get every point?"""
    r = example_reports(assignment)["correct"]
    failing = {c.name: c.feedback for c in r.checks if c.status != "passed"}
    assert not failing
    assert r.score == r.max_score == 100


@pytest.mark.parametrize("assignment", REGRADED)
def test_stub_scores_zero_with_clean_failures(example_reports, assignment):
    """Does the untouched stub score zero, each check failing on the stub, not on the grader?"""
    r = example_reports(assignment)["stub"]
    assert r.score == 0
    for c in r.checks:
        assert c.status in ("failed", "error"), c.name
        assert "grader could not evaluate" not in c.feedback, (c.name, c.feedback)
        assert "NotImplementedError" in c.feedback or c.status == "failed", (c.name, c.feedback)


@pytest.mark.parametrize(("assignment", "name"), MISTAKES)
def test_each_mistake_loses_points_on_its_checks(example_reports, assignment, name):
    """Does each typical mistake lose some points but not all, on every check its about.toml
    says catches it, and none on the checks it says it must not affect?"""
    finding = _judge_example(name, SPECS[assignment][name], example_reports(assignment)[name])
    assert finding.verdict == "ok", finding.message


@pytest.mark.parametrize("assignment", REGRADED)
def test_hidden_feedback_does_not_echo_inputs(example_reports, assignment):
    """Do hidden checks keep their inputs and expected values to themselves?"""
    for r in example_reports(assignment).values():
        for c in r.checks:
            if c.visibility == "hidden" and c.status == "failed":
                assert "Falsifying example" not in c.feedback, c.name


@pytest.mark.parametrize("assignment", REGRADED)
def test_same_submission_gets_the_same_report_twice(example_reports, assignment):
    """Is grading deterministic: statuses, points and feedback identical on a second run?"""
    a = load(assignment, ROOT)
    name = REGRADED[assignment]
    first = example_reports(assignment)[name]
    options = Options(skip_kinds=tuple(first.extra.get("skipped_kinds", ())))
    again = grade_submission(a, ROOT / "examples" / assignment / name / f"{a.module}.py", name,
                             options)
    assert [(c.name, c.status, c.points, c.feedback) for c in again.checks] == \
        [(c.name, c.status, c.points, c.feedback) for c in first.checks]
