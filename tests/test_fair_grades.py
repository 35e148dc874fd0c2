"""Does a grade depend on the submission alone, not on how busy the machine is?

A small course written here, "heavy", has a training-like check whose work is a fixed amount
of CPU (the reference uses about 1 CPU second of its 4-second budget). It is graded with the
real ``torchgrade grade`` command while every process of the grading is held to 20 % of one
CPU by a cgroup quota: the deterministic form of a machine with four busy neighbours. The
reference then needs several times its budget in wall-clock time, which a wall-clock limit
punished as an "endless loop"; with CPU budgets:

- the reference still gets full marks, its check's wall time longer than its budget;
- a submission that really loops forever still times out, with the endless-loop message,
  after using its CPU budget;
- a submission that sleeps is stopped as idle, saying it was waiting, not computing;
- with a backstop too short for the throttled machine (``wall_factor = 1``), the check is an
  infrastructure outcome: no points given or taken, the submission graded again alone, and
  still unresolved it is listed in the class summary and the command exits with status 4.

Then a real assignment's submissions get identical checks, points and feedback with --jobs 1
and --jobs 2, and through ``torchgrade check``: torch threads come from the rubric, never from
the machine or --jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from torchgrade.report import Report, read_report

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TORCHGRADE = [sys.executable, "-m", "torchgrade"]
CPU_ROOT = Path("/sys/fs/cgroup/cpu")
QUOTA = 0.2  # of one CPU, for the whole grading: grader, templates and workers
N = 30_000_000  # the heavy check's work: about 1 CPU second here

RUBRIC = """\
[assignment]
title = "Heavy: a fixed amount of CPU work"
module = "heavy"
version = "heavy-1"
total_points = 4

[limits]
check_timeout_s = 10
import_timeout_s = 60
submission_timeout_s = 120
{extra}
"""

GRADER = f'''\
"""The heavy grader: a training-like check whose work is a fixed amount of CPU."""

from torchgrade.checks import check, expect_close

N = {N}


@check(points=3, kind="training", timeout=4, catches="a training loop that never ends")
def test_train(student):
    """train(n) does n steps of work and returns the sum of their squares."""
    expect_close(student.train(N), float(N * (N - 1) * (2 * N - 1) // 6), what="train(N)",
                 rtol=1e-12, atol=0.0)


@check(points=1, kind="value", visibility="public", catches="a wrong square")
def test_quick(student):
    """quick(3) is 9."""
    expect_close(student.quick(3), 9.0, what="quick(3)")
'''

REFERENCE = """\
def train(n):
    return float(sum(i * i for i in range(n)))


def quick(x):
    return float(x * x)
"""

SUBMISSIONS = {
    "honest": REFERENCE,
    "spinner": REFERENCE.replace("return float(sum(i * i for i in range(n)))",
                                 "while True:\n        pass"),
    "sleeper": REFERENCE.replace("return float(sum(i * i for i in range(n)))",
                                 "import time\n    time.sleep(10**6)"),
}


def _course(root: Path, extra: str = "") -> Path:
    (root / "graders" / "heavy").mkdir(parents=True)
    (root / "graders" / "heavy" / "rubric.toml").write_text(RUBRIC.format(extra=extra))
    (root / "graders" / "heavy" / "test_heavy.py").write_text(GRADER)
    for folder in ("solutions", "assignments"):
        (root / folder / "heavy").mkdir(parents=True)
        (root / folder / "heavy" / "heavy.py").write_text(REFERENCE)
    return root


def _throttle_available() -> str:
    if not (CPU_ROOT / "cgroup.procs").is_file() or not os.access(CPU_ROOT, os.W_OK):
        return "needs a writable cgroup v1 cpu hierarchy to throttle the grading"
    probe = CPU_ROOT / f"torchgrade-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        return f"cannot create a cpu cgroup here: {exc}"
    return ""


@pytest.fixture(scope="module")
def throttled() -> Iterator[Path]:
    """A cpu cgroup holding its processes to QUOTA of one CPU."""
    why = _throttle_available()
    if why:
        pytest.skip(why)
    group = CPU_ROOT / f"torchgrade-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    (group / "cpu.cfs_period_us").write_text("100000")
    (group / "cpu.cfs_quota_us").write_text(str(int(QUOTA * 100000)))
    yield group
    for _ in range(100):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.1)


def _grade(group: Path, course: Path, submissions: Path, out: Path) -> tuple[int, str]:
    """``torchgrade grade`` run for real, every process of it in ``group``."""
    cmd = ["/bin/sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *TORCHGRADE,
           "--root", str(course), "grade", "heavy", str(submissions), "--out", str(out),
           "--jobs", "1", "--no-cache"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return proc.returncode, proc.stdout + proc.stderr


def _check(report: Report, name: str):
    return next(c for c in report.checks if c.name == name)


@pytest.fixture(scope="module")
def loaded(throttled: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    root = tmp_path_factory.mktemp("heavy")
    course = _course(root / "course")
    subs = root / "submissions"
    for name, code in SUBMISSIONS.items():
        (subs / name).mkdir(parents=True)
        (subs / name / "heavy.py").write_text(code)
    code, said = _grade(throttled, course, subs, root / "reports")
    assert code == 1 or code == 0, said
    return {name: read_report(root / "reports" / name / "heavy.json") for name in SUBMISSIONS}


def test_a_starved_reference_still_gets_full_marks(loaded: dict[str, Report]) -> None:
    """Held to 20 % of a CPU, does the reference's heavy check take longer in wall time than
    its CPU budget (a wall-clock limit would have failed it) and still pass on CPU time?"""
    report = loaded["honest"]
    assert report.score == report.max_score == 4, [(c.name, c.feedback) for c in report.checks]
    train = _check(report, "test_train")
    assert train.cpu_budget_s == 4.0
    assert 0.3 < train.cpu_s < 2.0, train.cpu_s
    assert train.duration_s > train.cpu_budget_s, "the throttle did not slow the check down"
    assert report.extra["threads"] == 1
    assert report.extra["budget_clock"].startswith("CPU time")


def test_an_endless_loop_still_times_out_with_the_loop_message(
        loaded: dict[str, Report]) -> None:
    """Does a loop that never ends use its 4 CPU seconds (about 20 s of wall time here) and
    end as a timeout saying to look for an endless loop, while its other check passes?"""
    report = loaded["spinner"]
    train = _check(report, "test_train")
    assert train.status == "timeout"
    assert "CPU budget" in train.feedback and "endless loop" in train.feedback
    assert 4.0 <= train.cpu_s < 5.5
    assert train.duration_s > 4.0 / QUOTA * 0.8
    assert _check(report, "test_quick").status == "passed" and report.score == 1


def test_a_sleeping_submission_is_stopped_as_idle(loaded: dict[str, Report]) -> None:
    """Is a submission that sleeps (using no CPU, and not waiting for one) stopped after as
    many idle seconds as its CPU budget, with feedback saying it was waiting?"""
    train = _check(loaded["sleeper"], "test_train")
    assert train.status == "timeout"
    assert "waiting, not computing" in train.feedback
    assert train.cpu_s < 0.5 and train.duration_s < 4.0 + 10.0


def test_an_overloaded_machine_gives_and_takes_no_points(
        throttled: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """With a backstop the throttled machine cannot meet (wall_factor 1: 4.5 s for 4 CPU
    seconds at 20 % of a CPU), is the reference's heavy check an infrastructure outcome that
    counts neither for nor against it, graded again alone, and still unresolved listed in the
    report, the CSV and the class summary, with exit status 4?"""
    root = tmp_path_factory.mktemp("busy")
    course = _course(root / "course", "wall_factor = 1\nwall_slack_s = 0.5")
    (root / "submissions" / "honest").mkdir(parents=True)
    (root / "submissions" / "honest" / "heavy.py").write_text(REFERENCE)
    code, said = _grade(throttled, course, root / "submissions", root / "reports")
    assert code == 4, said
    assert "grading again, one at a time" in said and "attempt 2 of 2" in said
    report = read_report(root / "reports" / "honest" / "heavy.json")
    train = _check(report, "test_train")
    assert train.status == "infrastructure" and train.points == 0
    assert "overloaded" in train.feedback and "no points" in train.feedback
    assert train.cpu_s < train.cpu_budget_s
    assert (report.score, report.max_score) == (1, 1)  # only test_quick is at stake
    assert report.unresolved == ("test_train",) and report.extra["regraded"] == 2
    assert "cache_key" not in report.extra  # never reused: the next run grades it again
    csv = (root / "reports" / "heavy.csv").read_text().splitlines()
    row = dict(zip(csv[0].split(","), csv[1].split(","), strict=True))
    assert row["infrastructure"] == "1" and row["test_train"] == ""
    summary = (root / "reports" / "heavy-summary.html").read_text()
    assert 'id="unresolved"' in summary and "honest: test_train" in summary


# -- the same grade at any --jobs, through check and grade --------------------------------------
EXAMPLES = ("correct", "no_normalize")


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHGRADE, "--root", str(ROOT), *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _graded(report: Report) -> list[tuple[str, str, float, str]]:
    return [(c.name, c.status, c.points, c.feedback) for c in report.checks]


def test_the_same_submission_gets_the_same_grade_at_any_jobs_and_through_check(
        tmp_path: Path) -> None:
    """nt_xent's correct example and a wrong one (no normalisation, so feedback shows
    values), graded with --jobs 1 and --jobs 2 and checked with ``torchgrade check``: are
    checks, points and feedback identical, computed with the rubric's one torch thread?
    (Training left out: it is the same code path, and costs a minute per grading.)"""
    subs = tmp_path / "subs"
    for name in EXAMPLES:
        (subs / name).mkdir(parents=True)
        shutil.copyfile(ROOT / "examples" / "nt_xent" / name / "nt_xent.py",
                        subs / name / "nt_xent.py")
    graded: dict[int, dict[str, Report]] = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        proc = _cli("grade", "nt_xent", str(subs), "--out", str(out), "--jobs", str(jobs),
                    "--skip-kind", "training", "--no-cache")
        assert proc.returncode == 0, proc.stderr
        graded[jobs] = {n: read_report(out / n / "nt_xent.json") for n in EXAMPLES}
    for name in EXAMPLES:
        one, two = graded[1][name], graded[2][name]
        assert _graded(one) == _graded(two), name
        assert one.score == two.score and one.extra["threads"] == two.extra["threads"] == 1
        proc = _cli("check", "nt_xent", str(subs / name / "nt_xent.py"), "--json",
                    str(tmp_path / f"{name}-check.json"))
        checked = read_report(tmp_path / f"{name}-check.json")
        public = [g for g, c in zip(_graded(one), one.checks, strict=True)
                  if c.visibility == "public"]
        assert _graded(checked) == public, name
        assert checked.extra["threads"] == 1
        assert proc.returncode == (0 if name == "correct" else 1), proc.stdout
    assert graded[1]["correct"].score == graded[1]["correct"].max_score
    assert graded[1]["no_normalize"].score < graded[1]["no_normalize"].max_score
    assert json.dumps([_graded(r) for r in graded[1].values()]) == json.dumps(
        [_graded(r) for r in graded[2].values()])


def test_default_jobs_is_cores_over_threads(tmp_path: Path) -> None:
    """Does ``grade`` default --jobs to what the machine runs side by side (its cores over
    the rubric's one thread per worker), and say so?"""
    (tmp_path / "subs" / "stub").mkdir(parents=True)
    shutil.copyfile(ROOT / "assignments" / "nt_xent" / "nt_xent.py",
                    tmp_path / "subs" / "stub" / "nt_xent.py")
    proc = _cli("grade", "nt_xent", str(tmp_path / "subs"), "--out", str(tmp_path / "out"),
                "--visibility", "public")
    jobs = max(1, os.cpu_count() or 1)
    assert f"with {jobs} job(s)" in proc.stderr, proc.stderr


def test_check_training_prints_the_cpu_used_against_the_budget(tmp_path: Path) -> None:
    """Does ``torchgrade check --training`` run the training checks too and print, for each,
    the CPU seconds the student's code used against its budget, with the thread count?"""
    course = _course(tmp_path / "course")
    proc = subprocess.run([*TORCHGRADE, "--root", str(course), "check", "heavy",
                           str(course / "solutions" / "heavy" / "heavy.py"), "--training"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "training checks of heavy" in proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if "CPU: your code used" in ln)
    used = float(line.split("used ")[1].split(" of")[0])
    assert 0.3 < used < 4.0 and "of this check's 4 CPU seconds" in line
    assert "torch threads: 1" in proc.stdout
