"""A submitted notebook's code, as the grader runs it: which cells, and how.

Used inside the sandboxed worker (``torchgrade.worker`` turns a ``.ipynb`` submission into the
submission module there, so the grader never parses student files). Standard library only.

What runs, in notebook order: every code cell, student code whatever it mentions, except

- torchgrade's own setup and test cells, as ``torchgrade author build`` generated them
  (:func:`torchgrade.notebooks.harness_cells`). The grader computes them from the assignment
  and hands the worker a :func:`digest` of each, keyed by its nbgrader ``grade_id``; a cell is
  torchgrade's only when its ``grade_id`` is one of these *and* its source is exactly the
  generated one (:func:`normalise`: line endings, trailing spaces and how Jupyter splits the
  source into lines do not matter; nbgrader's ``generate_assignment`` leaves these cells as
  they are, adding only a ``checksum`` and lock flags to their metadata). Any other cell runs
  as student code: an edited test cell, one whose metadata was stripped, a student cell that
  borrowed a ``torchgrade_`` id. That cannot award points (the points come from the grader's
  own checks, never from the notebook), and it does no harm: while a notebook is graded,
  ``torchgrade_results`` is :class:`NotChecked` and ``run_public_checks`` checks nothing
  (:func:`start_grading`). Such cells are named in :attr:`Selection.notes`;
- an optional helpers cell still holding only nbgrader's stub (``raise
  NotImplementedError()``), as the student was told they may leave it;
- a cell magic (``%%bash``...), except ``%%time`` and ``%%capture``, whose body runs;
- an empty cell.

A cell that is valid Python runs exactly as written (a line starting with ``%`` there continues
an expression or sits in a string); in any other, an IPython line magic or shell line
(``%matplotlib``, ``!pip install``) becomes ``pass``.

Every cell left out is named, with why, in :meth:`Selection.summary` (the report's
``extra["notebook"]``) and in :func:`describe` (import errors, "does not define").

A notebook that is not valid JSON, or not a notebook, raises :class:`NotebookError` saying what
is wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

TEST_PREFIX = "torchgrade_"  # grade_id of the setup and test cells (torchgrade.notebooks)
SETUP_ID = "torchgrade_setup"
RESULTS_NAME = "torchgrade_results"  # what the setup cell defines and each test cell reads
_STUB_LINES = {"raise NotImplementedError()", "raise NotImplementedError"}
_KEEP_BODY_MAGICS = ("%%time", "%%capture")
_grading = False


class NotebookError(ValueError):
    """The submission is not a readable Jupyter notebook."""


@dataclass(frozen=True)
class Cell:
    number: int  # 1-based, counting every cell of the notebook (as Jupyter shows them)
    grade_id: str
    source: str


@dataclass(frozen=True)
class Selection:
    """What the grader makes of a notebook's code cells: those that run, in order, and every
    code cell left out with why. ``notes`` names cells that ran although they look like
    torchgrade's (its id, or its exact source without its id)."""

    cells: tuple[Cell, ...]
    left_out: tuple[tuple[int, str], ...] = ()  # (cell number, why)
    notes: tuple[tuple[int, str], ...] = ()  # (cell number, what it was)

    def summary(self) -> dict:
        """As plain data, for the worker's reply and the report's ``extra["notebook"]``."""
        return {"cells_run": [c.number for c in self.cells],
                "cells_left_out": [{"cell": n, "why": why} for n, why in self.left_out],
                "notes": [{"cell": n, "note": note} for n, note in self.notes]}

    def source(self) -> str:
        """The cells that run, joined into one module's text."""
        return "\n\n".join(c.source.rstrip("\n") + "\n" for c in self.cells)


class NotChecked:
    """``torchgrade_results`` while a notebook is graded. The public checks are the grader's
    own, so a torchgrade cell that runs as student code (edited, or without its metadata)
    checks nothing, passes nothing and fails nothing."""

    report: dict = {}
    checks: dict = {}
    output = ""

    def expect(self, name: str) -> None:
        return None

    def __repr__(self) -> str:
        return "<torchgrade_results: not checked while grading>"


def start_grading() -> None:
    """Mark this process as one that runs a submission for the grader (the worker, before any
    student code): from then on ``run_public_checks`` in a submission checks nothing and
    returns :class:`NotChecked`, instead of starting ``torchgrade check`` from inside it."""
    global _grading
    _grading = True


def grading() -> bool:
    return _grading


def normalise(source: str) -> str:
    """A cell's source with what Jupyter or an editor may change without changing the code
    taken away: line endings, trailing spaces, leading and trailing blank lines."""
    lines = [line.rstrip() for line in source.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def digest(source: str) -> str:
    """What identifies a generated cell's source (sha256 of :func:`normalise`)."""
    return hashlib.sha256(normalise(source).encode("utf-8")).hexdigest()


def _fix(name: str) -> str:
    return (f"Open {name} in Jupyter and save it again (File > Save Notebook), or submit "
            "your code as a .py file instead.")


def load(data: bytes | str, name: str) -> dict:
    """The notebook's JSON, or NotebookError naming what is broken."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotebookError(f"{name} is not a readable notebook: it is not UTF-8 text "
                                f"(byte {exc.start}). {_fix(name)}") from None
    if not data.strip():
        raise NotebookError(f"{name} is empty. {_fix(name)}")
    try:
        nb = json.loads(data)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"{name} is not a readable notebook: its JSON is broken at line "
                            f"{exc.lineno}, column {exc.colno} ({exc.msg}). "
                            f"{_fix(name)}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        hint = (" (it has 'worksheets': a notebook format 3 file)"
                if isinstance(nb, dict) and "worksheets" in nb else "")
        raise NotebookError(f"{name} is JSON but not a Jupyter notebook: it has no list of "
                            f"'cells'{hint}. {_fix(name)}")
    return nb


def _text(cell: dict, number: int, name: str) -> str:
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    if isinstance(source, str):
        return source
    raise NotebookError(f"{name}: cell {number} has a 'source' that is neither text nor a list "
                        f"of lines. {_fix(name)}")


def _python(source: str) -> str | None:
    """The cell as plain Python (IPython magics and shell lines neutralised), or None when the
    whole cell is not Python (a cell magic such as ``%%bash``). A cell that is already valid
    Python is kept exactly: a line starting with ``%`` or ``!`` there is inside a string or a
    bracket (``x = (a\n     % b)``), never a magic."""
    if _compiles(source):
        return source if source.endswith("\n") else source + "\n"
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        if not lines[first].lstrip().startswith(_KEEP_BODY_MAGICS):
            return None
        lines = lines[first + 1:]
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            out.append(line[: len(line) - len(stripped)] + "pass  # IPython line left out")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _compiles(source: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the worker's own compile warns once, not twice
        try:
            compile(source, "<cell>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
    return True


def select(data: bytes | str, name: str,
           harness: Mapping[str, str] | None = None) -> Selection:
    """The cells the grader runs, in order (see the module docstring). ``harness`` maps the
    ``grade_id`` of each of torchgrade's generated cells to the :func:`digest` of its source;
    without it no cell is torchgrade's."""
    nb = load(data, name)
    harness = dict(harness or {})
    by_digest = {d: gid for gid, d in harness.items()}
    cells: list[Cell] = []
    left_out: list[tuple[int, str]] = []
    notes: list[tuple[int, str]] = []
    for number, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict):
            raise NotebookError(f"{name}: cell {number} is not a JSON object. {_fix(name)}")
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata")
        nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
        grade_id = str(nbgrader.get("grade_id", "")) if isinstance(nbgrader, dict) else ""
        source = _text(cell, number, name)
        why = _left_out_why(grade_id, source, harness)
        if why is None:
            note = _look_alike(grade_id, source, harness, by_digest)
            if note:
                notes.append((number, note))
            python = _python(source)
            if python is None:
                why = f"a {source.split()[0]} cell magic (not Python)"
            elif not python.strip():
                why = "empty"
            else:
                cells.append(Cell(number, grade_id, python))
        if why is not None:
            left_out.append((number, why))
    return Selection(tuple(cells), tuple(left_out), tuple(notes))


def _left_out_why(grade_id: str, source: str, harness: dict[str, str]) -> str | None:
    """Why a cell is left out for what it is (torchgrade's, an untouched stub), or None."""
    if grade_id in harness and harness[grade_id] == digest(source):
        return ("torchgrade's setup cell, unchanged" if grade_id == SETUP_ID
                else "a torchgrade test cell, unchanged")
    code = {line.strip() for line in source.splitlines()
            if line.strip() and not line.lstrip().startswith("#")}
    if grade_id.startswith("helpers_") and code and code <= _STUB_LINES:
        return "an untouched optional helpers stub"
    return None


def _look_alike(grade_id: str, source: str, harness: dict[str, str],
                by_digest: dict[str, str]) -> str:
    """Why a cell that runs deserves a note: it has a torchgrade cell's id or exact source."""
    def what(gid: str) -> str:
        return "setup cell" if gid == SETUP_ID else "test cell"

    after = ("it ran as your code, and torchgrade's cells check nothing while grading (the "
             "grader runs its own checks)")
    if grade_id in harness:
        return (f"has the id of torchgrade's {what(grade_id)} {grade_id} but not the code this "
                f"grader generates for it (edited, or from another release): {after}")
    if grade_id.startswith(TEST_PREFIX):
        return f"has the id of a torchgrade cell ({grade_id}) that this grader has not: {after}"
    twin = by_digest.get(digest(source))
    if twin is not None:
        return (f"is torchgrade's {what(twin)} {twin} without its nbgrader metadata: {after}")
    return ""


def code_cells(data: bytes | str, name: str,
               harness: Mapping[str, str] | None = None) -> list[Cell]:
    """The cells the grader runs, in order (:func:`select`)."""
    return list(select(data, name, harness).cells)


def module_source(data: bytes | str, name: str,
                  harness: Mapping[str, str] | None = None) -> str:
    """The cells the grader runs, joined into one module's text."""
    return select(data, name, harness).source()


# -- saying it -----------------------------------------------------------------------------------
_MAX_ENTRIES = 2000
_MAX_TEXT = 300


def clean_summary(value: object) -> dict | None:
    """A :meth:`Selection.summary` that came back from the worker (untrusted), reduced to
    well-formed entries of bounded size; None when it is not one."""
    if not isinstance(value, dict):
        return None

    def number(x: object) -> int | None:
        return x if isinstance(x, int) and not isinstance(x, bool) and 0 < x < 10**7 else None

    def entries(key: str, text: str) -> list[dict]:
        items = value.get(key)
        out = []
        for item in items[:_MAX_ENTRIES] if isinstance(items, list) else []:
            if isinstance(item, dict) and number(item.get("cell")) is not None \
                    and isinstance(item.get(text), str):
                out.append({"cell": item["cell"], text: item[text][:_MAX_TEXT]})
        return out

    run = value.get("cells_run")
    return {"cells_run": [n for n in (run[:_MAX_ENTRIES] if isinstance(run, list) else [])
                          if number(n) is not None],
            "cells_left_out": entries("cells_left_out", "why"),
            "notes": entries("notes", "note")}


def _ranges(numbers: list[int]) -> str:
    """[2, 3, 4, 7] -> "2-4, 7"."""
    out: list[str] = []
    for n in numbers:
        if out and out[-1].rsplit("-", 1)[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def _groups(entries: list[dict]) -> list[tuple[list[int], str]]:
    """Neighbouring cells left out for the same reason, together."""
    groups: list[tuple[list[int], str]] = []
    for entry in entries:
        if groups and groups[-1][1] == entry["why"] and groups[-1][0][-1] == entry["cell"] - 1:
            groups[-1][0].append(entry["cell"])
        else:
            groups.append(([entry["cell"]], entry["why"]))
    return groups


def _cells(numbers: list[int]) -> str:
    return f"cell{'s' if len(numbers) > 1 else ''} {_ranges(numbers)}"


def describe(summary: object) -> str:
    """One sentence for messages: "cells run: 9-17, 25; left out: cell 19 (torchgrade's setup
    cell, unchanged), cells 20-24 (a torchgrade test cell, unchanged)"."""
    clean = clean_summary(summary) or {"cells_run": [], "cells_left_out": [], "notes": []}
    left = ", ".join(f"{_cells(cells)} ({why})" for cells, why in _groups(
        clean["cells_left_out"]))
    return f"cells run: {_ranges(clean['cells_run']) or 'none'}; left out: {left or 'none'}"


def summary_lines(summary: object) -> list[str]:
    """The summary as lines for ``torchgrade check`` and the HTML report: the cells run, each
    group of cells left out with why, and each note."""
    clean = clean_summary(summary)
    if clean is None:
        return []
    return ([f"cells run as your code: {_ranges(clean['cells_run']) or 'none'}"]
            + [f"{_cells(cells)} left out: {why}" for cells, why in _groups(
                clean["cells_left_out"])]
            + [f"cell {n['cell']} {n['note']}" for n in clean["notes"]])
