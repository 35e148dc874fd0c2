"""The report contract: one JSON document per (student, assignment).

Every other output (HTML, Gradescope ``results.json``, JUnit XML, the class CSV) is rendered
from this JSON, so its keys are a contract that ``tests/test_report_contract.py`` pins. Reports
are written atomically (temporary file + ``os.replace``) so a killed batch never leaves a
half-written report behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

# /2 added the "infrastructure" status and each check's cpu_s and cpu_budget_s. A /1 report
# still reads (those fields then take their defaults), so caches and old reports stay usable.
SCHEMA = "torchgrade.report/2"
READABLE_SCHEMAS = ("torchgrade.report/1", SCHEMA)

# "infrastructure": the grading machine could not run the check (it was overloaded: the
# check's wall-clock backstop ran out while the student's code was still computing within its
# CPU budget). It gives and takes no points: it counts in neither score nor max_score, the
# report lists it under extra["unresolved"], and the batch grades the submission again.
Status = Literal["passed", "failed", "error", "timeout", "skipped", "infrastructure"]
Visibility = Literal["public", "hidden"]
Kind = Literal["shape", "value", "invariant", "training", "robustness"]

STATUSES: tuple[str, ...] = get_args(Status)
VISIBILITIES: tuple[str, ...] = get_args(Visibility)
KINDS: tuple[str, ...] = get_args(Kind)


class ReportError(ValueError):
    """A report file that does not follow the schema."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of the grader."""

    name: str  # the check's pytest name, e.g. "test_closed_form_all_equal"
    status: Status
    points: float  # points earned: max_points when passed, else 0
    max_points: float
    visibility: Visibility
    kind: Kind
    feedback: str  # expected / got / hint; empty when passed
    description: str = ""  # one line saying what the check verifies
    catches: str = ""  # the mistake this check is designed to catch
    duration_s: float = 0.0  # wall-clock seconds, grader and worker together
    cpu_s: float = 0.0  # CPU seconds the student's code used in this check (the worker's)
    cpu_budget_s: float = 0.0  # the check's CPU budget for the student's code


@dataclass(frozen=True)
class Report:
    """Everything torchgrade knows about grading one submission."""

    student: str
    assignment: str
    score: float
    max_score: float
    profile: str  # "cpu" | "gpu" | "gpu_smoke" (torchgrade.profiles)
    device: str  # e.g. "cpu" or "cuda (NVIDIA H200)"
    sandbox: str  # isolation in force for the student worker, e.g. "bubblewrap+rlimits+cgroup"
    submission_sha256: str  # "" when there was no submission file
    grader_version: str
    duration_s: float
    checks: tuple[CheckResult, ...]
    created_at: str  # ISO 8601, UTC
    torchgrade_version: str
    visibility: str = "all"  # which checks ran: "public" or "all"
    # A problem with the submission as a whole (missing file, syntax error, crash on import):
    # said once here, in addition to each check's own feedback.
    submission_error: str = ""
    student_output: str = ""  # what the student's code printed, capped; never parsed
    schema: str = SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = [asdict(c) for c in self.checks]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        schema = data.get("schema") if isinstance(data, dict) else None
        if schema not in READABLE_SCHEMAS:
            raise ReportError(f"not a {SCHEMA} report (schema={schema!r})")
        try:
            checks = tuple(CheckResult(**c) for c in data["checks"])
            fields = {k: v for k, v in data.items() if k != "checks"}
            report = cls(checks=checks, **fields)
        except (KeyError, TypeError) as exc:
            raise ReportError(f"malformed report: {exc}") from exc
        report.validate()
        return report

    def validate(self) -> None:
        """Raise ReportError when the report contradicts itself."""
        for c in self.checks:
            numbers = (c.points, c.max_points)
            if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers):
                raise ReportError(f"check {c.name}: points and max_points must be numbers")
            if c.status not in STATUSES:
                raise ReportError(f"check {c.name}: unknown status {c.status!r}")
            if c.visibility not in VISIBILITIES:
                raise ReportError(f"check {c.name}: unknown visibility {c.visibility!r}")
            if c.kind not in KINDS:
                raise ReportError(f"check {c.name}: unknown kind {c.kind!r}")
            if not 0 <= c.points <= c.max_points:
                raise ReportError(f"check {c.name}: points {c.points} outside [0, {c.max_points}]")
            if c.status != "passed" and c.points != 0:
                raise ReportError(f"check {c.name}: a {c.status} check cannot earn points")
        if abs(self.score - sum(c.points for c in self.checks)) > 1e-9:
            raise ReportError("score is not the sum of the checks' points")
        if abs(self.max_score - points_at_stake(self.checks)) > 1e-9:
            raise ReportError("max_score is not the sum of the graded checks' max_points")

    @property
    def unresolved(self) -> tuple[str, ...]:
        """Checks the grading machine could not grade (overloaded): grade again."""
        return unresolved(self.checks)


def points_at_stake(checks: Iterable[CheckResult]) -> float:
    """A report's max_score: a check the machine could not grade (``infrastructure``) gives
    and takes no points."""
    return sum(c.max_points for c in checks if c.status != "infrastructure")


def unresolved(checks: Iterable[CheckResult]) -> tuple[str, ...]:
    """The checks an overloaded machine could not grade."""
    return tuple(c.name for c in checks if c.status == "infrastructure")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make reports owner-only
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_report(report: Report, path: Path) -> None:
    report.validate()
    atomic_write_text(path, json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")


def read_report(path: Path) -> Report:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or not UTF-8
        raise ReportError(f"cannot read report {path}: {exc}") from exc
    try:
        return Report.from_json(data)
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from exc
