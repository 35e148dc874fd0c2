"""Tests pinning the report contract: the JSON every other output is rendered from.

Two kinds of report are checked: ones built here by hand, and the real JSON that grading the
toy course's reference produces (graded once per module: seconds). A change to a key, a
status or a rule of consistency must break a test here before it breaks a gradebook.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from torchgrade import report as report_module
from torchgrade.assignment import load
from torchgrade.report import (
    SCHEMA,
    CheckResult,
    Report,
    ReportError,
    atomic_write_text,
    read_report,
    write_report,
)
from torchgrade.runner import grade_submission

TOY_ROOT = Path(__file__).parent / "toy_course"
TOY_REFERENCE = TOY_ROOT / "solutions" / "toy" / "toy.py"

REQUIRED_KEYS = {
    "schema", "student", "assignment", "score", "max_score", "profile", "device", "sandbox",
    "submission_sha256", "grader_version", "duration_s", "checks",
}
OPTIONAL_KEYS = {
    "created_at", "torchgrade_version", "visibility", "submission_error", "student_output",
    "extra",
}
CHECK_REQUIRED_KEYS = {"name", "status", "points", "max_points", "visibility", "kind",
                       "feedback"}
CHECK_OPTIONAL_KEYS = {"description", "catches", "duration_s", "cpu_s", "cpu_budget_s"}
STATUSES = {"passed", "failed", "error", "timeout", "skipped", "infrastructure"}
VISIBILITIES = {"public", "hidden"}
KINDS = {"shape", "value", "invariant", "training", "robustness"}


def make_check(name: str = "test_a", status: str = "passed", points: float = 2.0,
               max_points: float = 2.0, **overrides: object) -> CheckResult:
    fields: dict[str, object] = dict(
        name=name, status=status, points=points, max_points=max_points, visibility="public",
        kind="value", feedback="" if status == "passed" else "expected 1, got 2",
        description="one line", catches="a mistake", duration_s=0.5)
    fields.update(overrides)
    return CheckResult(**fields)  # type: ignore[arg-type]


def make_report(checks: tuple[CheckResult, ...] | None = None, **overrides: object) -> Report:
    if checks is None:
        checks = (
            make_check("test_a"),
            make_check("test_b", "failed", 0.0, 3.0, visibility="hidden", kind="invariant"),
            make_check("test_c", "error", 0.0, 1.5, kind="robustness"),
            make_check("test_d", "timeout", 0.0, 1.0, kind="training"),
            make_check("test_e", "skipped", 0.0, 0.5, kind="shape"),
            make_check("test_f", "infrastructure", 0.0, 4.0, kind="training"),
        )
    fields: dict[str, object] = dict(
        student="zoë-ŝtudent", assignment="toy", score=sum(c.points for c in checks),
        max_score=sum(c.max_points for c in checks if c.status != "infrastructure"),
        profile="cpu", device="cpu (x86_64)",
        sandbox="bwrap+rlimits", submission_sha256="ab" * 32, grader_version="toy-1",
        duration_s=1.25, checks=checks, created_at="2026-01-02T03:04:05+00:00",
        torchgrade_version="0.1.0", submission_error="", student_output="<b>hi</b>\x00\x1b",
        extra={"worker_starts": 1},
    )
    fields.update(overrides)
    return Report(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def toy_graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path]:
    """The toy reference, graded for real once: its report and the JSON file written."""
    assignment = load("toy", TOY_ROOT)
    report = grade_submission(assignment, TOY_REFERENCE, "alice")
    path = tmp_path_factory.mktemp("reports") / "alice" / "toy.json"
    write_report(report, path)
    return report, path


@pytest.fixture(scope="module")
def toy_missing() -> Report:
    """The toy assignment graded with no submission file at all."""
    return grade_submission(load("toy", TOY_ROOT), None, "bob")


# -- the contract itself ------------------------------------------------------------------------
def test_schema_names_and_literals_are_pinned():
    assert SCHEMA == "torchgrade.report/2"
    assert set(report_module.STATUSES) == STATUSES
    assert set(report_module.VISIBILITIES) == VISIBILITIES
    assert set(report_module.KINDS) == KINDS


def test_real_report_has_exactly_the_contract_keys(toy_graded):
    _, path = toy_graded
    data = json.loads(path.read_text(encoding="utf-8"))
    assert REQUIRED_KEYS <= set(data)
    assert set(data) == REQUIRED_KEYS | OPTIONAL_KEYS, "a key was added or removed: bump SCHEMA"
    assert data["schema"] == "torchgrade.report/2"
    assert data["checks"], "the toy grader has checks"
    for check in data["checks"]:
        assert CHECK_REQUIRED_KEYS <= set(check)
        assert set(check) == CHECK_REQUIRED_KEYS | CHECK_OPTIONAL_KEYS


def test_real_report_values_follow_the_contract(toy_graded):
    _, path = toy_graded
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["student"] == "alice" and data["assignment"] == "toy"
    assert data["profile"] == "cpu" and data["grader_version"] == "toy-1"
    assert isinstance(data["device"], str) and data["device"]
    assert isinstance(data["sandbox"], str) and data["sandbox"] not in ("", "not started")
    assert isinstance(data["duration_s"], float) and data["duration_s"] > 0
    created = dt.datetime.fromisoformat(data["created_at"])
    assert created.tzinfo is not None
    for check in data["checks"]:
        assert check["status"] in STATUSES
        assert check["visibility"] in VISIBILITIES
        assert check["kind"] in KINDS
        assert isinstance(check["name"], str) and check["name"].startswith("test_")
        assert isinstance(check["feedback"], str)
        assert 0 <= check["points"] <= check["max_points"]
    assert data["score"] == sum(c["points"] for c in data["checks"])
    assert data["max_score"] == sum(c["max_points"] for c in data["checks"])


def test_reference_scores_full_marks_on_every_check(toy_graded):
    report, _ = toy_graded
    assert [c.status for c in report.checks] == ["passed"] * len(report.checks)
    assert all(c.points == c.max_points and c.feedback == "" for c in report.checks)
    assert report.score == report.max_score == load("toy", TOY_ROOT).total_points
    assert report.submission_error == ""
    assert {c.visibility for c in report.checks} == VISIBILITIES


def test_submission_sha256_is_the_hash_of_the_file(toy_graded):
    report, _ = toy_graded
    assert report.submission_sha256 == hashlib.sha256(TOY_REFERENCE.read_bytes()).hexdigest()


def test_real_report_round_trips_through_its_json(toy_graded):
    report, path = toy_graded
    assert read_report(path) == report
    again = path.with_name("again.json")
    write_report(read_report(path), again)
    assert again.read_bytes() == path.read_bytes()


def test_hand_built_report_round_trips(tmp_path):
    report = make_report()
    report.validate()
    path = tmp_path / "r.json"
    write_report(report, path)
    assert read_report(path) == report
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == REQUIRED_KEYS | OPTIONAL_KEYS
    assert {c["status"] for c in data["checks"]} == STATUSES


def test_a_check_the_machine_could_not_grade_counts_for_nothing(tmp_path):
    """Does an ``infrastructure`` check (an overloaded machine) stay out of max_score, so it
    gives and takes no points, and is it listed as unresolved?"""
    report = make_report()
    assert report.max_score == 8.0  # 2 + 3 + 1.5 + 1 + 0.5, without test_f's 4
    assert report.unresolved == ("test_f",)
    with pytest.raises(ReportError, match="max_score"):
        make_report(max_score=12.0).validate()
    with pytest.raises(ReportError, match="cannot earn points"):
        make_report(checks=(make_check("test_f", "infrastructure", 4.0, 4.0),),
                    max_score=0.0, score=4.0).validate()


def test_a_schema_1_report_still_reads(tmp_path):
    """Do reports written before CPU budgets (schema /1: no cpu_s, no infrastructure status)
    still read, so caches and released grades stay usable?"""
    data = make_report(checks=(make_check("test_a"),), max_score=2.0).to_json()
    data["schema"] = "torchgrade.report/1"
    for check in data["checks"]:
        del check["cpu_s"], check["cpu_budget_s"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert read_report(path).checks[0].cpu_s == 0.0


def test_report_json_is_utf8_text_with_keys_in_a_stable_order(tmp_path):
    path = tmp_path / "r.json"
    write_report(make_report(), path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert text.endswith("\n")


# -- validate: a report never contradicts itself ------------------------------------------------
@pytest.mark.parametrize(("overrides", "message"), [
    ({"score": 3.0}, "score"),
    ({"max_score": 100.0}, "max_score"),
], ids=["score", "max_score"])
def test_validate_rejects_totals_that_are_not_the_sum_of_the_checks(overrides, message):
    report = make_report(**overrides)
    with pytest.raises(ReportError, match=message):
        report.validate()


@pytest.mark.parametrize(("check", "message"), [
    (make_check(points=3.0, max_points=2.0), "outside"),
    (make_check(points=-1.0, status="failed"), "outside"),
    (make_check(points=float("nan")), "outside"),
    (make_check(status="crashed"), "unknown status"),
    (make_check(status="PASSED"), "unknown status"),
    (make_check(visibility="after_due"), "unknown visibility"),
    (make_check(kind="speed"), "unknown kind"),
], ids=["points>max", "negative", "nan", "status", "status-case", "visibility", "kind"])
def test_validate_rejects_an_impossible_check(check, message):
    report = make_report(checks=(check,), score=check.points, max_score=check.max_points)
    with pytest.raises(ReportError, match=message):
        report.validate()


def test_write_report_refuses_an_inconsistent_report_and_writes_nothing(tmp_path):
    path = tmp_path / "r.json"
    with pytest.raises(ReportError):
        write_report(make_report(score=99.0), path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status", ["failed", "error", "timeout", "skipped"])
def test_validate_rejects_points_for_a_check_that_did_not_pass(status):
    check = make_check(status=status, points=2.0, max_points=2.0)
    with pytest.raises(ReportError):
        make_report(checks=(check,), score=2.0, max_score=2.0).validate()


# -- read_report: corrupt files say which file ---------------------------------------------------
@pytest.mark.parametrize("cut", [0.5, 0.1, 0.99])
def test_truncated_report_raises_report_error_naming_the_file(tmp_path, cut):
    path = tmp_path / "alice" / "toy.json"
    write_report(make_report(), path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: int(len(text) * cut)], encoding="utf-8")
    with pytest.raises(ReportError) as info:
        read_report(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", ["", "{", "not json", "{\"schema\": "], ids=repr)
def test_corrupt_report_raises_report_error_naming_the_file(tmp_path, content):
    path = tmp_path / "toy.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError) as info:
        read_report(path)
    assert str(path) in str(info.value)


def test_missing_report_raises_report_error_naming_the_file(tmp_path):
    path = tmp_path / "nobody" / "toy.json"
    with pytest.raises(ReportError) as info:
        read_report(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(schema="torchgrade.report/0"),
    lambda d: d.pop("schema"),
    lambda d: d.pop("student"),
    lambda d: d.update(surprise=1),
    lambda d: d["checks"][0].pop("status"),
    lambda d: d["checks"][0].update(unknown="x"),
    lambda d: d["checks"][0].update(status="crashed"),
    lambda d: d.update(score=d["score"] + 1),
    lambda d: d.update(checks="none"),
], ids=["old-schema", "no-schema", "no-student", "extra-key", "check-no-status",
        "check-extra-key", "bad-status", "bad-score", "checks-not-a-list"])
def test_report_breaking_the_schema_raises_report_error(tmp_path, mutate):
    path = tmp_path / "toy.json"
    data = make_report().to_json()
    mutate(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ReportError):
        read_report(path)


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(schema="torchgrade.report/0"),
    lambda d: d["checks"][0].update(status="crashed"),
    lambda d: d.pop("student"),
], ids=["old-schema", "bad-status", "no-student"])
def test_report_breaking_the_schema_names_the_file(tmp_path, mutate):
    path = tmp_path / "carol" / "toy.json"
    path.parent.mkdir()
    data = make_report().to_json()
    mutate(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ReportError) as info:
        read_report(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", ["[]", "null", "3", "\"torchgrade.report/1\""])
def test_report_file_holding_json_that_is_not_an_object_raises_report_error(tmp_path, content):
    path = tmp_path / "toy.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError):
        read_report(path)


def test_report_file_that_is_not_utf8_raises_report_error(tmp_path):
    path = tmp_path / "toy.json"
    path.write_bytes(b"\xff\xfe{\x00")
    with pytest.raises(ReportError):
        read_report(path)


def test_report_with_non_numeric_points_raises_report_error(tmp_path):
    path = tmp_path / "toy.json"
    data = make_report().to_json()
    data["checks"][0]["points"] = "2"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ReportError):
        read_report(path)


# -- atomic writes ------------------------------------------------------------------------------
def test_atomic_write_creates_parents_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "a" / "b" / "r.json"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second ✓")
    assert path.read_text(encoding="utf-8") == "second ✓"
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_atomic_write_failing_mid_write_leaves_the_old_file_untouched(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old report", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "new report, then an unencodable \ud800")
    assert path.read_text(encoding="utf-8") == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_atomic_write_failing_before_the_swap_leaves_the_old_file_untouched(
        tmp_path, monkeypatch, fail_at):
    path = tmp_path / "r.json"
    path.write_text("old report", encoding="utf-8")

    def boom(*args, **kwargs):
        raise OSError(f"simulated {fail_at} failure")

    monkeypatch.setattr(report_module.os, fail_at, boom)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_text(path, "new report " * 1000)
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_write_interrupted_by_keyboard_interrupt_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "r.json"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "text")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_gives_the_file_the_usual_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x", encoding="utf-8")
        atomic = tmp_path / "atomic.txt"
        atomic_write_text(atomic, "x")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


# -- a missing submission still gets a complete report -------------------------------------------
def test_missing_submission_gets_a_report_with_every_check_an_error(toy_missing, tmp_path):
    report = toy_missing
    report.validate()
    assert report.student == "bob"
    assert report.checks and all(c.status == "error" for c in report.checks)
    assert all(c.points == 0 for c in report.checks)
    assert report.score == 0 and report.max_score == load("toy", TOY_ROOT).total_points
    assert report.submission_sha256 == ""
    assert "no submission" in report.submission_error and "toy.py" in report.submission_error
    assert all(c.feedback for c in report.checks)
    path = tmp_path / "bob" / "toy.json"
    write_report(report, path)
    assert read_report(path) == report


def test_missing_submission_report_lists_the_same_checks_as_a_real_one(toy_missing, toy_graded):
    """Does a missing file lose checks from the report (and so from the denominator)?"""
    graded, _ = toy_graded
    assert [(c.name, c.max_points, c.visibility, c.kind) for c in toy_missing.checks] == \
        [(c.name, c.max_points, c.visibility, c.kind) for c in graded.checks]
