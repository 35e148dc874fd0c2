"""Grade a folder of submissions: one report per student, whatever each submission does.

``SUBMISSIONS/<student>/<module>.py`` is graded into ``REPORTS/<student>/<assignment>.json``
plus its HTML page, Gradescope ``results.json`` and JUnit XML, then a class CSV. Submissions
are graded in parallel (each in its own grader process and sandboxed worker); a failure of
torchgrade itself on one submission is written into that student's report and never stops
the batch. Every file is written atomically. A submission the machine was too busy to grade
(a check with the ``infrastructure`` status: its wall-clock backstop ran out while the
student's code still had CPU budget) is graded again after the others, one at a time; any
still unresolved then are listed in the batch result and the class summary, and are never
cached, so the next run grades them again.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import hashlib
import os
import queue
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torchgrade
from torchgrade.assignment import Assignment
from torchgrade.render import write_class_csv, write_gradescope, write_junit, write_student_html
from torchgrade.render.summary import write_class_summary
from torchgrade.report import Report, ReportError, read_report, write_report
from torchgrade.runner import Options, grade_submission, sha256_file

INTERNAL = "torchgrade failed while grading this submission"
STUDENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


@dataclasses.dataclass(frozen=True)
class BatchResult:
    reports: tuple[Report, ...]
    csv_path: Path
    out_dir: Path
    duration_s: float
    summary_path: Path | None = None  # the class summary page (None if it failed to render)
    # Students with checks the machine could not grade even when graded again, alone.
    unresolved: tuple[str, ...] = ()
    leaderboard_path: Path | None = None  # OUT/<a>-leaderboard.html, when anything was measured


def discover(submissions: Path) -> list[str]:
    """Student folder names under ``submissions``, sorted; odd names are refused loudly."""
    if not submissions.is_dir():
        raise FileNotFoundError(f"submissions folder {submissions} does not exist")
    students = []
    for entry in sorted(submissions.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        if not STUDENT_NAME.match(entry.name):
            raise ValueError(f"student folder name {entry.name!r} is not a safe name "
                             "(letters, digits, . _ @ + -)")
        students.append(entry.name)
    return students


def submission_candidates(folder: Path, assignment: Assignment) -> list[Path]:
    """Where a student's submission may be, in the order they are looked for: their module
    (``<module>.py``), a notebook (``<assignment>.ipynb`` or ``<module>.ipynb``), or nbgrader's
    collected layout (``submitted/<student>/<assignment>/<assignment>.ipynb``, with the
    ``submitted`` folder given as the submissions folder)."""
    names = [f"{assignment.module}.py", f"{assignment.name}.ipynb", f"{assignment.module}.ipynb"]
    paths = [folder / n for n in names]
    paths += [folder / assignment.name / n for n in names]
    return list(dict.fromkeys(paths))


def find_submission(folder: Path, assignment: Assignment) -> Path | None:
    """The file graded for the student whose folder is ``folder`` (submission_candidates),
    or None: they are graded as having submitted nothing."""
    return next((p for p in submission_candidates(folder, assignment) if p.is_file()), None)


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4): this runner grades the second of four shards."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"--shard must be I/N with 1 <= I <= N (e.g. 2/4), got {text!r}")
    return int(match[1]), int(match[2])


def in_shard(student: str, shard: tuple[int, int]) -> bool:
    """Whether ``student`` belongs to ``shard`` (I, N). Decided by a hash of the name, so a
    student stays in the same shard when others are added or removed, and every student is in
    exactly one of the N shards."""
    index, count = shard
    digest = hashlib.sha256(student.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count == index - 1


def write_outputs(report: Report, out_dir: Path) -> Path:
    folder = out_dir / report.student
    path = folder / f"{report.assignment}.json"
    write_student_html(report, folder / f"{report.assignment}.html")
    write_gradescope(report, folder / "results.json")
    write_junit(report, folder / f"{report.assignment}.junit.xml")
    write_report(report, path)  # last: its presence means the student is done
    return path


def _internal_error_report(assignment: Assignment, student: str, options: Options,
                           exc: BaseException) -> Report:
    text = "".join(traceback.format_exception(exc))[-3000:]
    return Report(
        student=student, assignment=assignment.name, score=0.0, max_score=0.0,
        profile=options.profile, device="", sandbox="not started", submission_sha256="",
        grader_version=assignment.version, duration_s=0.0, checks=(),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        torchgrade_version=torchgrade.__version__, visibility=options.visibility,
        submission_error=f"{INTERNAL} (not the student's fault; please report it):\n{text}")


def grader_fingerprint(assignment: Assignment) -> str:
    """A hash of everything that decides a grade besides the submission: the grader folder
    (checks, rubric, fixtures), the reference, and the torchgrade version."""
    h = hashlib.sha256(torchgrade.__version__.encode())
    files = sorted(p for p in assignment.grader_dir.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    if assignment.solution_file.is_file():
        files.append(assignment.solution_file)
    for p in files:
        h.update(str(p.relative_to(assignment.root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def cache_key(fingerprint: str, submission: Path | None, options: Options) -> str:
    sandbox = options.sandbox
    if sandbox == "docker":  # another worker image may grade differently
        from torchgrade.isolation.docker import image_name

        sandbox += f":{image_name()}"
    parts = [fingerprint, sha256_file(submission), options.profile, options.visibility,
             sandbox, str(options.max_examples), ",".join(sorted(options.skip_kinds))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _cached(path: Path, key: str) -> Report | None:
    """The report already written for this exact submission and grader, if any."""
    if not path.is_file():
        return None
    try:
        report = read_report(path)
    except ReportError:
        return None  # unreadable: grade again (writes are atomic, so this is rare)
    return report if report.extra.get("cache_key") == key else None


def grade_one(assignment: Assignment, submissions: Path, student: str, out_dir: Path,
              options: Options, fingerprint: str | None = None,
              grade: Callable[..., Report] = grade_submission,
              note: dict[str, Any] | None = None) -> Report:
    """Grade one student, or reuse their report when neither submission nor grader changed.
    ``grade`` grades one submission (``runner.grade_submission`` here, a Ray task with
    ``ray_exec.RayExecutor.grade``); ``note`` goes into a fresh report's ``extra``."""
    submission = find_submission(submissions / student, assignment)
    key = cache_key(fingerprint, submission, options) if fingerprint else ""
    if key:
        cached = _cached(out_dir / student / f"{assignment.name}.json", key)
        if cached is not None:
            return dataclasses.replace(cached, extra={**cached.extra, "cached": True})
    try:
        report = grade(assignment, submission, student, options)
    except Exception as exc:  # noqa: BLE001 - one broken grading never stops the batch
        report = _internal_error_report(assignment, student, options, exc)
    else:
        # A report with checks left ungraded by an overloaded machine is not kept for reuse.
        extra = {**report.extra, **(note or {})}
        report = dataclasses.replace(report, extra=extra if report.unresolved else {
            **extra, "cache_key": key})
    try:
        write_outputs(report, out_dir)
    except Exception:  # noqa: BLE001 - a renderer failing on one report must not stop the batch
        write_report(report, out_dir / student / f"{assignment.name}.json")
    return report


def grade_batch(assignment: Assignment, submissions: Path, out_dir: Path, *,
                options: Options, jobs: int = 1, students: list[str] | None = None,
                progress: Callable[[int, int, Report], None] | None = None,
                use_cache: bool = True, retries: int = 2, leaderboard_names: bool = False,
                grade: Callable[..., Report] = grade_submission) -> BatchResult:
    """Grade ``students`` (default: every folder). With ``use_cache`` a student whose report
    was written for the same submission, grader and options is not graded again, so a killed
    batch resumes where it stopped and a re-run grades only what changed. A submission with
    checks the machine was too busy to grade is graded again up to ``retries`` times, alone,
    after the others. Each worker's torch threads come from the rubric (``Options.threads``),
    never from ``jobs``."""
    started = time.monotonic()
    fingerprint = grader_fingerprint(assignment) if use_cache else None
    roster = students if students is not None else discover(submissions)
    jobs = max(1, jobs)
    if options.profile == "gpu" and grade is grade_submission:
        gpus = visible_gpus()
        if gpus:  # one worker per GPU: never more gradings at once than GPUs
            jobs = min(jobs, len(gpus))
            grade = gpu_slots(grade, gpus)
    reports: list[Report] = []
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grade_one, assignment, submissions, s, out_dir, options,
                               fingerprint, grade) for s in roster]
        for fut in cf.as_completed(futures):
            report = fut.result()
            reports.append(report)
            if progress is not None:
                progress(len(reports), len(roster), report)
    for attempt in range(1, retries + 1):
        again = [r.student for r in reports if r.unresolved]
        if not again:
            break
        print(f"grading again, one at a time, {len(again)} submission(s) the machine was too "
              f"busy to grade (attempt {attempt} of {retries}): {', '.join(again)}",
              file=sys.stderr, flush=True)
        for student in again:
            report = grade_one(assignment, submissions, student, out_dir, options,
                               fingerprint, grade, note={"regraded": attempt})
            reports = [report if r.student == student else r for r in reports]
    reports.sort(key=lambda r: r.student)
    reports, board_path = _leaderboard(reports, submissions, out_dir, leaderboard_names)
    csv_path = write_class_csv(reports, out_dir / f"{assignment.name}.csv")
    summary_path: Path | None = out_dir / f"{assignment.name}-summary.html"
    try:
        write_class_summary(reports, summary_path)
    except Exception:  # noqa: BLE001 - the reports and the CSV are what must not be lost
        traceback.print_exc()
        summary_path = None
    return BatchResult(tuple(reports), csv_path, out_dir, time.monotonic() - started,
                       summary_path, tuple(r.student for r in reports if r.unresolved),
                       board_path)


def _leaderboard(reports: list[Report], submissions: Path, out_dir: Path,
                 names: bool) -> tuple[list[Report], Path | None]:
    """Rank the class on what training checks measured: each student's own ranks go into
    their report (rewritten), the tables into OUT/<a>-leaderboard.csv and .html. A failure
    here is printed and leaves the reports as they were: they must not be lost."""
    from torchgrade import leaderboard
    from torchgrade.render.leaderboard import write_leaderboard

    try:
        shown = leaderboard.display_names([r.student for r in reports], submissions, out_dir,
                                          names)
        board = leaderboard.build(reports, shown, names)
        if not board.tables:
            return reports, None
        ranked = leaderboard.apply(reports, board)
        for before, after in zip(reports, ranked, strict=True):
            if after is not before:
                write_outputs(after, out_dir)
        return ranked, write_leaderboard(board, out_dir)[1]
    except Exception:  # noqa: BLE001 - the reports are what must not be lost
        traceback.print_exc()
        return reports, None


def visible_gpus() -> list[str]:
    """The GPUs this machine lets us use: $CUDA_VISIBLE_DEVICES if set, else those
    ``nvidia-smi -L`` lists (none where there is no NVIDIA driver)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return [d.strip() for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines())
            if line.startswith("GPU ")] if out.returncode == 0 else []


def gpu_slots(grade: Callable[..., Report], gpus: list[str]) -> Callable[..., Report]:
    """``grade`` with one GPU per concurrent grading: each call takes a free GPU from
    ``gpus``, grades with ``CUDA_VISIBLE_DEVICES`` set to it and gives it back."""
    free: queue.Queue[str] = queue.Queue()
    for gpu in gpus:
        free.put(gpu)

    def graded(assignment: Assignment, submission: Path | None, student: str,
               options: Options) -> Report:
        gpu = free.get()
        try:
            return grade(assignment, submission, student,
                         dataclasses.replace(options, cuda_devices=gpu))
        finally:
            free.put(gpu)

    return graded


def _rate_eta(t0: float, done: int, total: int) -> tuple[float, float]:
    """Submissions per second since ``t0`` and the seconds left at that rate."""
    elapsed = time.monotonic() - t0
    rate = done / elapsed if elapsed > 0 else 0.0
    return rate, (total - done) / rate if rate > 0 else 0.0


def plain_progress(stream=sys.stderr) -> Callable[[int, int, Report], None]:
    """One line per finished submission, with the rate and the time left."""
    t0 = time.monotonic()

    def show(done: int, total: int, report: Report) -> None:
        rate, eta = _rate_eta(t0, done, total)
        cached = " (unchanged, report reused)" if report.extra.get("cached") else ""
        print(f"[{done}/{total}] {report.student}: {report.score:g}/{report.max_score:g}{cached} "
              f"({rate * 60:.1f}/min, ~{eta:.0f} s left)", file=stream, flush=True)

    return show


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def bar_progress(stream=sys.stderr, width: int = 24) -> Callable[[int, int, Report], None]:
    """A progress bar redrawn in place (for a terminal): done/total, rate, ETA and the last
    student graded. A submission that did not grade cleanly (an error, a crash, a timeout)
    also gets a line of its own above the bar, so it is not lost when the bar moves on."""
    t0 = time.monotonic()

    def show(done: int, total: int, report: Report) -> None:
        rate, eta = _rate_eta(t0, done, total)
        filled = width * done // max(total, 1)
        bar = "#" * filled + "." * (width - filled)
        if report.submission_error or any(c.status == "error" for c in report.checks):
            print(f"\r\033[K{report.student}: {report.score:g}/{report.max_score:g}, "
                  "did not grade cleanly (see its report)", file=stream)
        line = (f"[{bar}] {done}/{total}  {rate * 60:.1f}/min  ETA {_clock(eta)}  "
                f"last: {report.student} {report.score:g}/{report.max_score:g}")
        end = "\n" if done == total else ""
        print(f"\r\033[K{line}", end=end, file=stream, flush=True)

    return show


def progress_for(stream=None) -> Callable[[int, int, Report], None]:
    """A redrawn bar on a terminal, one plain line per submission otherwise (CI logs)."""
    stream = sys.stderr if stream is None else stream  # the stderr of now, not of import
    isatty = getattr(stream, "isatty", None)
    return bar_progress(stream) if isatty is not None and isatty() else plain_progress(stream)
