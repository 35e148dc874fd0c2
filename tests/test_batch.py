"""Batch grading: every student gets a report, re-runs reuse unchanged work, and a batch
killed with SIGKILL resumes without a lost or corrupt report."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from torchgrade.assignment import load
from torchgrade.batch import grade_batch
from torchgrade.report import read_report
from torchgrade.runner import Options

pytestmark = pytest.mark.slow

TOY = Path(__file__).resolve().parent / "toy_course"
REFERENCE = TOY / "solutions" / "toy" / "toy.py"
STUB = TOY / "assignments" / "toy" / "toy.py"


def make_roster(root: Path, students: dict[str, Path | None]) -> Path:
    subs = root / "subs"
    for name, source in students.items():
        (subs / name).mkdir(parents=True)
        if source is not None:
            shutil.copy(source, subs / name / "toy.py")
    return subs


def test_rerun_reuses_reports_and_regrades_only_what_changed(tmp_path):
    """Does a second run grade only the submission that changed?"""
    subs = make_roster(tmp_path, {"ann": REFERENCE, "ben": STUB})
    out = tmp_path / "out"
    a = load("toy", TOY)
    first = {r.student: r for r in grade_batch(a, subs, out, options=Options(), jobs=2).reports}
    assert first["ann"].score == 10 and first["ben"].score == 0
    shutil.copy(REFERENCE, subs / "ben" / "toy.py")
    second = {r.student: r for r in grade_batch(a, subs, out, options=Options(), jobs=2).reports}
    assert second["ann"].extra.get("cached") is True
    assert second["ann"].created_at == first["ann"].created_at
    assert not second["ben"].extra.get("cached")
    assert second["ben"].score == 10
    third = grade_batch(a, subs, out, options=Options(), jobs=2, use_cache=False).reports
    assert not any(r.extra.get("cached") for r in third)


def test_changed_options_are_not_served_from_the_cache(tmp_path):
    """Is a public-only report never reused for a full grading?"""
    subs = make_roster(tmp_path, {"ann": REFERENCE})
    out = tmp_path / "out"
    a = load("toy", TOY)
    grade_batch(a, subs, out, options=Options(visibility="public"))
    (full,) = grade_batch(a, subs, out, options=Options()).reports
    assert not full.extra.get("cached")
    assert full.max_score == 10


def test_batch_killed_with_sigkill_resumes_without_loss(tmp_path):
    """Killed mid-batch, does a re-run finish every student with only valid reports?"""
    students = {f"s{i:02d}": REFERENCE for i in range(6)}
    subs = make_roster(tmp_path, students)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torchgrade", "--root", str(TOY), "grade", "toy", str(subs),
           "--out", str(out), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(out.glob("*/toy.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.parent.name for p in out.glob("*/toy.json")}
    assert 1 <= len(done_before) < len(students), "the kill should land mid-batch"
    for p in out.glob("*/toy.json"):
        read_report(p)  # complete and valid: written atomically
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr.count("report reused") >= len(done_before)
    for name in students:
        assert read_report(out / name / "toy.json").score == 10
