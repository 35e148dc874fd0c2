"""Adversarial submissions, graded for real: can a submission get marks it does not deserve?

Every file in ``tests/submissions/attacks/`` is a toy submission whose maths is wrong (zeros)
and which tries to win marks some other way: forging pytest's reports, planting a conftest,
monkeypatching comparisons, lying tensors, reading the caller's frame or the hidden files,
killing the grader, writing fake reports, the network, forged protocol frames... Each file's
docstring says what it tries. All of them are graded in ONE batch (``jobs=2``), together with an
honest copy of the reference, exactly as ``torchgrade grade`` would; then one small test per
attack asks its question of the reports and of the host.

Attacks that act outside their own process (killing every process they can see, writing
wherever they can reach...) are only graded when bubblewrap works here: without it they could
harm the machine running the tests, so their tests skip with the reason.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import site
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

import torchgrade
from torchgrade.assignment import load
from torchgrade.batch import BatchResult, grade_batch
from torchgrade.isolation import Limits, bwrap_available
from torchgrade.isolation import template as worker_template
from torchgrade.report import Report, read_report
from torchgrade.runner import Options

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
COURSE = HERE / "toy_course"
ATTACKS = HERE / "submissions" / "attacks"
ATTACK_NAMES = sorted(p.stem for p in ATTACKS.glob("*.py"))
MARKER = "TORCHGRADE-ATTACK-MARKER"
SECRET_ENV = "TORCHGRADE_ATTACK_SECRET"
PWNED = "torchgrade-attack-pwned"
CHECKS = {"test_scale_public", "test_scale_hidden", "test_scale_linear",
          "test_scale_rejects_nan", "test_total_scalar"}
# Attacks that only touch their own process: safe to grade even where bubblewrap cannot run.
SAFE_WITHOUT_BWRAP = {
    "forge_gc_reports", "pytest_hooks", "monkeypatch_compare", "lying_tensor", "frame_peek",
    "gc_reference_hunt", "exit_midcall", "mutate_inputs", "fake_output", "oversized_frame",
    "pickle_payload", "huge_return", "hostile_text", "conftest_shipped", "undecodable_frame",
}
NO_BWRAP = "bubblewrap cannot create its namespaces here: attacks that reach outside their " \
           "own process are not graded, and what they test is not guaranteed"
BWRAP = bwrap_available()


class TcpTrap:
    """A TCP (and UDP) server on 127.0.0.1 that records every connection or datagram."""

    def __init__(self) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.settimeout(0.2)
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True),
                         threading.Thread(target=self._receive, daemon=True)]
        for t in self._threads:
            t.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.tcp.accept()
            except OSError:
                continue
            self.seen.append(f"tcp from {peer}")
            conn.close()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65536)
            except OSError:
                continue
            self.seen.append(f"udp from {peer}: {data[:50]!r}")

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self.tcp.close()
        self.udp.close()


@dataclasses.dataclass
class AttackRun:
    batch: BatchResult
    reports: dict[str, Report]
    names: list[str]
    submissions: Path
    staged: set[Path]  # every file the test put under submissions/
    out_dir: Path
    trap: TcpTrap
    secret: str
    parent_pid: int
    wall_s: float


def _stage(submissions: Path, name: str, source: Path, port: int) -> None:
    folder = submissions / name
    folder.mkdir(parents=True)
    text = source.read_text(encoding="utf-8")
    if name == "network":
        text = text.replace("PORT = 47123", f"PORT = {port}")
    (folder / "toy.py").write_text(text, encoding="utf-8")
    extras = ATTACKS / f"{name}.files"
    if extras.is_dir():  # e.g. a conftest.py shipped next to the submission
        for extra in extras.iterdir():
            shutil.copyfile(extra, folder / extra.name.removesuffix(".txt"))


@pytest.fixture(scope="module")
def attacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AttackRun]:
    root = tmp_path_factory.mktemp("attacks")
    submissions, out_dir = root / "submissions", root / "reports"
    names = [n for n in ATTACK_NAMES if BWRAP or n in SAFE_WITHOUT_BWRAP]
    trap = TcpTrap()
    for name in names:
        _stage(submissions, name, ATTACKS / f"{name}.py", trap.port)
    _stage(submissions, "honest", COURSE / "solutions" / "toy" / "toy.py", trap.port)
    secret = secrets.token_hex(16)
    old = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = secret  # the grader process inherits it; no worker may see it
    staged = {p for p in submissions.rglob("*") if p.is_file()}
    parent_pid = os.getppid()
    started = time.monotonic()
    try:
        batch = grade_batch(load("toy", COURSE), submissions, out_dir, options=Options(),
                            jobs=2, students=[*names, "honest"], use_cache=False)
    finally:
        if old is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = old
    wall = time.monotonic() - started
    time.sleep(1.0)  # a straggler (a daemon, a late write) has a moment to show itself
    yield AttackRun(batch, {r.student: r for r in batch.reports}, names, submissions, staged,
                    out_dir, trap, secret, parent_pid, wall)
    trap.close()


def _report(run: AttackRun, name: str) -> Report:
    if name not in run.reports:
        pytest.skip(f"{name} was not graded: {NO_BWRAP}")
    return run.reports[name]


def _statuses(report: Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def _feedback(report: Report, check: str) -> str:
    return next(c.feedback for c in report.checks if c.name == check)


def _files_with_marker(*roots: Path, depth: int = 99) -> list[str]:
    """Files under ``roots`` (to ``depth`` levels) whose first 64 KB hold the attack marker."""
    found = []
    for top in roots:
        if not top.is_dir():
            continue
        base = len(top.parts)
        for dirpath, dirnames, filenames in os.walk(top):
            if len(Path(dirpath).parts) - base >= depth:
                dirnames.clear()
            for f in filenames:
                path = Path(dirpath, f)
                try:
                    with path.open("rb") as fh:
                        if MARKER.encode() in fh.read(65536):
                            found.append(str(path))
                except OSError:
                    pass
    return found


def _no_forged_files(run: AttackRun) -> None:
    """Nothing with the attack marker in the reports, /tmp, or new beside the submissions."""
    assert _files_with_marker(run.out_dir) == []
    assert _files_with_marker(Path("/tmp"), depth=1) == []
    now = {p for p in run.submissions.rglob("*") if p.is_file()}
    assert now - run.staged == set()


def _processes_named(comm: str) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() == comm:
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


# -- the batch as a whole ------------------------------------------------------------------------
def test_honest_submission_in_the_same_batch_gets_full_marks(attacks: AttackRun) -> None:
    """Does an honest submission graded alongside every attack still score 10/10?"""
    honest = attacks.reports["honest"]
    assert honest.score == honest.max_score == 10, _statuses(honest)
    if BWRAP:
        assert honest.sandbox.startswith("bwrap"), honest.sandbox
    # Where the worker template runs, every attack here was graded by workers forked from it.
    if BWRAP and not worker_template.unavailable_why():
        assert all("+template+" in r.sandbox for r in attacks.reports.values()), \
            {n: r.sandbox for n, r in attacks.reports.items()}


def test_every_student_has_a_valid_report_file_and_a_csv_row(attacks: AttackRun) -> None:
    """Does the batch finish with a valid report on disk for every student, whatever they did?"""
    students = {*attacks.names, "honest"}
    assert set(attacks.reports) == students
    for name in students:
        on_disk = read_report(attacks.out_dir / name / "toy.json")  # validates
        assert on_disk.score == attacks.reports[name].score
        assert on_disk.sandbox == attacks.reports[name].sandbox
    csv = attacks.batch.csv_path.read_text(encoding="utf-8")
    for name in students:
        assert name in csv


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_earns_nothing(attacks: AttackRun, name: str) -> None:
    """Does this attack (whose maths is wrong) score zero, with all five checks accounted for
    by a grader that finished normally?"""
    report = _report(attacks, name)
    assert report.score == 0, {c.name: (c.status, c.feedback[:200]) for c in report.checks}
    assert report.max_score == 10
    assert _statuses(report).keys() == CHECKS
    assert "passed" not in _statuses(report).values()
    assert "grader_log" not in report.extra  # the grader process reached its end
    if BWRAP:
        assert report.sandbox.startswith("bwrap+"), report.sandbox


def test_the_test_process_and_its_parent_are_alive(attacks: AttackRun) -> None:
    """Can a submission kill the batch, the test run or the process that started it?"""
    assert os.getppid() == attacks.parent_pid  # not re-parented: the parent still lives
    os.kill(attacks.parent_pid, 0)


# -- forging results -----------------------------------------------------------------------------
def test_forging_pytest_reports_through_gc(attacks: AttackRun) -> None:
    """Can a submission forge a pytest report through gc?"""
    report = _report(attacks, "forge_gc_reports")
    assert set(_statuses(report).values()) == {"failed"}
    # Its own process holds no pytest object at all to forge.
    assert "pytest objects seen: []" in report.student_output


def test_defining_pytest_hooks(attacks: AttackRun) -> None:
    """Can a submission act as a pytest plugin (pytest_runtest_makereport, a plugin manager
    found through gc) and rewrite the grader's reports?"""
    report = _report(attacks, "pytest_hooks")
    assert set(_statuses(report).values()) == {"failed"}
    assert "registered into no plugin manager" in report.student_output


def test_conftest_planted_at_import(attacks: AttackRun) -> None:
    """Can a submission plant a conftest.py next to itself, in its working directory or in the
    grader's folders and their parents?"""
    report = _report(attacks, "conftest_inject")
    assert report.score == 0
    course_and_parents = [COURSE / "graders" / "toy", COURSE / "graders", COURSE,
                          *COURSE.parents]
    planted = [str(d / n) for d in course_and_parents for n in ("conftest.py", "pytest.ini")
               if MARKER in _read(d / n)]
    assert planted == []
    _no_forged_files(attacks)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def test_conftest_shipped_in_the_student_folder(attacks: AttackRun) -> None:
    """Does a conftest.py (or pytest.ini, sitecustomize.py) shipped beside the submission
    change how the grader runs?"""
    folder = attacks.submissions / "conftest_shipped"
    assert {"conftest.py", "pytest.ini", "sitecustomize.py"} <= {p.name for p in
                                                                 folder.iterdir()}
    report = _report(attacks, "conftest_shipped")
    assert set(_statuses(report).values()) == {"failed"}  # every check ran, none was dropped


def test_fake_report_files(attacks: AttackRun) -> None:
    """Can a submission write report files (toy.json, results.json, results.jsonl, a CSV) into
    the reports folder, /tmp, or anywhere else the grader reads?"""
    report = _report(attacks, "fake_report_files")
    assert report.score == 0
    assert report.sandbox != MARKER
    _no_forged_files(attacks)
    for folder in attacks.out_dir.iterdir():
        if folder.is_dir():
            assert not {"results.jsonl", "toy.csv"} & {p.name for p in folder.iterdir()}
    assert read_report(attacks.out_dir / "fake_report_files" / "toy.json").score == 0


def test_printing_fake_scores(attacks: AttackRun) -> None:
    """Is anything a submission prints ("10 passed", a JSON report, plugin events) ever read as
    a score?"""
    report = _report(attacks, "fake_output")
    assert set(_statuses(report).values()) == {"failed"}
    assert "10 passed" in report.student_output  # kept for the report, never parsed


def test_forged_protocol_frames(attacks: AttackRun) -> None:
    """Can a submission forge "success" replies on the worker's protocol pipes?"""
    report = _report(attacks, "forge_protocol_frame")
    assert report.score == 0
    # A forged frame says no more than a return value could: no check passed because of one.
    assert "passed" not in _statuses(report).values()


def test_oversized_frame_is_refused_before_buffering(attacks: AttackRun) -> None:
    """Can a forged frame announcing gigabytes make the grader buffer them (and run the grading
    host out of memory)?"""
    report = _report(attacks, "oversized_frame")
    for name in ("test_scale_public", "test_total_scalar"):
        # An error at once (refused as announced), not a timeout while reading gigabytes.
        assert _statuses(report)[name] == "error", _feedback(report, name)
        assert "too large" in _feedback(report, name)
    assert _statuses(report)["test_scale_hidden"] == "failed"  # a fresh worker, then zeros


def test_undecodable_frame_is_an_error_at_once(attacks: AttackRun) -> None:
    """Can a frame that parses but cannot be decoded (a tensor on cuda:999, a record whose
    fields are a list) stall the grader until the check's time limit?"""
    report = _report(attacks, "undecodable_frame")
    for name in ("test_scale_public", "test_total_scalar"):
        assert _statuses(report)[name] == "error", _feedback(report, name)
        assert "malformed message" in _feedback(report, name)


def test_huge_or_deep_return_values(attacks: AttackRun) -> None:
    """Do a 100 MB string, a list nested 100,000 deep and a 1.2 GB tensor end as errors in this
    report (not a crash, a hang or an exhausted grader)?"""
    report = _report(attacks, "huge_return")
    statuses = _statuses(report)
    assert statuses["test_scale_public"] == "error"
    assert "too large to send" in _feedback(report, "test_scale_public")
    assert statuses["test_scale_hidden"] == "error"
    assert "nested too deeply" in _feedback(report, "test_scale_hidden")
    assert statuses["test_total_scalar"] == "error"
    assert "too large to send" in _feedback(report, "test_total_scalar")
    assert Limits().reply_mb * 2**20 < 1.2e9


def test_hostile_text_cannot_break_the_report_writers(attacks: AttackRun) -> None:
    """Can an exception message with lone surrogates, NUL, ANSI escapes, <script> and ]]> break
    the HTML, JUnit or JSON writers (and with them the batch)?"""
    report = _report(attacks, "hostile_text")
    assert report.score == 0
    assert "Hostile<script>Error" in _feedback(report, "test_scale_public")
    folder = attacks.out_dir / "hostile_text"
    html = (folder / "toy.html").read_text(encoding="utf-8")  # valid UTF-8
    assert "<script>" not in html and "&lt;script&gt;" in html
    ET.parse(folder / "toy.junit.xml")  # well-formed XML
    for check in report.checks:
        check.feedback.encode("utf-8")  # no lone surrogate survived the boundary


# -- comparisons and values that lie -------------------------------------------------------------
def test_monkeypatching_comparisons_and_builtins(attacks: AttackRun) -> None:
    """Can a submission monkeypatch torch.allclose/isclose/testing.assert_close, math.isclose or
    builtins so that the grader's comparisons always agree?"""
    report = _report(attacks, "monkeypatch_compare")
    assert set(_statuses(report).values()) == {"failed"}
    assert "wrong values" in _feedback(report, "test_scale_public")


def test_lying_tensor_subclass(attacks: AttackRun) -> None:
    """Can a tensor subclass whose __torch_function__ and __eq__ always say "equal" (or which
    claims to be torch.Tensor itself) cross into the grader?"""
    report = _report(attacks, "lying_tensor")
    assert report.score == 0
    # Both subclasses are refused at the worker's side of the boundary with an error that says
    # what to return instead; neither the object nor its lying methods reach the grader.
    for name in ("test_scale_public", "test_total_scalar"):
        assert _statuses(report)[name] == "error"
        assert "tensor subclass" in _feedback(report, name)
        assert "return a plain torch.Tensor" in _feedback(report, name)


def test_pickle_payload_never_runs_in_the_grader(attacks: AttackRun) -> None:
    """Does anything a submission returns get unpickled (running its __reduce__) in the
    grader?"""
    report = _report(attacks, "pickle_payload")
    assert report.score == 0
    # The tensor subclass with the __reduce_ex__ payload is refused by name, never pickled...
    assert "tensor subclass (EvilTensor) cannot be sent" in _feedback(report, "test_scale_public")
    # ...and the dict with the object array and the pickled bytes is never turned back into
    # objects: the worker answers that it is no tensor to differentiate.
    assert _statuses(report)["test_total_scalar"] == "error"
    assert "got dict" in _feedback(report, "test_total_scalar")
    assert sorted(Path("/tmp").glob(f"{PWNED}*")) == []


def test_mutating_inputs_in_place(attacks: AttackRun) -> None:
    """Can a submission zero its inputs in place so that the grader compares zeros with
    zeros?"""
    report = _report(attacks, "mutate_inputs")
    assert set(_statuses(report).values()) == {"failed"}
    assert "wrong values" in _feedback(report, "test_scale_hidden")


# -- reaching into the grader --------------------------------------------------------------------
def test_reading_the_callers_frame(attacks: AttackRun) -> None:
    """Can a submission read the expected value out of the caller's frame (sys._getframe)?"""
    report = _report(attacks, "frame_peek")
    assert "found expected: False" in report.student_output
    assert "found expected: True" not in report.student_output
    assert "test_scale" not in report.student_output  # no grader frame was ever above it


def test_hunting_the_reference_through_gc(attacks: AttackRun) -> None:
    """Can a submission find the reference solution through gc.get_objects() or
    sys.modules?"""
    report = _report(attacks, "gc_reference_hunt")
    assert "reference found: False" in report.student_output
    assert "reference found: True" not in report.student_output


def test_reading_hidden_files_and_secrets(attacks: AttackRun) -> None:
    """Can a submission find the hidden grader, the reference solution or the grader's
    environment on disk or under /proc?"""
    report = _report(attacks, "read_hidden_files")
    assert report.score == 0
    leaks = [line for line in report.student_output.splitlines() if line.startswith("LEAK")]
    assert leaks == []
    assert attacks.secret not in report.student_output
    assert "read_hidden_files: listed" in report.student_output  # it did look


def test_exiting_mid_call(attacks: AttackRun) -> None:
    """Does os._exit(0) in the middle of a call look like success?"""
    report = _report(attacks, "exit_midcall")
    for check in report.checks:
        assert check.points == 0
        if check.name != "test_scale_rejects_nan":
            # Each check restarts the worker; the restart's import is not the check's time.
            assert check.status == "error", (check.name, check.feedback)
            assert "exited with status 0" in check.feedback
    assert report.extra["worker_starts"] >= len(CHECKS)


def test_killing_the_parent_and_every_visible_process(attacks: AttackRun) -> None:
    """Can a submission kill the grader (its parent, its process group, PID 1) or every process
    it can see under /proc (and kill(-1))?"""
    report = _report(attacks, "kill_processes")
    assert set(_statuses(report).values()) == {"failed"}  # the grader finished every check
    assert "kill_processes: parent" in report.student_output  # it did try
    assert attacks.reports["honest"].score == 10
    os.kill(attacks.parent_pid, 0)


def test_no_network(attacks: AttackRun) -> None:
    """Can a submission reach a server on 127.0.0.1 (TCP or UDP) or resolve a host name?"""
    report = _report(attacks, "network")
    assert attacks.trap.seen == []
    assert "CONNECTED" not in report.student_output
    assert "network: tcp" in report.student_output  # it did try


def test_atexit_and_signal_handlers(attacks: AttackRun) -> None:
    """Can atexit, excepthook or signal handlers (ignoring SIGTERM...) forge results when the
    worker is stopped, or keep it from stopping?"""
    report = _report(attacks, "atexit_signals")
    assert set(_statuses(report).values()) == {"failed"}
    _no_forged_files(attacks)


def test_daemon_outliving_the_worker(attacks: AttackRun) -> None:
    """Can a double-forked daemon outlive the worker and write reports later?"""
    report = _report(attacks, "daemon_survivor")
    assert report.score == 0
    deadline = time.monotonic() + 5
    while _processes_named("tgattackdaemon") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_named("tgattackdaemon") == []
    _no_forged_files(attacks)


def test_poisoning_site_packages_and_the_engine(attacks: AttackRun) -> None:
    """Can a submission plant a .pth, sitecustomize.py or a module in the grader's Python or in
    the torchgrade package, to run code in the next grader?"""
    _report(attacks, "poison_site_packages")
    engine = Path(torchgrade.__file__).resolve().parent
    dirs = {Path(p) for p in sys.path if p} | {Path(p) for p in site.getsitepackages()}
    planted = [d / n for d in dirs for n in ("torchgrade_attack.pth", "sitecustomize.py",
                                             "usercustomize.py") if MARKER in _read(d / n)]
    planted += [engine / n for n in ("_attack_marker.py", "conftest.py")
                if MARKER in _read(engine / n)]
    assert planted == []


# -- the weaker level ----------------------------------------------------------------------------
def test_without_bwrap_the_process_boundary_still_holds(tmp_path: Path) -> None:
    """With sandbox="none" (rlimits, no namespaces), does the process boundary alone still stop
    forging pytest reports through gc, and does the report say which level ran?

    What "none" no longer guarantees (no view of graders/, no network, no signals to the
    grader, a private /tmp) is what the bwrap-only attacks above test."""
    submissions = tmp_path / "submissions"
    _stage(submissions, "forge_gc_reports", ATTACKS / "forge_gc_reports.py", 0)
    batch = grade_batch(load("toy", COURSE), submissions, tmp_path / "reports",
                        options=Options(sandbox="none"), jobs=1, use_cache=False)
    (report,) = batch.reports
    assert report.score == 0, _statuses(report)
    assert set(_statuses(report).values()) == {"failed"}
    assert "pytest objects seen: []" in report.student_output
    assert "bwrap" not in report.sandbox and "rlimits" in report.sandbox, report.sandbox
    on_disk = read_report(tmp_path / "reports" / "forge_gc_reports" / "toy.json")
    assert on_disk.sandbox == report.sandbox


ANCESTOR_CONFTEST = """\
import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    call.excinfo = None  # every check "passes"
    return (yield)
"""


def test_conftest_in_an_ancestor_of_the_grader_folder_is_ignored(tmp_path: Path) -> None:
    """If a conftest.py ever landed in an ancestor of graders/<name>/ (a worker without bwrap
    runs with the grader's rights), would the grader load it and pass every check?"""
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    for folder in (course, course / "graders"):
        (folder / "conftest.py").write_text(ANCESTOR_CONFTEST, encoding="utf-8")
    submissions = tmp_path / "submissions"
    _stage(submissions, "monkeypatch_compare", ATTACKS / "monkeypatch_compare.py", 0)
    batch = grade_batch(load("toy", course), submissions, tmp_path / "reports",
                        options=Options(), jobs=1, use_cache=False)
    assert batch.reports[0].score == 0, _statuses(batch.reports[0])
