"""Does the class leaderboard rank what training checks measured, fairly and privately?

Ranking rules are tested on plain reports (ties share a rank, "lower is better" sorts the
other way, a NaN is left off). Then a small course whose training-like check measures a
number the student's code returns is graded for real: the leaderboard's CSV and page, each
student's page and Gradescope ``results.json``, the class summary, pseudonyms (sanitised,
escaped, collisions told apart) and stable anonymous names, and folder names only on request.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from torchgrade import leaderboard
from torchgrade.assignment import load
from torchgrade.batch import grade_batch
from torchgrade.report import CheckResult, Report, read_report
from torchgrade.runner import Options


def _report(student: str, value: float, better: str = "higher") -> Report:
    check = CheckResult(name="test_train", status="passed", points=1, max_points=1,
                        visibility="hidden", kind="training", feedback="")
    return Report(student=student, assignment="race", score=1, max_score=1, profile="cpu",
                  device="cpu", sandbox="none", submission_sha256="", grader_version="1",
                  duration_s=0.1, checks=(check,), created_at="", torchgrade_version="0",
                  extra={"measured": {"test_train": [
                      {"metric": "accuracy", "value": value, "threshold": 0.5,
                       "better": better}]}})


def test_ranks_share_ties_and_leave_out_non_numbers():
    """Do equal values share a rank (1, 2, 2, 4), is a NaN left off, and does a value below
    the threshold rank but not pass?"""
    reports = [_report("a", 0.9), _report("b", 0.7), _report("c", 0.7), _report("d", 0.4),
               _report("e", math.nan)]
    board = leaderboard.build(reports, {r.student: r.student for r in reports})
    (table,) = board.tables
    assert [(e.student, e.rank, e.passed) for e in table.entries] == [
        ("a", 1, True), ("b", 2, True), ("c", 2, True), ("d", 4, False)]


def test_lower_is_better_sorts_the_other_way():
    reports = [_report("a", 0.9, "lower"), _report("b", 0.2, "lower")]
    board = leaderboard.build(reports, {"a": "a", "b": "b"})
    assert [e.student for e in board.tables[0].entries] == ["b", "a"]


def test_names_are_pseudonyms_or_stable_anonymous_names(tmp_path: Path):
    """A chosen pseudonym is shown (sanitised), two students choosing the same one are told
    apart, the others get anonymous names that stay the same with the same key and reveal
    nothing of the folder name, and folder names appear only when asked for."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    for student, name in (("alice", "Zed <script>\n2nd line"), ("bob", "twin"),
                          ("carol", "TWIN"), ("dave", None)):
        (subs / student).mkdir(parents=True)
        if name is not None:
            (subs / student / leaderboard.PSEUDONYM_FILE).write_text(name)
    students = ["alice", "bob", "carol", "dave"]
    shown = leaderboard.display_names(students, subs, out, names=False)
    assert shown["alice"] == "Zed script"
    assert shown["bob"].startswith("twin (") and shown["carol"].startswith("TWIN (")
    assert shown["bob"] != shown["carol"]
    assert shown["dave"].startswith("anon-") and "dave" not in shown["dave"]
    assert leaderboard.display_names(students, subs, out, names=False) == shown
    assert leaderboard.display_names(students, subs, out, names=True)["dave"] == "dave"


RUBRIC = """\
[assignment]
title = "Race: a measured number"
module = "race"
version = "race-1"
total_points = 2

[limits]
check_timeout_s = 20
import_timeout_s = 60
submission_timeout_s = 120
"""

GRADER = '''\
"""The race grader: a training-like check that measures what the student's model scores."""

import math

from torchgrade.checks import check, expect_close, fail, measured


@check(points=1, kind="training", catches="a model that scores below the bar")
def test_train(student):
    """train() scores at least 0.5."""
    score = float(student.train())
    measured("accuracy", score, 0.5, better="higher", data="the race set")
    if not (math.isfinite(score) and score >= 0.5):
        fail("the score is too low.", expected=">= 0.5", got=f"{score:.3f}")


@check(points=1, kind="value", visibility="public", catches="a wrong square")
def test_quick(student):
    """quick(3) is 9."""
    expect_close(student.quick(3), 9.0, what="quick(3)")
'''

SCORES = {"alice": "0.91", "bob": "0.75", "carol": "0.75", "dave": "0.30",
          "eve": "float('nan')"}


@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("race")
    course = root / "course"
    (course / "graders" / "race").mkdir(parents=True)
    (course / "graders" / "race" / "rubric.toml").write_text(RUBRIC)
    (course / "graders" / "race" / "test_race.py").write_text(GRADER)
    subs = root / "subs"
    for student, score in SCORES.items():
        (subs / student).mkdir(parents=True)
        (subs / student / "race.py").write_text(
            f"def train():\n    return {score}\n\n\ndef quick(x):\n    return float(x * x)\n")
    (subs / "alice" / "pseudonym.txt").write_text("<b>Ada</b> & co\n")
    grade_batch(load("race", course), subs, root / "out", options=Options(), jobs=2)
    return subs, root / "out"


def test_the_batch_writes_the_leaderboard_csv_and_page(raced: tuple[Path, Path]):
    """Is every measured student ranked in the CSV (best first, the tie shared, the NaN left
    off), and is the shareable page escaped and free of folder names?"""
    _, out = raced
    with (out / "race-leaderboard.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["rank"], r["value"], r["passed"]) for r in rows] == [
        ("1", "0.91", "yes"), ("2", "0.75", "yes"), ("2", "0.75", "yes"), ("4", "0.3", "no")]
    assert rows[0]["name"] == "bAdab co"
    page = (out / "race-leaderboard.html").read_text()
    assert "bAdab co" in page and "<b>" not in page
    for student in SCORES:
        assert f">{student}<" not in page


def test_each_student_sees_their_own_rank(raced: tuple[Path, Path]):
    """Does each ranked student's report, page and Gradescope results.json carry their own
    rank, under the name the class sees?"""
    _, out = raced
    bob = read_report(out / "bob" / "race.json")
    (entry,) = bob.extra["leaderboard"]
    assert (entry["rank"], entry["of"], entry["metric"]) == (2, 4, "accuracy")
    assert entry["name"].startswith("anon-")
    assert "rank 2 of 4" in (out / "bob" / "race.html").read_text()
    gradescope = json.loads((out / "bob" / "results.json").read_text())
    assert gradescope["leaderboard"] == [{"name": "accuracy", "value": 0.75,
                                          "order": "desc"}]
    assert "leaderboard" not in read_report(out / "eve" / "race.json").extra


def test_the_class_summary_has_the_leaderboard(raced: tuple[Path, Path]):
    _, out = raced
    summary = (out / "race-summary.html").read_text()
    assert 'id="leaderboard"' in summary and "race-leaderboard.html" in summary


def test_names_stay_the_same_when_graded_again(raced: tuple[Path, Path]):
    """Graded again (reports reused from the cache), do the anonymous names stay the same,
    and with leaderboard_names do the folder names appear?"""
    subs, out = raced
    before = read_report(out / "bob" / "race.json").extra["leaderboard"][0]["name"]
    course = out.parent / "course"
    grade_batch(load("race", course), subs, out, options=Options(), jobs=2)
    assert read_report(out / "bob" / "race.json").extra["leaderboard"][0]["name"] == before
    grade_batch(load("race", course), subs, out, options=Options(), jobs=2,
                leaderboard_names=True)
    assert read_report(out / "bob" / "race.json").extra["leaderboard"][0]["name"] == "bob"
