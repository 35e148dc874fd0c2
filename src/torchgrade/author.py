"""``torchgrade author build``: everything students see, generated from ``solutions/``.

One source per assignment, the marked reference ``solutions/<name>/<module>.py`` (markers:
``torchgrade.markers``) and its handout ``solutions/<name>/handout.md``, gives:

    assignments/<name>/<module>.py, README.md      the stub and the handout (its table of
                                                    training-check CPU budgets from the grader
                                                    and solutions/<name>/reference_cpu.toml:
                                                    torchgrade.budgets)
    examples/<name>/stub/<module>.py                the stub again, graded by the tests
    graders/<name>/fixtures/public.safetensors      the public fixtures (torchgrade.fixtures)
    student_template/                               the repository students clone
    notebooks/source/<name>/<name>.ipynb            the nbgrader source notebook
    notebooks/nbgrader_config.py                    (torchgrade.notebooks)

``student_template/`` holds the stubs and handouts, the public checks only (split from each
grader by ``torchgrade.public_grader``) with their fixtures and a rubric cut down to what
``torchgrade check`` reads, a ``pyproject.toml`` depending on torchgrade, a README with the two
commands, and a CI workflow running the public checks on every push. An assignment whose
reference has no markers yet is skipped with a note.

``plan`` computes every generated file in memory without torch, so ``check`` (``author build
--check``) is fast; the public fixtures themselves are rebuilt by ``build`` only (their
staleness is tested against the reference by tests/test_fixtures.py). The notebook versions
(``torchgrade.notebooks``) are one more function adding files to the plan.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torchgrade import budgets, contract, engine_wheel
from torchgrade.assignment import Assignment, AssignmentError, available, load
from torchgrade.markers import has_markers, split_solution
from torchgrade.notebooks import files as notebook_files
from torchgrade.public_grader import split_grader

TEMPLATE = "student_template"
VENDOR = "vendor"  # student_template/vendor/: the engine's wheel (torchgrade.engine_wheel)
COURSE_FILE = "course.toml"  # optional course-wide settings: [student] torch_index
CPU_TORCH = "https://download.pytorch.org/whl/cpu"
HANDOUT = "handout.md"
FIXTURES = "fixtures/public.safetensors"


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every generated file (path relative to the course root -> its bytes)."""

    files: dict[str, bytes]
    assignments: tuple[str, ...]  # built, in order
    notes: tuple[str, ...]  # assignments skipped, and why
    # Where handout, stub and public checks break the one contract (torchgrade.contract):
    # `author build` writes the files but fails, `--check` lists them.
    problems: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class BuildResult:
    written: tuple[str, ...]  # files whose content changed (or that were new)
    removed: tuple[str, ...]  # stale files under student_template/ that nothing generates
    plan: Plan


def marked(root: Path) -> tuple[list[Assignment], list[str]]:
    """The assignments with solution markers, and a note for each one without."""
    done, notes = [], []
    for name in available(root):
        assignment = load(name, root)
        source = assignment.solution_file
        if not source.is_file():
            notes.append(f"{name}: skipped, no reference {source.relative_to(root)}")
        elif not has_markers(source.read_text(encoding="utf-8")):
            notes.append(f"{name}: skipped, {source.relative_to(root)} has no solution markers "
                         "yet (its stub and handout are still written by hand)")
        else:
            done.append(assignment)
    return done, notes


def plan(root: Path) -> Plan:
    root = root.resolve()
    assignments, notes = marked(root)
    files: dict[str, bytes] = {}
    problems: list[str] = []
    for a in assignments:
        files.update(_assignment_files(a))
        problems += contract.problems(a)
    files.update(_template_files(root, assignments))
    if assignments:
        files.update(notebook_files(assignments))
    return Plan(files=files, assignments=tuple(a.name for a in assignments), notes=tuple(notes),
                problems=tuple(problems))


def _assignment_files(a: Assignment) -> dict[str, bytes]:
    rel = f"{a.name}/{a.module}.py"
    split = split_solution(a.solution_file.read_text(encoding="utf-8"),
                           a.solution_file.relative_to(a.root))
    stub = split.stub.encode()
    handout = _handout(a, split.stub).encode()
    out = {f"assignments/{rel}": stub, f"examples/{a.name}/stub/{a.module}.py": stub,
           f"assignments/{a.name}/README.md": handout,
           f"{TEMPLATE}/assignments/{rel}": stub, f"{TEMPLATE}/assignments/{a.name}/README.md":
           handout}
    public_points = 0.0
    uses_budget = False
    for grader in sorted(a.grader_dir.glob("test_*.py")):
        split_g = split_grader(grader.read_text(encoding="utf-8"), grader.relative_to(a.root),
                               a.name)
        if not split_g.public:
            continue
        out[f"{TEMPLATE}/graders/{a.name}/{grader.name}"] = split_g.source.encode()
        public_points += sum(c.points for c in split_g.public if "cpu" in c.profiles)
        uses_budget |= any("budget" in c.fixtures for c in split_g.public)
    out[f"{TEMPLATE}/graders/{a.name}/rubric.toml"] = _rubric(a, public_points,
                                                              uses_budget).encode()
    fixtures = a.grader_dir / FIXTURES
    if fixtures.is_file():
        out[f"{TEMPLATE}/graders/{a.name}/{FIXTURES}"] = fixtures.read_bytes()
    return out


def _handout(a: Assignment, stub: str) -> str:
    source = a.root / "solutions" / a.name / HANDOUT
    if not source.is_file():
        raise AssignmentError(f"{a.name}: missing the handout source {source} (the handout "
                              f"students get as assignments/{a.name}/README.md)")
    text = contract.handout(a, stub)
    return (f"<!-- Generated by `torchgrade author build` from the course's handout source; "
            f"edit that, not this file. -->\n{text.rstrip()}\n")


def _rubric(a: Assignment, public_points: float, uses_budget: bool) -> str:
    """The rubric a student's `torchgrade check` reads: no [audit], budgets only if a public
    check reads them, and the public checks' points as the total."""
    data = tomllib.loads((a.grader_dir / "rubric.toml").read_text(encoding="utf-8"))
    section = data.get("assignment", {})
    lines = ["# Generated by `torchgrade author build` from the course's rubric: what "
             "`torchgrade check`", "# reads to run the public checks.", "[assignment]"]
    total = public_points if public_points > 0 else 1
    for key, value in (("title", section.get("title", a.name)), ("module", a.module),
                       ("version", a.version), ("total_points", total)):
        lines.append(f"{key} = {_toml(value)}")
    tables: list[tuple[str, dict[str, Any]]] = [("limits", data.get("limits", {}))]
    if uses_budget:
        tables += [(f"profiles.{k}", v) for k, v in data.get("profiles", {}).items()]
    for title, table in tables:
        if table:
            lines += ["", f"[{title}]", *(f"{k} = {_toml(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to the template's rubric")


def torch_index(root: Path) -> str:
    """Where the students' pip looks for PyTorch besides PyPI: ``[student] torch_index`` in the
    course's optional ``course.toml``. By default PyTorch's CPU index (a laptop needs no CUDA
    build, gigabytes); "" for PyPI's own build (with CUDA on Linux), or another of PyTorch's
    indexes (e.g. ``https://download.pytorch.org/whl/cu128``)."""
    settings = root / COURSE_FILE
    if not settings.is_file():
        return CPU_TORCH
    student = tomllib.loads(settings.read_text(encoding="utf-8")).get("student", {})
    index = student.get("torch_index", CPU_TORCH)
    if not isinstance(index, str):
        raise AssignmentError(f"{settings}: [student] torch_index must be a string (a URL, or "
                              "\"\" for PyPI's own PyTorch)")
    return index


def _template_files(root: Path, assignments: list[Assignment]) -> dict[str, bytes]:
    names = [a.name for a in assignments]
    rows = "\n".join(f"| `{a.name}` | {a.title} |" for a in assignments)
    example = names[0] if names else "NAME"
    wheel_name, wheel = engine_wheel.build()
    index = torch_index(root)
    build = "CPU build" if index == CPU_TORCH else "build the course chose"
    install, command = "pip install -r requirements.txt", f"torchgrade check {example}"
    width = max(len(install), len(command))
    readme = f"""# Coursework: your starting repository

One folder per assignment under `assignments/`: the file you fill in (`<name>.py`) and its
handout (`README.md`, read it first).

## Two commands

```sh
{install:<{width}}  # once: torchgrade, the course's checker, and PyTorch ({build})
{command:<{width}}  # the public checks of assignments/{example}/{example}.py
```

Run them in this folder, best in a virtual environment of your own (`python -m venv .venv`,
then `source .venv/bin/activate`). torchgrade itself comes from `vendor/`, everything else from
PyPI{" and PyTorch's own index" if index else ""}.

`torchgrade check NAME` runs the public checks of one assignment in seconds and prints each
with its points; for a failure, what was expected, what came back and a hint. `torchgrade check
NAME path/to/file.py` checks another file. Exit status 0 only when every public check passes.
Your submission is also graded with hidden checks, so passing the public ones is a start, not a
guarantee. Your code runs in a process of its own: on Linux with bubblewrap in a sandbox, and
elsewhere (macOS, a container) with resource limits only; `check` says which, and the checks
and points are the same either way.

| assignment | what you write |
|---|---|
{rows}

Every push runs the public checks of every assignment on GitHub Actions
(`.github/workflows/check.yml`), one job per assignment.

The `graders/` folder holds the public checks and the fixtures they compare with: leave it as
it is.
"""
    index_line = f"--extra-index-url {index}\n" if index else ""
    requirements = f"""# `pip install -r requirements.txt`, in this folder, installs what
# `torchgrade check` needs: the course's checker from vendor/ (no package index serves it) and
# its dependencies from PyPI, PyTorch's {build} {"from PyTorch's index" if index else "too"}.
{index_line}./{VENDOR}/{wheel_name}
"""
    matrix = ", ".join(names)
    workflow = f"""# The public checks of every assignment on each push, one job per assignment.
name: public checks
on: [push, workflow_dispatch]

jobs:
  check:
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        assignment: [{matrix}]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: install torchgrade (vendor/) and PyTorch
        run: pip install -r requirements.txt
      - name: torchgrade check ${{{{ matrix.assignment }}}}
        run: torchgrade check ${{{{ matrix.assignment }}}}
"""
    gitignore = "__pycache__/\n*.pyc\n.venv/\n*.egg-info/\nbuild/\n"
    return {f"{TEMPLATE}/README.md": readme.encode(), f"{TEMPLATE}/requirements.txt":
            requirements.encode(), f"{TEMPLATE}/{VENDOR}/{wheel_name}": wheel,
            f"{TEMPLATE}/.github/workflows/check.yml": workflow.encode(),
            f"{TEMPLATE}/.gitignore": gitignore.encode()}


def stale(root: Path, the_plan: Plan | None = None) -> list[str]:
    """What is out of date: ``path: why`` for every generated file that differs from what its
    sources give now, is missing, or sits in student_template/ with nothing generating it."""
    root = root.resolve()
    the_plan = the_plan or plan(root)
    out = []
    for rel, data in sorted(the_plan.files.items()):
        path = root / rel
        if not path.is_file():
            out.append(f"{rel}: missing")
        elif path.read_bytes() != data:
            source = "the engine (src/torchgrade)" if rel.startswith(f"{TEMPLATE}/{VENDOR}/") \
                else "its source"
            out.append(f"{rel}: differs from what {source} generates")
    out += [f"{rel}: not generated by anything (stale)" for rel in _extra(root, the_plan)]
    out += [f"contract: {p}" for p in the_plan.problems]
    for a in the_plan.assignments:
        fixtures = f"graders/{a}/{FIXTURES}"
        if not (root / fixtures).is_file():
            out.append(f"{fixtures}: missing (the template needs it)")
        out += [f"solutions/{a}/{budgets.RECORD}: {why} (run `torchgrade author measure {a}`)"
                for why in budgets.stale(load(a, root))]
    return out


def _extra(root: Path, the_plan: Plan) -> list[str]:
    template = root / TEMPLATE
    if not template.is_dir():
        return []
    return sorted(rel for p in template.rglob("*") if p.is_file()
                  and (rel := p.relative_to(root).as_posix()) not in the_plan.files
                  and "__pycache__" not in p.parts)


def build(root: Path, *, fixtures: bool = True,
          log: Callable[[str], None] = lambda line: None) -> BuildResult:
    """Write every generated file (and, unless ``fixtures`` is False, rebuild the public
    fixtures from the references first); remove stale files under student_template/."""
    root = root.resolve()
    if fixtures:
        from torchgrade.fixtures import build_fixtures

        for a in marked(root)[0]:
            log(f"{a.name}: public fixtures {build_fixtures(a).relative_to(root)}")
    the_plan = plan(root)
    written = []
    for rel, data in sorted(the_plan.files.items()):
        path = root / rel
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        written.append(rel)
    removed = _extra(root, the_plan)
    for rel in removed:
        (root / rel).unlink()
    return BuildResult(written=tuple(written), removed=tuple(removed), plan=the_plan)
