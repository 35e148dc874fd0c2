"""Tests for the ``torchgrade`` command line, run as a student or instructor would run it.

Each test starts ``python -m torchgrade`` in a subprocess from the repository root, against the
toy course (``tests/toy_course``): its reference passes, its stub raises NotImplementedError.
Usage errors must exit 2 with one message saying what to fix, before any grading starts.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from torchgrade.report import read_report

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TOY = Path("tests") / "toy_course"
TOY_REFERENCE = TOY / "solutions" / "toy" / "toy.py"
TOY_STUB = TOY / "assignments" / "toy" / "toy.py"


def torchgrade(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TORCHGRADE_ROOT"}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-m", "torchgrade", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


# -- help ---------------------------------------------------------------------------------------
def test_help_lists_the_commands():
    out = torchgrade("--help")
    assert out.returncode == 0, out.stderr
    for word in ("check", "grade", "author", "list", "--root"):
        assert word in out.stdout


@pytest.mark.parametrize(("command", "options"), [
    ("check", ("--profile", "--sandbox")),
    ("grade", ("--jobs", "--profile", "--visibility", "--out", "--student", "--sandbox")),
])
def test_subcommand_help_mentions_its_options(command, options):
    out = torchgrade(command, "--help")
    assert out.returncode == 0, out.stderr
    for option in options:
        assert option in out.stdout, f"{command} --help does not mention {option}"


def test_version_is_printed():
    from torchgrade import __version__

    out = torchgrade("--version")
    assert out.returncode == 0 and __version__ in out.stdout


# -- check --------------------------------------------------------------------------------------
def test_check_on_the_reference_passes_and_prints_the_score():
    out = torchgrade("--root", TOY, "check", "toy", TOY_REFERENCE)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    check_lines = [line for line in lines if line.strip().startswith(("PASS", "FAIL", "ERR"))]
    assert check_lines and all(line.strip().startswith("PASS") for line in check_lines)
    assert any("test_scale_public" in line for line in check_lines)
    assert not any("test_scale_hidden" in line for line in lines), "check runs public checks only"
    assert "score: 2/2" in out.stdout


def test_check_on_the_stub_fails_with_the_not_implemented_feedback():
    out = torchgrade("--root", TOY, "check", "toy", TOY_STUB)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "NotImplementedError" in out.stdout
    assert any(line.strip().startswith(("ERR", "FAIL")) for line in out.stdout.splitlines())
    assert "PASS" not in out.stdout
    assert "score: 0/2" in out.stdout


def test_check_on_a_missing_file_exits_2_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "toy.py"
    out = torchgrade("--root", TOY, "check", "toy", missing)
    assert out.returncode == 2
    assert str(missing) in out.stderr
    assert "Traceback" not in out.stderr


def test_check_on_a_file_that_is_neither_python_nor_a_notebook_exits_2(tmp_path):
    text = tmp_path / "toy.txt"
    text.write_text("def scale(x, s):\n    return x * s\n", encoding="utf-8")
    out = torchgrade("--root", TOY, "check", "toy", text)
    assert out.returncode == 2 and ".py" in out.stderr and ".ipynb" in out.stderr


def test_unknown_assignment_exits_2_naming_the_known_ones():
    out = torchgrade("--root", TOY, "check", "toyy", TOY_REFERENCE)
    assert out.returncode == 2
    assert "'toyy'" in out.stderr and "toy" in out.stderr.split("known assignments:")[1]
    out = torchgrade("check", "no_such_assignment", TOY_REFERENCE)
    assert out.returncode == 2 and "nt_xent" in out.stderr


def test_root_without_graders_exits_2(tmp_path):
    out = torchgrade("--root", tmp_path, "check", "toy", TOY_REFERENCE)
    assert out.returncode == 2 and "graders/" in out.stderr


def test_list_shows_the_course_assignments():
    out = torchgrade("--root", TOY, "list")
    assert out.returncode == 0, out.stderr
    assert "toy" in out.stdout and "Toy: scale a tensor" in out.stdout


# -- grade --------------------------------------------------------------------------------------
def test_grade_with_a_missing_submissions_folder_exits_2(tmp_path):
    missing = tmp_path / "submissions"
    out = torchgrade("--root", TOY, "grade", "toy", missing, "--out", tmp_path / "out")
    assert out.returncode == 2
    assert str(missing) in out.stderr
    assert not (tmp_path / "out").exists()


def test_grade_with_no_student_folders_exits_2(tmp_path):
    (tmp_path / "subs").mkdir()
    out = torchgrade("--root", TOY, "grade", "toy", tmp_path / "subs", "--out", tmp_path / "out")
    assert out.returncode == 2 and "no student folders" in out.stderr


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_grade_with_fewer_than_one_job_exits_2(tmp_path, jobs):
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    out = torchgrade("--root", TOY, "grade", "toy", tmp_path / "subs", "--out",
                     tmp_path / "out", "--jobs", jobs)
    assert out.returncode == 2 and "--jobs" in out.stderr
    assert not (tmp_path / "out").exists()


def test_grade_without_out_is_a_usage_error(tmp_path):
    out = torchgrade("--root", TOY, "grade", "toy", tmp_path)
    assert out.returncode == 2 and "--out" in out.stderr


def test_grade_writes_every_report_for_each_student_and_the_class_csv(tmp_path):
    subs = tmp_path / "subs"
    for student, source in (("alice", TOY_REFERENCE), ("bob", TOY_STUB)):
        (subs / student).mkdir(parents=True)
        shutil.copy(REPO / source, subs / student / "toy.py")
    out_dir = tmp_path / "out"
    out = torchgrade("--root", TOY, "grade", "toy", subs, "--out", out_dir, "--jobs", "2")
    assert out.returncode == 0, out.stdout + out.stderr

    for student in ("alice", "bob"):
        folder = out_dir / student
        for name in ("toy.json", "toy.html", "results.json", "toy.junit.xml"):
            assert (folder / name).is_file(), f"missing {student}/{name}"
        json.loads((folder / "results.json").read_text(encoding="utf-8"))
        ET.parse(folder / "toy.junit.xml")
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]

    alice, bob = read_report(out_dir / "alice" / "toy.json"), read_report(out_dir / "bob" /
                                                                          "toy.json")
    assert alice.student == "alice" and alice.score == alice.max_score == 10
    assert bob.student == "bob" and bob.score == 0 and bob.max_score == 10
    assert {c.visibility for c in alice.checks} == {"public", "hidden"}
    assert any("NotImplementedError" in c.feedback for c in bob.checks)

    with (out_dir / "toy.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["student"] for r in rows] == ["alice", "bob"]
    assert [float(r["score"]) for r in rows] == [10.0, 0.0]
    assert "alice" in out.stdout and "bob" in out.stdout
