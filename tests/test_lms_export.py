"""Do the gradebook files have the headers Canvas and Moodle document, and read back right?

Reports are written as `torchgrade grade` writes them (``write_report``), exported, then read
back with pandas: the columns must be the documented ones in their order and every score
must come back. A roster maps folders to gradebook identities; what it lacks is an error that
says what to fix (exit status 2), as are a missing reports folder and one without reports.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from torchgrade import cli
from torchgrade.assignment import load
from torchgrade.lms_export import (
    CANVAS_COLUMNS,
    CSV_COLUMNS,
    MOODLE_COLUMNS,
    ExportError,
    export,
    read_roster,
)
from torchgrade.report import CheckResult, Report, write_report

ROOT = Path(__file__).resolve().parents[1]
# Canvas: "How do I import grades in the Gradebook?" and Course#gradebook_to_csv; Moodle: the
# identity columns of its grade export (docs.moodle.org/en/Grade_export) and Username.
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_HEADER = ["First name", "Last name", "ID number", "Email address", "Username"]
SCORES = {"alice": 45.0, "bob": 12.5, "carol": 0.0}


def _report(student: str, score: float, assignment: str = "nt_xent") -> Report:
    checks = (CheckResult("test_a", "passed" if score else "failed", score, 45.0, "public",
                          "value", "" if score else "wrong"),
              CheckResult("test_b", "failed", 0.0, 5.0, "hidden", "value", "wrong"))
    return Report(student=student, assignment=assignment, score=score, max_score=50.0,
                  profile="cpu", device="cpu", sandbox="none", submission_sha256="",
                  grader_version="1", duration_s=1.0, checks=checks, created_at="",
                  torchgrade_version="", submission_error="" if score else "SyntaxError")


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    for student, score in SCORES.items():
        write_report(_report(student, score), folder / student / "nt_xent.json")
    return folder


def _roster(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_headers():
    assert list(CANVAS_COLUMNS) == CANVAS_HEADER
    assert list(MOODLE_COLUMNS) == MOODLE_HEADER


def test_canvas_file_reads_back_through_pandas(reports, tmp_path):
    out = tmp_path / "canvas.csv"
    result = export("nt_xent", reports, "canvas", out, column="NT-Xent (4821)",
                    points_possible=50.0)
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [*CANVAS_HEADER, "NT-Xent (4821)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "50"]
    frame = pd.read_csv(out, skiprows=[1], dtype=str, keep_default_na=False)
    assert list(frame.columns) == [*CANVAS_HEADER, "NT-Xent (4821)"]
    assert dict(zip(frame["SIS Login ID"], frame["NT-Xent (4821)"].astype(float),
                    strict=True)) == SCORES
    assert (frame["Student"] == frame["SIS Login ID"]).all()  # no roster: the folder name
    assert result.students == tuple(SCORES) and result.points_possible == 50.0


def test_moodle_file_reads_back_through_pandas_with_a_roster(reports, tmp_path):
    roster = _roster(tmp_path, "\ufefffolder,Email address,ID number,First name,Last name\n"
                     "alice,alice@uni.example,1001,Alice,Liddell\n"
                     "bob,bob@uni.example,1002,Bob,Builder\n"
                     "carol,carol@uni.example,1003,Carol,Danvers\n"
                     "dave,dave@uni.example,1004,Dave,Never-Submitted\n")
    out = tmp_path / "moodle.csv"
    result = export("nt_xent", reports, "moodle", out, roster=roster, points_possible=50.0)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns) == [*MOODLE_HEADER, "nt_xent", "nt_xent (Feedback)"]
    assert dict(zip(frame["Email address"], frame["nt_xent"].astype(float), strict=True)) == {
        f"{s}@uni.example": v for s, v in SCORES.items()}
    assert list(frame["ID number"]) == ["1001", "1002", "1003"]
    assert frame["nt_xent (Feedback)"][0] == "torchgrade: 45/50 points, 1 of 2 checks passed"
    assert "submission had a problem" in frame["nt_xent (Feedback)"][2]
    assert result.without_report == ("dave",)


def test_plain_csv_reads_back_through_pandas(reports, tmp_path):
    out = tmp_path / "grades.csv"
    export("nt_xent", reports, "csv", out, points_possible=50.0)
    frame = pd.read_csv(out, dtype={"folder": str})
    assert list(frame.columns) == list(CSV_COLUMNS)
    assert dict(zip(frame["folder"], frame["score"], strict=True)) == SCORES
    assert list(frame["percent"]) == [90.0, 25.0, 0.0]
    assert list(frame["status"]) == ["graded", "graded", "submission problem"]


def test_a_canvas_gradebook_export_with_a_folder_column_is_a_roster(reports, tmp_path):
    roster = _roster(tmp_path, "Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (77),folder\n"
                     "    Points Possible,,,,,10,\n"
                     "\"Liddell, Alice\",501,S1,aliddell,Sec A,9,alice\n"
                     "\"Builder, Bob\",502,S2,bbuilder,Sec A,7,bob\n"
                     "\"Danvers, Carol\",503,S3,cdanvers,Sec B,,carol\n")
    out = tmp_path / "canvas.csv"
    export("nt_xent", reports, "canvas", out, roster=roster, points_possible=50.0)
    frame = pd.read_csv(out, skiprows=[1], dtype=str, keep_default_na=False)
    assert list(frame["Student"]) == ["Liddell, Alice", "Builder, Bob", "Danvers, Carol"]
    assert list(frame["ID"]) == ["501", "502", "503"]
    assert list(frame["Section"]) == ["Sec A", "Sec A", "Sec B"]
    assert "Quiz 1 (77)" not in frame.columns


@pytest.mark.parametrize(("roster", "says"), [
    ("login,Email address\nalice,a@x\n", "no 'folder' column"),
    ("folder,Shoe size\nalice,42\n", "none of the columns that identify a student"),
    ("folder,Username\nalice,a\nalice,b\nbob,b\ncarol,c\n", "appears twice"),
    ("folder,Username\nalice,a\n", "no row for 2 student folder(s) with a report: bob, carol"),
])
def test_roster_problems_say_what_to_fix(reports, tmp_path, roster, says):
    with pytest.raises(ExportError, match=says.replace("(", r"\(").replace(")", r"\)")):
        export("nt_xent", reports, "moodle", tmp_path / "out.csv",
               roster=_roster(tmp_path, roster))


def test_roster_headers_are_recognised_whatever_their_case(tmp_path):
    roster = read_roster(_roster(tmp_path, "FOLDER,sis login id\nalice,al\n"), "canvas")
    assert roster.rows == {"alice": {"SIS Login ID": "al"}}


def test_export_command_writes_beside_the_reports(reports, capsys):
    """Points possible are the rubric's total; reports graded on fewer (these made-up ones
    have 50 of nt_xent's 100) are named."""
    total = load("nt_xent", ROOT).total_points
    assert cli.main(["--root", str(ROOT), "export", "nt_xent", "--reports", str(reports),
                     "--to", "canvas"]) == 0
    out = reports / "nt_xent-canvas.csv"
    assert list(pd.read_csv(out, skiprows=[1]).columns)[:5] == CANVAS_HEADER
    assert pd.read_csv(out, nrows=1).iloc[0, 5] == total
    printed = capsys.readouterr()
    assert f"out of {total:g} points" in printed.out
    assert f"graded on fewer than {total:g} points" in printed.err


def test_export_command_skips_an_unreadable_report_and_exits_1(reports, capsys):
    (reports / "mallory").mkdir()
    (reports / "mallory" / "nt_xent.json").write_text("{not json")
    write_report(_report("zed", 3.0, assignment="wgan_gp"), reports / "zed" / "nt_xent.json")
    assert cli.main(["--root", str(ROOT), "export", "nt_xent", "--reports", str(reports),
                     "--to", "csv"]) == 1
    err = capsys.readouterr().err
    assert "mallory" in err and "a report of 'wgan_gp'" in err
    frame = pd.read_csv(reports / "nt_xent-csv.csv", dtype={"folder": str})
    assert list(frame["folder"]) == list(SCORES)


@pytest.mark.parametrize(("setup", "says"), [
    ("missing", "does not exist"),
    ("empty", "no readable report of nt_xent"),
    ("unknown-roster", "no row for"),
])
def test_export_command_says_what_to_fix(tmp_path, capsys, reports, setup, says):
    folder = {"missing": tmp_path / "nope", "empty": tmp_path / "empty",
              "unknown-roster": reports}[setup]
    (tmp_path / "empty").mkdir()
    args = ["--root", str(ROOT), "export", "nt_xent", "--reports", str(folder), "--to",
            "moodle"]
    if setup == "unknown-roster":
        args += ["--roster", str(_roster(tmp_path, "folder,Username\nalice,al\n"))]
    assert cli.main(args) == 2
    assert says in capsys.readouterr().err


def test_export_help_teaches_the_command(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["export", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for word in ("--roster", "--to", "--column", "SIS Login ID", "Email address", "examples:"):
        assert word in out
