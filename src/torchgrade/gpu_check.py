"""``torchgrade gpu-check``: prove the gpu profile on a machine with CUDA, in one command.

Why it exists: a GPU is at hand only now and then, for minutes, so the GPU path must prove
itself in one short command whenever one is. For every assignment with GPU checks (those
declared for ``gpu`` alone) it grades, exactly as students are graded, the reference (which
must pass them), the stub (which must fail them) and the rubric's wrong example
(``[profiles.gpu] check_example``, from ``examples/<name>/``: it must fail them), and records
per check the metric, the threshold, the time and the CPU seconds (``checks.measured``). The
result goes to ``benchmarks/gpu-<date>.json`` (schema ``torchgrade.gpu_check/1``).

``smoke=True`` runs the same gradings under ``gpu_smoke`` (the GPU checks on the CPU at the
rubric's tiny sizes): what CI runs, and how the command itself is tried where there is no GPU.
``seeds`` calibrates: every seed key of the gpu tables (``seed``, ``*_seed``) is shifted by
each offset in a copy of the course, and the reference and the wrong example are graded
again, so that the margins across seeds can be read off the JSON.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torchgrade
from torchgrade.assignment import Assignment, available, load
from torchgrade.report import KINDS, Report, atomic_write_text

SCHEMA = "torchgrade.gpu_check/1"
Role = Literal["reference", "stub", "wrong"]
# Modules the grading path itself needs (graders, fixtures, the report page); a course's own
# needs show up as a named missing module in the check that needs it.
GRADING_MODULES = ("torch", "numpy", "safetensors", "pytest", "hypothesis", "jinja2")


class NoCuda(RuntimeError):
    """The gpu profile cannot run here: no CUDA device (the message says why)."""


@dataclasses.dataclass(frozen=True)
class Subject:
    """One submission to grade: an assignment's reference, stub or wrong example."""

    assignment: str
    role: Role
    example: str  # the example's folder name ("" for the reference)
    file: Path
    seed_offset: int = 0

    @property
    def label(self) -> str:
        seed = f" seed+{self.seed_offset}" if self.seed_offset else ""
        return f"{self.assignment} {self.role}" + (
            f" ({self.example})" if self.role == "wrong" else "") + seed


@dataclasses.dataclass(frozen=True)
class Row:
    """What one GPU check gave one subject, and whether that is what it should give."""

    assignment: str
    role: Role
    example: str
    seed_offset: int
    check: str
    status: str
    points: float
    max_points: float
    duration_s: float  # wall-clock seconds of the check, grader and worker
    cpu_s: float  # CPU seconds of the student's code in the check
    cpu_budget_s: float
    measured: tuple[dict[str, Any], ...]  # checks.measured records: metric, value, threshold
    feedback: str  # the check's feedback when it did not pass (cut short)
    verdict: Literal["ok", "BAD"]
    why: str  # what was expected, when the verdict is BAD
    sandbox: str
    grading_s: float  # the whole grading of the subject (worker start, data, all checks)


@dataclasses.dataclass(frozen=True)
class Result:
    profile: str
    environment: dict[str, Any]
    rows: tuple[Row, ...]
    skipped: tuple[tuple[str, str], ...]  # (assignment, why)
    duration_s: float
    jobs: int
    seeds: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.verdict == "ok" for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "profile": self.profile, "ok": self.ok,
                "environment": self.environment, "duration_s": round(self.duration_s, 1),
                "jobs": self.jobs, "seeds": list(self.seeds),
                "skipped": [{"assignment": a, "why": w} for a, w in self.skipped],
                "rows": [dataclasses.asdict(r) | {"measured": list(r.measured)}
                         for r in self.rows]}


def cuda_status() -> tuple[bool, str]:
    """(whether CUDA can run here, a one-line description of the device or of why not)."""
    import torch

    built = torch.version.cuda
    if not built:
        return False, (f"torch {torch.__version__} is a CPU-only build (no CUDA); "
                       "this machine cannot run the gpu profile")
    try:
        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0)
            count = torch.cuda.device_count()
            return True, (f"{count} x {name}, torch {torch.__version__} (CUDA {built})")
    except Exception as exc:  # noqa: BLE001 - a broken driver is reported, not raised
        return False, f"torch {torch.__version__} (CUDA {built}) cannot use CUDA: {exc}"
    return False, (f"torch {torch.__version__} is built with CUDA {built}, but no CUDA device "
                   "is visible (no NVIDIA GPU, no driver, or CUDA_VISIBLE_DEVICES hides it)")


def missing_modules(names: Sequence[str] = GRADING_MODULES) -> list[str]:
    import importlib.util

    return [n for n in names if importlib.util.find_spec(n) is None]


def gpu_checks(assignment: Assignment) -> list[str]:
    """The checks declared for the gpu profile alone, read from the grader's source."""
    from torchgrade.budgets import training_checks

    return [c.name for c in training_checks(assignment) if tuple(c.profiles) == ("gpu",)]


def subjects(assignment: Assignment, profile: str, seed_offset: int = 0,
             stub: bool = True) -> tuple[list[Subject], str]:
    """The submissions graded for ``assignment`` (reference, stub, wrong example) and a note
    on any that is missing (empty when all are there)."""
    out = [Subject(assignment.name, "reference", "", assignment.solution_file, seed_offset)]
    notes = []
    if stub:
        out.append(Subject(assignment.name, "stub", "stub", assignment.stub_file, seed_offset))
    example = str(assignment.table(profile).get("check_example", ""))
    file = assignment.root / "examples" / assignment.name / example / f"{assignment.module}.py"
    if example and file.is_file():
        out.append(Subject(assignment.name, "wrong", example, file, seed_offset))
    else:
        notes.append(f"no wrong example ([profiles.gpu] check_example = {example!r}: "
                     f"{'missing' if example else 'not set'})")
    return out, "; ".join(notes)


def shifted_course(root: Path, names: Sequence[str], offset: int, into: Path) -> Path:
    """A copy of the course (only ``names``) whose gpu tables' seed keys (``seed``,
    ``*_seed``) are shifted by ``offset``: another draw of the same checks, for calibration."""
    for name in names:
        for part in ("graders", "solutions", "assignments", "examples"):
            if (root / part / name).is_dir():
                shutil.copytree(root / part / name, into / part / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
        rubric = into / "graders" / name / "rubric.toml"
        rubric.write_text(shift_seeds(rubric.read_text(encoding="utf-8"), offset),
                          encoding="utf-8")
    return into


_SEED_LINE = re.compile(r"^(\s*(?:seed|\w+_seed)\s*=\s*)(-?\d+)(.*)$")


def shift_seeds(rubric: str, offset: int) -> str:
    """``rubric`` with every integer ``seed`` / ``*_seed`` key of its ``[profiles.gpu...]``
    tables (gpu_smoke too) increased by ``offset``."""
    out, in_gpu = [], False
    for line in rubric.splitlines(keepends=True):
        if line.lstrip().startswith("["):
            in_gpu = line.strip().startswith("[profiles.gpu")
        m = _SEED_LINE.match(line.rstrip("\n"))
        if in_gpu and m:
            line = f"{m.group(1)}{int(m.group(2)) + offset}{m.group(3)}\n"
        out.append(line)
    return "".join(out)


def run(root: Path, *, smoke: bool = False, names: Sequence[str] = (), jobs: int = 1,
        seeds: Sequence[int] = (0,), sandbox: str = "auto", all_checks: bool = False,
        log: Callable[[str], None] = print) -> Result:
    """Grade the reference, the stub and the wrong example of each assignment with GPU checks
    under ``gpu`` (``gpu_smoke`` with ``smoke``); raises NoCuda under ``gpu`` without CUDA."""
    from torchgrade.runner import describe_device

    profile = "gpu_smoke" if smoke else "gpu"
    started = time.monotonic()
    if not smoke:
        usable, why = cuda_status()
        if not usable:
            raise NoCuda(why)
    known = available(root)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown assignment(s) {', '.join(unknown)}; known: "
                         f"{', '.join(known)}")
    skipped: list[tuple[str, str]] = []
    chosen = []
    for name in names or known:
        a = load(name, root)
        if not gpu_checks(a):
            if names:
                skipped.append((name, "no check is declared for the gpu profile alone"))
            continue
        chosen.append(name)
    environment = _environment(profile, describe_device(profile), jobs, sandbox)
    log(f"gpu-check: profile {profile} on {environment['device']}; {len(chosen)} "
        f"assignment(s), {jobs} job(s), seeds +{', +'.join(map(str, seeds))}")
    with tempfile.TemporaryDirectory(prefix="torchgrade-gpu-check-") as tmp:
        todo: list[tuple[Subject, Assignment]] = []
        for i, offset in enumerate(seeds):
            course = root if offset == 0 else shifted_course(
                root, chosen, offset, Path(tmp) / f"seed{offset}")
            for name in chosen:
                a = load(name, course)
                subs, note = subjects(a, profile, offset, stub=i == 0)
                if note and i == 0:
                    skipped.append((name, note))
                todo += [(s, a) for s in subs]
        # The long gradings first (stubs fail fast), so that the jobs finish together.
        todo.sort(key=lambda t: t[0].role == "stub")
        rows = _grade_all(todo, profile, jobs, sandbox, all_checks, log)
    return Result(profile=profile, environment=environment, rows=tuple(rows),
                  skipped=tuple(skipped), duration_s=time.monotonic() - started, jobs=jobs,
                  seeds=tuple(seeds))


def _grade_all(todo: list[tuple[Subject, Assignment]], profile: str, jobs: int, sandbox: str,
               all_checks: bool, log: Callable[[str], None]) -> list[Row]:
    from torchgrade.runner import Options, grade_submission

    skip = () if all_checks else tuple(k for k in KINDS if k != "training")
    opts = Options(profile=profile, sandbox=sandbox, skip_kinds=skip)  # type: ignore[arg-type]
    rows: list[Row] = []
    done = 0

    def grade(item: tuple[Subject, Assignment]) -> tuple[Subject, Assignment, Report | str]:
        subject, a = item
        try:
            return subject, a, grade_submission(a, subject.file, subject.label, opts)
        except Exception as exc:  # noqa: BLE001 - a grader that breaks is a finding here
            return subject, a, f"{type(exc).__name__}: {exc}"

    graded: dict[Subject, list[Row]] = {}
    with futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in futures.as_completed([pool.submit(grade, t) for t in todo]):
            subject, a, report = future.result()
            done += 1
            graded[subject] = _rows(subject, gpu_checks(a), report)
            for line in _progress(done, len(todo), subject, graded[subject], report):
                log(line)
    roles = ("reference", "wrong", "stub")
    for subject in sorted(graded, key=lambda s: (s.assignment, s.seed_offset,
                                                 roles.index(s.role))):
        rows += graded[subject]
    return rows


def _rows(subject: Subject, checks: list[str], report: Report | str) -> list[Row]:
    base = {"assignment": subject.assignment, "role": subject.role, "example": subject.example,
            "seed_offset": subject.seed_offset}
    if isinstance(report, str):  # the grading itself broke
        return [Row(**base, check=name, status="error", points=0.0, max_points=0.0,
                    duration_s=0.0, cpu_s=0.0, cpu_budget_s=0.0, measured=(),
                    feedback=report[:2000], verdict="BAD",
                    why=f"the grading broke: {report[:300]}", sandbox="", grading_s=0.0)
                for name in checks]
    by_name = {c.name: c for c in report.checks}
    measured = report.extra.get("measured", {})
    rows = []
    for name in checks:
        c = by_name.get(name)
        status = c.status if c is not None else "missing"
        verdict, why = _verdict(subject.role, status, c.feedback if c else "")
        rows.append(Row(
            **base, check=name, status=status, points=c.points if c else 0.0,
            max_points=c.max_points if c else 0.0, duration_s=c.duration_s if c else 0.0,
            cpu_s=c.cpu_s if c else 0.0, cpu_budget_s=c.cpu_budget_s if c else 0.0,
            measured=tuple(measured.get(name, ())),
            feedback="" if c is None or status == "passed" else c.feedback[:2000],
            verdict=verdict, why=why, sandbox=report.sandbox, grading_s=report.duration_s))
    return rows


_MISSING = re.compile(r"No module named '([\w.]+)'")


def _verdict(role: Role, status: str, feedback: str) -> tuple[Literal["ok", "BAD"], str]:
    missing = _MISSING.search(feedback)
    if missing:
        return "BAD", (f"needs the module {missing.group(1)!r}, not installed here (bring its "
                       "wheel: benchmarks/gpu_check.md)")
    if status in ("skipped", "infrastructure", "missing"):
        return "BAD", f"not graded ({status}): {feedback.splitlines()[0] if feedback else ''}"
    if role == "reference":
        return ("ok", "") if status == "passed" else (
            "BAD", "the reference must pass: a threshold above what it reaches, or a broken "
            "check")
    if status == "passed":
        return "BAD", (f"the {role} must fail" + (
            ": the threshold does not separate it from the reference" if role == "wrong"
            else ""))
    return "ok", ""


def _progress(done: int, total: int, subject: Subject, rows: list[Row],
              report: Report | str) -> list[str]:
    took = f"{report.duration_s:.1f} s" if isinstance(report, Report) else "broke"
    lines = [f"[{done}/{total}] {subject.label}: {took}"]
    for r in rows:
        lines.append(f"    {_symbol(r.status)} {r.check}  {_metrics(r)}"
                     + ("" if r.verdict == "ok" else f"   << {r.why}"))
    return lines


_SYMBOLS = {"passed": "PASS", "failed": "FAIL", "error": "ERR ", "timeout": "TIME",
            "skipped": "SKIP", "infrastructure": "BUSY"}


def _symbol(status: str) -> str:
    return _SYMBOLS.get(status, status[:4].upper())


def _metrics(row: Row) -> str:
    if not row.measured:
        first = row.feedback.strip().splitlines()[0] if row.feedback.strip() else ""
        return first[:110]
    parts = []
    for m in row.measured:
        op = ">=" if m.get("better") == "higher" else "<="
        parts.append(f"{m['metric']} {_num(m['value'])} ({op} {_num(m['threshold'])})")
    return "; ".join(parts)


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table_lines(result: Result) -> list[str]:
    """The summary printed at the end: one line per (subject, check), then each metric."""
    header = (f"{'assignment':<14} {'submission':<28} {'check':<31} {'status':<6} "
              f"{'wall s':>7} {'CPU s':>7} {'budget':>7}  verdict")
    lines = [header, "-" * len(header)]
    for r in result.rows:
        who = r.role + (f" {r.example}" if r.role == "wrong" else "") + (
            f" +{r.seed_offset}" if r.seed_offset else "")
        lines.append(f"{r.assignment:<14} {who:<28} {r.check:<31} {_symbol(r.status):<6} "
                     f"{r.duration_s:>7.1f} {r.cpu_s:>7.1f} {r.cpu_budget_s:>7g}  "
                     + ("ok" if r.verdict == "ok" else f"BAD: {r.why}"))
        for m in r.measured:
            op = ">=" if m.get("better") == "higher" else "<="
            extra = ", ".join(f"{k} {_num(v)}" for k, v in m.items()
                              if k not in ("metric", "value", "threshold", "better", "data"))
            lines.append(f"{'':<15}{m['metric']}: {_num(m['value'])} (threshold {op} "
                         f"{_num(m['threshold'])}; {m.get('data', '')}"
                         + (f"; {extra}" if extra else "") + ")")
    return lines


def default_path(root: Path, profile: str) -> Path:
    """``benchmarks/<profile>-<date>.json`` (``gpu-...``), numbered when it exists."""
    day = dt.date.today().isoformat()
    path = root / "benchmarks" / f"{profile}-{day}.json"
    n = 2
    while path.exists():
        path = root / "benchmarks" / f"{profile}-{day}-{n}.json"
        n += 1
    return path


def write_json(result: Result, path: Path) -> None:
    atomic_write_text(path, json.dumps(result.to_json(), indent=2) + "\n")


def _environment(profile: str, device: str, jobs: int, sandbox: str) -> dict[str, Any]:
    import torch

    from torchgrade.isolation import bwrap_available

    env: dict[str, Any] = {
        "device": device, "torch": torch.__version__, "cuda": torch.version.cuda or "",
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "torchgrade": torchgrade.__version__,
        "bubblewrap": bwrap_available(), "sandbox": sandbox,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:], "jobs": jobs,
    }
    if profile == "gpu" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                      "capability": f"{props.major}.{props.minor}",
                      "count": torch.cuda.device_count()}
    return env
