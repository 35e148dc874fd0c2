"""Where an assignment's pieces live, and its rubric (``graders/<name>/rubric.toml``).

The rubric holds what is assignment-wide: the module the student submits, the grader version,
the total points (so a check lost by accident is noticed), and the limits of the student
worker. Points, kind and visibility of each check sit on the check itself (``@check``).
Instructor input is validated with clear errors, never with ``assert``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from torchgrade.isolation import Limits


class AssignmentError(ValueError):
    """An assignment that cannot be found or whose rubric is invalid."""


@dataclasses.dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    module: str  # the student submits <module>.py
    version: str  # the grader version written into reports
    total_points: float  # the CPU profile's checks must add up to this
    root: Path  # the project root holding graders/, solutions/, assignments/
    # Budgets of student work are CPU seconds of the worker (torchgrade.cputime), never
    # wall-clock seconds: a busy machine must not change a grade.
    check_timeout_s: float  # default CPU budget of one check
    import_timeout_s: float  # CPU budget for importing the submission
    submission_timeout_s: float  # CPU budget of the student's work over the whole grading
    limits: Limits
    budgets: dict[str, dict[str, Any]]  # per profile, free-form numbers for the grader
    # [audit] mutate: the reference's top-level functions/classes whose exact behaviour the
    # checks pin, so mutants are drawn there only (empty: the whole module).
    audit_mutate: tuple[str, ...] = ()
    # [assignment] preload: modules that are slow to import (transformers; "module:attribute"
    # for a lazily loaded attribute): the grader template (torchgrade.forkserver) and the
    # worker template (torchgrade.isolation.template) import them once per batch, not once per
    # grading. Only trusted library or course code: every student worker inherits them.
    preload: tuple[str, ...] = ()
    # The wall-clock backstop of a wait for the worker: wall_factor x its CPU budget +
    # wall_slack_s. Reached while the worker computes, the machine was overloaded: an
    # infrastructure outcome (no points given or taken, graded again), never the student's.
    wall_factor: float = 5.0
    wall_slack_s: float = 30.0

    def threads(self, profile: str) -> int:
        """Torch threads of the student worker (and of the grader) under ``profile``: the
        rubric's ``[profiles.<profile>] threads``, else 1. Fixed by the rubric, never by the
        machine or ``--jobs``, so that every run computes the same numbers at the same cost."""
        return int(self.table(profile).get("threads", 1))

    def table(self, profile: str) -> dict[str, Any]:
        """The rubric's sizes and thresholds for ``profile`` (the ``budget`` fixture):
        ``[profiles.<profile>]``, or ``[profiles.gpu]`` overlaid by ``[profiles.gpu_smoke]``
        (``torchgrade.profiles``)."""
        from torchgrade.profiles import table

        return table(self.budgets, profile)

    @property
    def grader_dir(self) -> Path:
        return self.root / "graders" / self.name

    @property
    def solution_file(self) -> Path:
        return self.root / "solutions" / self.name / f"{self.module}.py"

    @property
    def stub_file(self) -> Path:
        return self.root / "assignments" / self.name / f"{self.module}.py"

    @property
    def fixtures_dir(self) -> Path:
        return self.grader_dir / "fixtures"


def find_root(start: Path | None = None) -> Path:
    """The project root: $TORCHGRADE_ROOT, else the nearest parent of ``start`` (the current
    directory) with a ``graders/`` folder, else the checkout this package was installed from."""
    env = os.environ.get("TORCHGRADE_ROOT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "graders").is_dir():
            return candidate
    source_root = Path(__file__).resolve().parents[2]
    if (source_root / "graders").is_dir():
        return source_root
    raise AssignmentError(
        "cannot find the course directory (a folder with graders/): run torchgrade inside it, "
        "pass --root, or set TORCHGRADE_ROOT")


def available(root: Path) -> list[str]:
    graders = root / "graders"
    return sorted(p.name for p in graders.iterdir() if (p / "rubric.toml").is_file()) \
        if graders.is_dir() else []


_LIMIT_KEYS = {f.name for f in dataclasses.fields(Limits)}


def load(name: str, root: Path | None = None) -> Assignment:
    root = (root or find_root()).resolve()
    rubric_path = root / "graders" / name / "rubric.toml"
    if not rubric_path.is_file():
        known = ", ".join(available(root)) or "none"
        raise AssignmentError(f"unknown assignment {name!r} (no {rubric_path}); "
                              f"known assignments: {known}")
    try:
        data = tomllib.loads(rubric_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AssignmentError(f"{rubric_path}: invalid TOML: {exc}") from exc
    section = _table(data, "assignment", rubric_path)
    limits = _table(data, "limits", rubric_path, required=False)
    worker_limits = {k: v for k, v in limits.items() if k in _LIMIT_KEYS}
    unknown = set(limits) - _LIMIT_KEYS - {"check_timeout_s", "import_timeout_s",
                                           "submission_timeout_s", "wall_factor",
                                           "wall_slack_s"}
    if unknown:
        raise AssignmentError(f"{rubric_path}: unknown [limits] keys: {sorted(unknown)}")
    profiles = _table(data, "profiles", rubric_path, required=False)
    audit = _table(data, "audit", rubric_path, required=False)
    unknown = set(audit) - {"mutate"}
    if unknown:
        raise AssignmentError(f"{rubric_path}: unknown [audit] keys: {sorted(unknown)}")
    mutate = audit.get("mutate", [])
    if not isinstance(mutate, list) or not all(isinstance(m, str) and m for m in mutate):
        raise AssignmentError(f"{rubric_path}: [audit] mutate must be a list of names of the "
                              "reference's top-level functions and classes")
    preload = section.get("preload", [])
    if not isinstance(preload, list) or not all(isinstance(m, str) and m for m in preload):
        raise AssignmentError(f"{rubric_path}: [assignment] preload must be a list of module "
                              "names (e.g. [\"transformers\"])")
    for prof, table in profiles.items():
        threads = table.get("threads", 1) if isinstance(table, dict) else 1
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise AssignmentError(f"{rubric_path}: [profiles.{prof}] threads must be a whole "
                                  f"number >= 1, got {threads!r}")
    return Assignment(
        name=name,
        title=str(section.get("title", name)),
        module=_str(section, "module", rubric_path, default=name),
        version=_str(section, "version", rubric_path),
        total_points=_positive(section, "total_points", rubric_path),
        root=root,
        check_timeout_s=_positive(limits, "check_timeout_s", rubric_path, 30.0),
        import_timeout_s=_positive(limits, "import_timeout_s", rubric_path, 60.0),
        submission_timeout_s=_positive(limits, "submission_timeout_s", rubric_path, 900.0),
        limits=Limits(**{k: _whole(limits, k, rubric_path) for k in worker_limits}),
        budgets={str(k): dict(v) for k, v in profiles.items() if isinstance(v, dict)},
        audit_mutate=tuple(mutate),
        preload=tuple(preload),
        wall_factor=max(1.0, _positive(limits, "wall_factor", rubric_path, 5.0)),
        wall_slack_s=_positive(limits, "wall_slack_s", rubric_path, 30.0),
    )


def _table(data: dict, key: str, path: Path, required: bool = True) -> dict[str, Any]:
    value = data.get(key, None if required else {})
    if not isinstance(value, dict):
        raise AssignmentError(f"{path}: missing or invalid [{key}] table")
    return value


def _str(table: dict, key: str, path: Path, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise AssignmentError(f"{path}: {key} must be a non-empty string")
    return value


def _positive(table: dict, key: str, path: Path, default: float | None = None) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise AssignmentError(f"{path}: {key} must be a positive number, got {value!r}")
    return float(value)


def _whole(table: dict, key: str, path: Path) -> int:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AssignmentError(f"{path}: {key} must be a whole number >= 1, got {value!r}")
    return value
