"""A submitted notebook's code, as the grader runs it: which cells, and how.

Used inside the sandboxed worker (``torchgrade.worker`` turns a ``.ipynb`` submission into the
submission module there, so the grader never parses student files) and by the notebooks'
public-check cell (:func:`torchgrade.notebooks.run_public_checks`). Standard library only.

What runs, in notebook order:

- every code cell, except torchgrade's setup and test cells. Those are recognised by their
  nbgrader ``grade_id`` (``torchgrade_...``) *and* by their content: a code cell that mentions
  ``torchgrade`` at all is left out, so a test cell whose metadata was edited or stripped is
  still never run, and deleting or editing test cells changes nothing (the points come from the
  grader's own checks, never from the notebook);
- an optional helpers cell still holding only nbgrader's stub (``raise
  NotImplementedError()``) is left out, as the student was told they may leave it;
- IPython syntax: a line magic or shell line (``%matplotlib``, ``!pip install``) becomes
  ``pass``; a cell magic (``%%...``) drops its cell, except ``%%time`` and ``%%capture``, whose
  body runs.

A notebook that is not valid JSON, or not a notebook, raises :class:`NotebookError` saying what
is wrong and how to fix it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

TEST_PREFIX = "torchgrade_"  # grade_id of the setup and test cells (torchgrade.notebooks)
_HARNESS = re.compile(r"\btorchgrade")
_STUB_LINES = {"raise NotImplementedError()", "raise NotImplementedError"}
_KEEP_BODY_MAGICS = ("%%time", "%%capture")


class NotebookError(ValueError):
    """The submission is not a readable Jupyter notebook."""


@dataclass(frozen=True)
class Cell:
    number: int  # 1-based, counting every cell of the notebook (as Jupyter shows them)
    grade_id: str
    source: str


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
    whole cell is not Python (a cell magic such as ``%%bash``)."""
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


def code_cells(data: bytes | str, name: str) -> list[Cell]:
    """The cells the grader runs, in order (see the module docstring)."""
    nb = load(data, name)
    cells = []
    for number, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict):
            raise NotebookError(f"{name}: cell {number} is not a JSON object. {_fix(name)}")
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata")
        nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
        grade_id = str(nbgrader.get("grade_id", "")) if isinstance(nbgrader, dict) else ""
        source = _text(cell, number, name)
        if grade_id.startswith(TEST_PREFIX) or _HARNESS.search(source):
            continue
        code = {line.strip() for line in source.splitlines()
                if line.strip() and not line.lstrip().startswith("#")}
        if grade_id.startswith("helpers_") and code <= _STUB_LINES:
            continue
        python = _python(source)
        if python is not None and python.strip():
            cells.append(Cell(number, grade_id, python))
    return cells


def module_source(data: bytes | str, name: str) -> str:
    """The cells the grader runs, joined into one module's text."""
    return "\n\n".join(c.source.rstrip("\n") + "\n" for c in code_cells(data, name))
