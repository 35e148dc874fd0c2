"""Do students know each training check's CPU budget, and what a correct solution needs?

The handout's table (``torchgrade.budgets``) comes from the grader's own declarations and from
the recorded measurement of the reference; these tests pin that the shipped handouts state
every CPU training check's budget and a measured use, that a stale record or a missing table
is refused, and that the audit flags a reference that leaves too little margin.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from torchgrade import budgets
from torchgrade.assignment import AssignmentError, available, load
from torchgrade.audit import _judge_budgets
from torchgrade.report import CheckResult, Report

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", available(ROOT))
def test_every_handout_states_each_training_checks_budget_and_the_references_use(name):
    """Does the handout students get list every CPU training check (by what it checks: hidden
    checks' names stay hidden) with the budget its grader declares and the CPU seconds the
    recorded reference run used (no "not measured")?"""
    a = load(name, ROOT)
    handout = (ROOT / "assignments" / name / "README.md").read_text(encoding="utf-8")
    record = budgets.recorded(a)
    checks = [c for c in budgets.training_checks(a) if "cpu" in c.profiles]
    assert checks, f"{name} has no CPU training check"
    for c in checks:
        row = next(line for line in handout.splitlines() if line.startswith(f"| {c.what} |"))
        assert f"| {c.budget_s:g} CPU s |" in row, row
        m = record[c.name]
        assert m.budget_s == c.budget_s and 0 < m.cpu_s <= c.budget_s
        assert f"{m.cpu_s:.1f} CPU s" in row or f"{m.cpu_s:.0f} CPU s" in row, row
    assert budgets.stale(a) == []


def test_training_checks_are_read_from_the_grader_source():
    """Are kind, points, profiles and budget read from the @check decorators (a check without
    timeout= gets the rubric's check_timeout_s), and other kinds left out?"""
    a = load("wgan_gp", ROOT)
    found = {c.name: c for c in budgets.training_checks(a)}
    assert set(found) == {"test_ring_training", "test_mnist_wgan_gp_gpu"}
    ring = found["test_ring_training"]
    assert (ring.points, ring.profiles, ring.budget_s) == (10.0, ("cpu",), 600.0)


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A copy of the nt_xent pieces the budget table is built from."""
    for part in ("graders", "solutions"):
        shutil.copytree(ROOT / part / "nt_xent", tmp_path / part / "nt_xent")
    return tmp_path


def test_a_changed_budget_makes_the_record_stale(course: Path):
    """When a training check's budget changes after the reference was measured, does
    ``stale`` say so (``author build --check`` then fails), and is an unmeasured check
    reported too?"""
    grader = course / "graders" / "nt_xent" / "test_nt_xent.py"
    text = grader.read_text(encoding="utf-8")
    assert 'kind="training", timeout=240' in text
    grader.write_text(text.replace('kind="training", timeout=240',
                                   'kind="training", timeout=120'), encoding="utf-8")
    a = load("nt_xent", course)
    assert budgets.stale(a) == ["test_simclr_linear_probe's budget is 120 CPU s now, 240 "
                                "when measured"]
    budgets.record_path(a).unlink()
    assert budgets.stale(a) == ["test_simclr_linear_probe was never measured"]
    assert "not measured yet" in budgets.handout_table(a)


def test_a_handout_without_the_table_marker_is_refused(course: Path):
    """An assignment with training checks whose handout source has no place for the table:
    is it refused with a message naming the marker?"""
    a = load("nt_xent", course)
    source = (course / "solutions" / "nt_xent" / "handout.md").read_text(encoding="utf-8")
    assert budgets.MARKER in source
    with pytest.raises(AssignmentError, match="training-budgets"):
        budgets.render_handout(a, source.replace(budgets.MARKER, ""))


def _reference(cpu_s: float) -> Report:
    check = CheckResult(name="test_train", status="passed", points=5, max_points=5,
                        visibility="hidden", kind="training", feedback="", cpu_s=cpu_s,
                        cpu_budget_s=100.0)
    return Report(student="reference", assignment="x", score=5, max_score=5, profile="cpu",
                  device="cpu", sandbox="bwrap", submission_sha256="", grader_version="1",
                  duration_s=1.0, checks=(check,), created_at="", torchgrade_version="0")


def test_the_audit_flags_a_reference_that_leaves_too_little_margin():
    """Is a reference using more than half of a training check's budget a problem finding,
    and one using less an ok one that gives the numbers?"""
    ok, bad = _judge_budgets(_reference(20.0)), _judge_budgets(_reference(60.0))
    assert ok is not None and ok.verdict == "ok" and "20.0/100 CPU s" in ok.message
    assert bad is not None and bad.verdict == "problem" and "raise the budget" in bad.message
