"""Faulty submissions, graded for real: does each fault end in a report saying what happened,
while the rest of the batch is graded normally?

Every file in ``tests/submissions/faults/`` is a toy submission with one kind of fault: an
endless loop, a memory bomb, a fork bomb, a segfault, a disk fill, an output flood, a syntax
error, a missing function, wrong return types, a hanging, reading, raising or exiting import.
They are graded in ONE batch together with an honest copy of the reference; then one small test
per fault asks its question of the report (and of the host, for what must not outlive grading).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from torchgrade.assignment import Assignment, load
from torchgrade.batch import grade_batch
from torchgrade.isolation import bwrap_available
from torchgrade.report import CheckResult, Report, read_report
from torchgrade.runner import Options

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
COURSE = HERE / "toy_course"
FAULTS = HERE / "submissions" / "faults"
FAULT_NAMES = sorted(p.stem for p in FAULTS.glob("*.py"))
SCALE_CHECKS = ("test_scale_public", "test_scale_hidden", "test_scale_linear")
BWRAP = bwrap_available()


@dataclasses.dataclass
class FaultRun:
    assignment: Assignment
    reports: dict[str, Report]
    out_dir: Path
    wall_s: float


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultRun]:
    root = tmp_path_factory.mktemp("faults")
    submissions, out_dir = root / "submissions", root / "reports"
    sources = {n: FAULTS / f"{n}.py" for n in FAULT_NAMES}
    sources["honest"] = COURSE / "solutions" / "toy" / "toy.py"
    for name, source in sources.items():
        (submissions / name).mkdir(parents=True)
        shutil.copyfile(source, submissions / name / "toy.py")
    assignment = load("toy", COURSE)
    started = time.monotonic()
    # Three at a time: the slowest faults (a hanging import, an endless loop) mostly wait.
    batch = grade_batch(assignment, submissions, out_dir, options=Options(), jobs=3,
                        students=sorted(sources), use_cache=False)
    wall = time.monotonic() - started
    yield FaultRun(assignment, {r.student: r for r in batch.reports}, out_dir, wall)


def _statuses(report: Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def _check(report: Report, name: str) -> CheckResult:
    return next(c for c in report.checks if c.name == name)


def _processes_named(comm: str) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() == comm:
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


def test_honest_submission_in_the_same_batch_gets_full_marks(faults: FaultRun) -> None:
    """Does an honest submission graded alongside every fault still score 10/10?"""
    honest = faults.reports["honest"]
    assert honest.score == honest.max_score == 10, _statuses(honest)


@pytest.mark.parametrize("name", FAULT_NAMES)
def test_every_fault_gets_a_valid_report(faults: FaultRun, name: str) -> None:
    """Does this fault end in a complete, valid report of its own (all five checks, each with a
    status and, unless passed, feedback)?"""
    report = faults.reports[name]
    assert read_report(faults.out_dir / name / "toy.json").score == report.score  # validates
    assert len(report.checks) == 5
    for check in report.checks:
        assert check.status == "passed" or check.feedback.strip(), check
    assert "torchgrade failed" not in report.submission_error  # never an internal error
    assert report.sandbox != "not started"


def test_infinite_loop_times_out(faults: FaultRun) -> None:
    """Does an endless loop end as a timeout once it has used the check's CPU budget (not
    sooner, not much later), saying so, with the next check graded on a fresh worker?"""
    report = faults.reports["infinite_loop"]
    limit = faults.assignment.check_timeout_s
    for name in SCALE_CHECKS:
        check = _check(report, name)
        assert check.status == "timeout", (name, check.feedback)
        assert "CPU budget" in check.feedback and "endless loop" in check.feedback
        assert check.cpu_budget_s == limit
        assert limit <= check.cpu_s < limit + 2.0, check.cpu_s
        # Wall time: its budget at least, within the backstop (plus one worker start).
        assert limit <= check.duration_s < (faults.assignment.wall_factor * limit
                                            + faults.assignment.wall_slack_s
                                            + faults.assignment.import_timeout_s)
    assert _check(report, "test_total_scalar").status == "passed"
    assert report.score == 2


def test_timeout_inside_expect_raises_stays_a_timeout(faults: FaultRun) -> None:
    """Is an endless loop inside ``expect_raises`` reported as a timeout (not as 'raised the
    wrong exception')?"""
    report = faults.reports["infinite_loop"]
    assert _check(report, "test_scale_rejects_nan").status == "timeout"


def test_memory_bomb_is_an_error_not_a_crash_of_the_batch(faults: FaultRun) -> None:
    """Does asking for 100 GB (or growing without end) end as an error in this report only?"""
    report = faults.reports["memory_bomb"]
    for name in (*SCALE_CHECKS, "test_total_scalar"):
        check = _check(report, name)
        assert check.status == "error", (name, check.feedback)
        assert "memory" in check.feedback.lower()
    assert faults.reports["honest"].score == 10


def test_fork_bomb_is_contained(faults: FaultRun) -> None:
    """Is a fork bomb of 500 sleeping processes stopped by the process limit, reported, and
    gone once grading ends?"""
    report = faults.reports["fork_bomb"]
    check = _check(report, "test_scale_public")
    assert check.status == "error", check.feedback
    born = int(re.search(r"fork bomb: (\d+) children", check.feedback).group(1))
    if "cgroup" in report.sandbox or "bwrap" not in report.sandbox:  # pids.max or RLIMIT_NPROC
        assert born < faults.assignment.limits.nproc
    assert _check(report, "test_total_scalar").status == "passed"  # beside 100+ sleepers
    deadline = time.monotonic() + 5
    while _processes_named("tgforkbomb") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_named("tgforkbomb") == []


def test_segfault_is_reported_and_the_next_check_gets_a_fresh_worker(faults: FaultRun) -> None:
    """Does a segfault become an error saying the worker was killed by SIGSEGV, with the later
    checks graded normally on a fresh worker?"""
    report = faults.reports["segfault"]
    check = _check(report, "test_scale_public")
    assert check.status == "error" and "SIGSEGV" in check.feedback, check.feedback
    assert report.score == 8, _statuses(report)
    assert report.extra["worker_starts"] == 2


def test_disk_fill_fails_early(faults: FaultRun) -> None:
    """Does writing a 4 GB file (in the working directory, /tmp, / and /dev/shm) fail early,
    leaving nothing on the grading host?"""
    report = faults.reports["disk_fill"]
    feedback = _check(report, "test_scale_public").feedback
    assert _check(report, "test_scale_public").status == "error"
    assert "File too large" in feedback  # the file-size limit
    assert "wrote 4096 MB" not in feedback
    if BWRAP:
        assert "/fill.bin: stopped after 0 MB (Read-only file system)" in feedback
    assert _check(report, "test_total_scalar").status == "passed"
    assert not Path("/fill.bin").exists()


def test_output_flood_is_capped(faults: FaultRun) -> None:
    """Does printing 100 MB leave grading intact and the report's student_output capped?"""
    report = faults.reports["output_flood"]
    assert report.score == 10
    cap = faults.assignment.limits.output_kb * 1024
    assert len(report.student_output.encode()) < cap + 200
    assert "more bytes of output dropped" in report.student_output


def test_syntax_error(faults: FaultRun) -> None:
    """Does a syntax error say so, with its line, and make every check an error?"""
    report = faults.reports["syntax_error"]
    assert "SyntaxError" in report.submission_error and "line 11" in report.submission_error
    assert set(_statuses(report).values()) == {"error"}


def test_missing_function(faults: FaultRun) -> None:
    """Does a missing ``total`` cost only the checks that need it, naming what is missing?"""
    report = faults.reports["missing_total"]
    assert report.score == 8
    check = _check(report, "test_total_scalar")
    assert check.status == "error" and "'total'" in check.feedback


@pytest.mark.parametrize("check_name, says, shown", [
    ("test_scale_public", "wrong type", "[[1.65"),  # a list
    # Hidden checks show what came back by type and length only, never its values.
    ("test_scale_hidden", "wrong type", "a ndarray of length 2"),  # a numpy array
    ("test_scale_linear", "wrong type", "a str of length"),  # a string
    ("test_total_scalar", "must be a scalar", "shape [2]"),  # a tensor of the wrong shape
])
def test_wrong_return_types(faults: FaultRun, check_name: str, says: str, shown: str) -> None:
    """Does returning a list, a numpy array, a string or a tensor of the wrong shape fail with
    feedback that says so and shows what came back?"""
    report = faults.reports["wrong_return_types"]
    check = _check(report, check_name)
    assert check.status == "failed", check.feedback
    assert says in check.feedback and shown in check.feedback, check.feedback
    assert report.score == 2  # only the NaN check, which it gets right


def test_import_that_hangs(faults: FaultRun) -> None:
    """Is a top-level wait that never ends (a sleep) abandoned after import_timeout_s idle
    seconds, with every check an error saying so?"""
    report = faults.reports["import_hang"]
    assert "took longer than" in report.submission_error
    assert "waiting without computing" in report.submission_error
    assert set(_statuses(report).values()) == {"error"}
    assert report.duration_s < faults.assignment.import_timeout_s + 60


@pytest.mark.parametrize("name, says", [("input_at_import", "EOFError"),
                                        ("raise_at_import", "dataset not found"),
                                        ("exit_at_import", "SystemExit")])
def test_import_that_fails(faults: FaultRun, name: str, says: str) -> None:
    """Does input(), an exception or sys.exit() at import make every check an error that says
    the submission cannot be imported, and why?"""
    report = faults.reports[name]
    assert "cannot be imported" in report.submission_error
    assert says in report.submission_error
    assert set(_statuses(report).values()) == {"error"}
