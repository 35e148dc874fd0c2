"""Grade one submission: run the grader suite in its own process and build the report.

The grader process (pytest + ``torchgrade.plugin``) is trusted; it starts the sandboxed
student worker itself. This module only launches it, enforces the wall-clock backstop of the
whole grading, and scores from the plugin's results file: every check the grader collected
appears in the report, and one that never reported scores zero with an ``error`` status, or
with ``infrastructure`` when the backstop stopped the grading (the student's work is limited
in CPU time, check by check; a grading that outlives its backstop was on an overloaded
machine, and gives and takes no points for what it could not finish).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import torchgrade
from torchgrade.assignment import Assignment
from torchgrade.isolation import TEMPLATE_ENV, Mode
from torchgrade.profiles import uses_cuda
from torchgrade.report import CheckResult, Report, points_at_stake, unresolved

Visibility = Literal["public", "all"]


class GraderError(RuntimeError):
    """The grader itself is broken (it could not collect its checks): not the student's fault."""


@dataclasses.dataclass(frozen=True)
class Options:
    profile: str = "cpu"
    visibility: Visibility = "all"
    sandbox: Mode = "auto"
    # Torch threads of the worker and the grader; None (default): the rubric's profile says
    # (Assignment.threads), the same for check, grade, audit, Docker and Ray.
    threads: int | None = None
    max_examples: int = 25  # hypothesis examples per invariant check
    # Check kinds left out of this run (e.g. ("training",) for a quick audit of mutants): the
    # report then covers fewer points, so the rubric's total is not enforced.
    skip_kinds: tuple[str, ...] = ()
    # Import the submission into the grader process: no trust boundary at all. Only for
    # measuring what the boundary costs (benchmarks/); never for grading students.
    inprocess: bool = False
    # Fork the grader process from a template that has imported torch and pytest
    # (torchgrade.forkserver); False starts `python -m pytest` afresh (benchmarks compare).
    forkserver: bool = True
    # The GPU(s) this grading may use (CUDA_VISIBLE_DEVICES of its grader and worker), set by
    # the batch under the gpu profile so that concurrent gradings get one GPU each.
    cuda_devices: str = ""
    # Fork each sandboxed worker from a template that has imported torch (and the rubric's
    # preload) once per batch, in namespaces of its own (torchgrade.isolation.template); False
    # starts every worker afresh under bubblewrap. Only with bubblewrap.
    worker_template: bool = True


def sha256_file(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def describe_device(profile: str) -> str:
    if profile == "gpu_smoke":
        return f"cpu ({platform.machine()}; gpu_smoke: the GPU checks on the CPU at smoke sizes)"
    if profile != "gpu":
        return f"cpu ({platform.machine()})"
    try:
        import torch

        if torch.cuda.is_available():
            return f"cuda ({torch.cuda.get_device_name(0)})"
    except Exception:  # noqa: BLE001 - a broken CUDA install is reported, not raised
        pass
    return "cpu (no CUDA on this runner)"


def grade_submission(assignment: Assignment, submission: Path | None, student: str,
                     options: Options = Options()) -> Report:
    """Grade ``submission`` (the student's module file, or None when it is missing)."""
    started = time.monotonic()
    submission = submission.resolve() if submission is not None else None
    run_id = ""
    if options.sandbox == "docker" and not options.inprocess:
        from torchgrade.isolation.docker import preflight

        preflight()  # no engine or no image: a clear error now, not a student's crash
        run_id = uuid.uuid4().hex
    threads = options.threads or assignment.threads(options.profile)
    with tempfile.TemporaryDirectory(prefix="torchgrade-run-") as tmp:
        tmpdir = Path(tmp)
        results = tmpdir / "results.jsonl"
        results.touch()
        cfg = {
            "assignment": assignment.name, "root": str(assignment.root),
            "submission": str(submission) if submission and submission.is_file() else None,
            "profile": options.profile, "visibility": options.visibility,
            "sandbox": options.sandbox, "threads": threads, "results": str(results),
            "max_examples": options.max_examples, "inprocess": options.inprocess,
            "skip_kinds": list(options.skip_kinds),
        }
        (tmpdir / "config.json").write_text(json.dumps(cfg))
        (tmpdir / "pytest.ini").write_text("[pytest]\n")
        log = tmpdir / "grader.log"
        timed_out = _run_grader(assignment, tmpdir, log, run_id, options.forkserver,
                                options.cuda_devices, _worker_template(assignment, options))
        events = _read_events(results)
        grader_log = log.read_text(encoding="utf-8", errors="replace")[-4000:]
    collected = next((e["checks"] for e in events if e.get("event") == "collected"), None)
    if collected is None:
        raise GraderError(f"the {assignment.name} grader did not collect its checks:\n"
                          f"{grader_log}")
    _check_total(assignment, collected, options)
    finished = next((e for e in events if e.get("event") == "finished"), {})
    outcomes = {e["name"]: e for e in events if e.get("event") == "result"}
    missing_why = (OVERLOADED_GRADING.format(s=grading_backstop_s(assignment))
                   if timed_out else "the grader recorded no result for this check")
    checks = tuple(_check_result(c, outcomes.get(c["name"]), missing_why, timed_out)
                   for c in collected)
    return Report(
        student=student, assignment=assignment.name,
        score=sum(c.points for c in checks), max_score=points_at_stake(checks),
        profile=options.profile, device=describe_device(options.profile),
        sandbox=finished.get("sandbox") or "not started", visibility=options.visibility,
        submission_sha256=sha256_file(submission), grader_version=assignment.version,
        duration_s=round(time.monotonic() - started, 3), checks=checks,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        torchgrade_version=torchgrade.__version__,
        submission_error=finished.get("submission_error", ""),
        student_output=finished.get("output", ""),
        extra={"worker_starts": finished.get("worker_starts", 0), "threads": threads,
               "budget_clock": finished.get("budget_clock", "")} | (
            {"unresolved": list(left)} if (left := unresolved(checks)) else {}) | (
            {"skipped_kinds": list(options.skip_kinds)} if options.skip_kinds else {}) | (
            # what training checks measured against their thresholds (checks.measured)
            {"measured": measured} if (measured := {
                n: e["measured"] for n, e in outcomes.items() if e.get("measured")}) else {}) | (
            # a notebook: {"cells_run": [...], "cells_left_out": [{"cell", "why"}], "notes"}
            {"notebook": finished["notebook"]} if finished.get("notebook") else {}) | (
            # what course and library code printed in the worker, apart from student_output
            # (torchgrade.worker_output)
            {"course_output": finished["course_output"]} if finished.get("course_output")
            else {}) | (
            {"grader_log": grader_log} if not finished else {}),
    )


OVERLOADED_GRADING = (
    "Not graded: the whole grading was stopped by its wall-clock backstop ({s:g} s) before "
    "this check ran or finished. The grading machine was overloaded; your code's limits are "
    "CPU time, which it had not used up. This check gives and takes no points, and is graded "
    "again.")


def grading_backstop_s(assignment: Assignment) -> float:
    """Wall-clock seconds a whole grading may take before it is stopped as overloaded."""
    return assignment.wall_factor * assignment.submission_timeout_s + assignment.wall_slack_s


def _check_total(assignment: Assignment, collected: list[dict], options: Options) -> None:
    """The CPU profile's checks must add up to the rubric's total: a check lost by a bad edit
    (or a grader file that failed to import) is a broken grader, not a lower score."""
    if options.profile != "cpu" or options.visibility != "all" or options.skip_kinds:
        return
    total = sum(float(c["points"]) for c in collected)
    if abs(total - assignment.total_points) > 1e-9:
        raise GraderError(f"the {assignment.name} grader's checks add up to {total:g} points "
                          f"but its rubric says total_points = {assignment.total_points:g}")


def _worker_template(assignment: Assignment, options: Options) -> str:
    """The socket of this process's worker template for the grading, or '' for workers
    started afresh (asked so, no bubblewrap, or the template cannot run here)."""
    if not options.worker_template or options.inprocess or options.sandbox not in ("auto",
                                                                                  "bwrap"):
        return ""
    from torchgrade.isolation.template import socket_for

    return socket_for(uses_cuda(options.profile), assignment.preload)


def _run_grader(assignment: Assignment, tmpdir: Path, log: Path, docker_run: str = "",
                forkserver: bool = True, cuda_devices: str = "",
                worker_template: str = "") -> bool:
    """Run pytest over the grader suite; True when it outlived its wall-clock backstop
    (grading_backstop_s) and was killed.

    ``docker_run`` labels the worker containers of this grading (``--sandbox docker``): any
    still there when the grader is gone (killed for time) are removed. With ``forkserver``
    the grader process is forked from a template that has imported torch and pytest already
    (torchgrade.forkserver), else started afresh (``python -m pytest``)."""
    args = [str(assignment.grader_dir), "-p", "torchgrade.plugin",
            "--tg-config", str(tmpdir / "config.json"), "-c", str(tmpdir / "pytest.ini"),
            "--rootdir", str(assignment.grader_dir), "-p", "no:cacheprovider",
            # No conftest.py above the grader's own folder is ever loaded.
            "--confcutdir", str(assignment.grader_dir),
            "--import-mode=importlib", "-q", "-W", "ignore::DeprecationWarning",
            "--tb=no", "-o", "console_output_style=classic"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1"}
    if cuda_devices:
        env["CUDA_VISIBLE_DEVICES"] = cuda_devices
    env.pop(TEMPLATE_ENV, None)
    if worker_template:
        env[TEMPLATE_ENV] = worker_template
    if docker_run:
        from torchgrade.isolation.docker import RUN_ENV, remove_containers

        env[RUN_ENV] = docker_run
    try:
        backstop = grading_backstop_s(assignment)
        if forkserver:
            return _fork_grader(args, env, tmpdir, log, backstop, assignment.preload)
        return _wait_grader(args, env, tmpdir, log, backstop)
    finally:
        if docker_run:
            remove_containers(docker_run)


def _fork_grader(args: list[str], env: dict[str, str], tmpdir: Path, log: Path,
                 timeout_s: float, preload: tuple[str, ...] = ()) -> bool:
    """The grader (pytest with ``args``) as a fork of the template that has imported torch and
    pytest already (torchgrade.forkserver); started afresh if the template cannot be used."""
    from torchgrade.forkserver import TemplateGone, run_grader

    try:
        return run_grader(args, env, tmpdir, log, timeout_s, preload)
    except TemplateGone:
        return _wait_grader(args, env, tmpdir, log, timeout_s)


def _wait_grader(args: list[str], env: dict[str, str], tmpdir: Path, log: Path,
                 timeout_s: float) -> bool:
    """The grader started afresh: ``python -m pytest ARGS``."""
    cmd = [sys.executable, "-m", "pytest", *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                cwd=str(tmpdir), start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
            return False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            return True


def _read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed grader
        if isinstance(event, dict):
            events.append(event)
    return events


def _check_result(meta: dict[str, Any], outcome: dict[str, Any] | None,
                  missing_why: str, stopped: bool = False) -> CheckResult:
    if outcome is None:
        status = "infrastructure" if stopped else "error"
        feedback, duration, cpu = missing_why, 0.0, 0.0
    else:
        status, feedback = outcome["status"], outcome["feedback"]
        duration = float(outcome.get("duration_s", 0.0))
        cpu = float(outcome.get("cpu_s", 0.0))
    max_points = float(meta["points"])
    return CheckResult(
        name=meta["name"], status=status, points=max_points if status == "passed" else 0.0,
        max_points=max_points, visibility=meta["visibility"], kind=meta["kind"],
        feedback=feedback, description=meta.get("description", ""),
        catches=meta.get("catches", ""), duration_s=duration, cpu_s=cpu,
        cpu_budget_s=float(meta.get("timeout") or 0.0))
