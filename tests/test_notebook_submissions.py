"""Notebook submissions, graded for real: ``torchgrade grade`` on ``<student>/<a>.ipynb`` and
on nbgrader's ``submitted/<student>/<a>/<a>.ipynb`` layout.

The worker runs the notebook's code cells inside the sandbox (torchgrade.nbcode decides which);
the grader never parses the student's file. The toy assignment's notebooks below are graded in
ONE batch beside the same code as a ``.py`` file, then one small test per question: is an honest
notebook (with magics, shell lines, a guarded training loop, a print flood, cells that mention
torchgrade and import its course code) graded exactly like the .py, do tampered test cells
change nothing, does a cell that imitates torchgrade's run as the student's code, does the
report name every cell left out, and does each broken notebook (invalid JSON, a cell that trains
forever, a syntax or runtime error in a cell) end in a report saying what to fix?

torchgrade's setup and test cells below are exactly those ``author build`` generates for the
toy assignment (``notebooks.harness_cells``), with the metadata nbgrader's
``generate_assignment`` gives them (a checksum, lock flags).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from torchgrade import nbcode
from torchgrade.assignment import load
from torchgrade.batch import find_submission, grade_batch
from torchgrade.notebooks import harness_cells, harness_digests
from torchgrade.render.html import render_student_html
from torchgrade.report import Report
from torchgrade.runner import Options

HERE = Path(__file__).resolve().parent
COURSE = HERE / "toy_course"
REFERENCE = (COURSE / "solutions" / "toy" / "toy.py").read_text(encoding="utf-8")
STUB = (COURSE / "assignments" / "toy" / "toy.py").read_text(encoding="utf-8")
HARNESS = harness_cells(load("toy", COURSE))  # grade_id -> source, as author build writes them
DIGESTS = harness_digests(load("toy", COURSE))
SETUP_ID, TEST_ID = "torchgrade_setup", "torchgrade_test_scale_public"


def cell(source: str, grade_id: str | None = None, **nbgrader: object) -> dict:
    meta = {"nbgrader": {"grade_id": grade_id, "schema_version": 3, **nbgrader}} \
        if grade_id else {}
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [],
            "source": source.splitlines(True)}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def notebook(*cells: dict) -> str:
    return json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4,
                       "nbformat_minor": 5})


def split(module: str) -> list[dict]:
    """A module as notebook cells: the header (docstring, imports) then one cell per def."""
    parts = module.split("\ndef ")
    return [cell(parts[0])] + [cell("def " + p, grade_id=p.split("(")[0], solution=True)
                               for p in parts[1:]]


def released(grade_id: str, source: str | None = None, **meta: object) -> dict:
    """torchgrade's cell ``grade_id`` as students receive it (``source``: edited instead)."""
    return cell(HARNESS[grade_id] if source is None else source, grade_id=grade_id,
                locked=True, checksum="0f" * 16, cell_type="code", **meta)


SETUP = released(SETUP_ID)


def grade_cell(check: str, points: float, source: str | None = None) -> dict:
    return released(f"torchgrade_{check}", source, grade=True, points=points)


MENTIONS = cell(  # the notebook: docstrings and comments naming torchgrade, course code
    '"""My helpers. The model is torchgrade.course.mae.TinyMAE (see the handout); torchgrade\n'
    'checks this notebook."""\n'
    "import torchgrade.course.mae  # torchgrade's course code, as the handout says\n\n\n"
    "def _course_model():\n"
    '    """torchgrade.course.mae.TinyMAE, the model torchgrade ships."""\n'
    "    return torchgrade.course.mae.TinyMAE\n")


HONEST = notebook(
    markdown("# Toy\nScale a tensor."),
    *split(REFERENCE)[:1],
    cell("%matplotlib inline\n!pip install --no-index nothing-at-all\n"),
    *split(REFERENCE)[1:],
    MENTIONS,
    cell("if True:\n    %time x = 1\nprint(scale(torch.ones(2), 2.0))\n"
         "display(total(torch.ones(3)))\n"),
    cell("%%bash\necho this cell is shell, not Python\n"),
    cell("if __name__ == '__main__':  # true in Jupyter, not when grading\n"
         "    while True:  # training forever\n        pass\n"),
    SETUP,
    grade_cell("test_scale_public", 2),
    # torchgrade's test cell with its nbgrader metadata stripped: the student's code now,
    # which checks nothing while grading
    cell(HARNESS[TEST_ID]),
    cell(""),
)
SUBMISSIONS = {
    "py_honest/toy.py": REFERENCE,
    "py_stub/toy.py": STUB,
    "nb_honest/toy.ipynb": HONEST,
    # nbgrader's layout, and a print flood in a top-level cell
    "nbgrader_layout/toy/toy.ipynb": notebook(
        *json.loads(HONEST)["cells"],
        cell("for i in range(300_000):\n    print('epoch', i, 'loss', 0.5)\n")),
    # The stub, with its test cells edited: points raised, a check replaced by `pass`, a
    # "test cell" claiming 1000 points, the setup cell edited. None of it changes the score.
    "nb_tampered/toy.ipynb": notebook(
        *split(STUB),
        released(SETUP_ID, HARNESS[SETUP_ID] + "\nprint('my edit')\n"),
        grade_cell("test_scale_public", 1000),
        grade_cell("test_scale_public", 1000, source="pass\n"),
        cell("pass\n", grade_id="torchgrade_test_total_public", grade=True, points=1000),
    ),
    # Student code in cells that imitate torchgrade's: `total` in a cell carrying a
    # torchgrade_ id, and a copy of the setup cell without its metadata. Both run as the
    # student's code: full marks, as for the .py, and the report says what they were.
    "nb_imitates/toy.ipynb": notebook(
        *split(REFERENCE)[:2], cell(HARNESS[SETUP_ID]),
        cell("def total" + REFERENCE.split("\ndef total")[1], grade_id="torchgrade_total",
             grade=True, points=1000),
        SETUP, grade_cell("test_scale_public", 2)),
    # `total` missing: "does not define 'total'" says which cells ran and which were left out
    "nb_missing_total/toy.ipynb": notebook(*split(REFERENCE)[:2], cell("%%bash\nls\n"), SETUP,
                                           grade_cell("test_scale_public", 2)),
    "nb_broken_json/toy.ipynb": HONEST[: len(HONEST) // 2],
    "nb_trains_forever/toy.ipynb": notebook(
        *split(REFERENCE), cell("import time\nwhile True:  # training\n    time.sleep(0.5)\n")),
    "nb_syntax_error/toy.ipynb": notebook(
        *split(REFERENCE), cell("def broken(x):\n    return x.sum(\n")),
    "nb_runtime_error/toy.ipynb": notebook(
        *split(REFERENCE), cell("x = 1\nraise FileNotFoundError('dataset not found')\n")),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Report]]:
    root = tmp_path_factory.mktemp("notebooks")
    submissions = root / "submissions"
    for rel, text in SUBMISSIONS.items():
        (submissions / rel).parent.mkdir(parents=True, exist_ok=True)
        (submissions / rel).write_text(text, encoding="utf-8")
    assignment = load("toy", COURSE)
    batch = grade_batch(assignment, submissions, root / "reports", options=Options(), jobs=3,
                        use_cache=False)
    yield {r.student: r for r in batch.reports}
    shutil.rmtree(root, ignore_errors=True)


def _statuses(report: Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


# -- which cells run (no grading) -----------------------------------------------------------------
def test_every_cell_runs_but_torchgrade_cells_as_generated_magics_and_empty_ones():
    selection = nbcode.select(HONEST, "toy.ipynb", DIGESTS)
    text = selection.source()
    assert "def scale" in text and "def total" in text and "echo" not in text
    assert "import torchgrade.course.mae" in text  # a cell mentioning torchgrade runs
    assert [c.number for c in selection.cells] == [2, 3, 4, 5, 6, 7, 9, 12]  # as Jupyter shows
    assert "    pass  # IPython line left out\n" in text  # an indented magic stays valid
    assert selection.left_out == (
        (8, "a %%bash cell magic (not Python)"), (10, "torchgrade's setup cell, unchanged"),
        (11, "a torchgrade test cell, unchanged"), (13, "empty"))
    assert [n for n, _ in selection.notes] == [12]
    assert "without its nbgrader metadata" in selection.notes[0][1]


def _one(source: str | list[str], grade_id: str | None = None, **meta: object) -> nbcode.Selection:
    c = cell("", grade_id, **meta) if grade_id else cell("")
    c["source"] = source
    return nbcode.select(notebook(c), "toy.ipynb", DIGESTS)


@pytest.mark.parametrize("source", [
    HARNESS[SETUP_ID],  # as generated
    HARNESS[SETUP_ID].splitlines(True),  # as nbformat stores it
    HARNESS[SETUP_ID].replace("\n", "  \r\n") + "\n\n",  # another editor's line ends, spaces
    [line for text in HARNESS[SETUP_ID].splitlines(True) for line in (text[:5], text[5:])],
], ids=["string", "lines", "crlf-and-trailing-space", "split-otherwise"])
def test_an_untouched_setup_cell_is_left_out_however_it_was_saved(source):
    """nbgrader's generate_assignment leaves torchgrade's cells' source as it is and adds a
    checksum and lock flags to the metadata; Jupyter may split the source into lines
    otherwise. None of that makes the cell the student's."""
    selection = _one(source, SETUP_ID, locked=True, checksum="ab" * 16, cell_type="code")
    assert not selection.cells and not selection.notes
    assert selection.left_out == ((1, "torchgrade's setup cell, unchanged"),)
    test = _one(HARNESS[TEST_ID], TEST_ID, grade=True, points=1000)  # points edited: no matter
    assert test.left_out == ((1, "a torchgrade test cell, unchanged"),)


@pytest.mark.parametrize("source, grade_id, note", [
    (HARNESS[SETUP_ID] + "\nx = 1\n", SETUP_ID, "has the id of torchgrade's setup cell"),
    ("# my note\n" + HARNESS[TEST_ID], TEST_ID, "has the id of torchgrade's test cell"),
    (HARNESS[SETUP_ID], None, "is torchgrade's setup cell torchgrade_setup without its nbgrader"),
    (HARNESS[TEST_ID], "scale", "is torchgrade's test cell torchgrade_test_scale_public without"),
    ("def total(x):\n    return x.sum()\n", TEST_ID, "has the id of torchgrade's test cell"),
    (HARNESS[SETUP_ID], TEST_ID, "has the id of torchgrade's test cell"),
    ("def total(x):\n    return x.sum()\n", "torchgrade_mine", "has the id of a torchgrade cell"),
    ('"""Uses torchgrade.course.mae.TinyMAE."""\nfrom torchgrade.course.clip_ui import PAGE\n'
     "# torchgrade_results = 1\n", "patchify", ""),
], ids=["setup-edited", "test-edited", "setup-without-metadata", "test-other-id",
        "student-code-with-a-test-id", "setup-source-with-a-test-id", "a-torchgrade-id",
        "mentions-torchgrade"])
def test_a_cell_that_differs_from_torchgrade_generated_runs_as_student_code(source, grade_id,
                                                                           note):
    """Edited, stripped of its metadata, or a student cell borrowing torchgrade's id or
    naming torchgrade: it runs (and a note says what it resembles). It cannot award points:
    points come only from the grader's checks, and torchgrade_results checks nothing while
    grading (tests below)."""
    selection = _one(source, grade_id) if grade_id else _one(source)
    assert [c.number for c in selection.cells] == [1] and not selection.left_out
    assert [n for _, n in selection.notes if note and n.startswith(note)] or (
        not note and not selection.notes), selection.notes


def test_without_the_graders_digests_no_cell_is_torchgrades():
    selection = nbcode.select(HONEST, "toy.ipynb")
    assert [c.number for c in selection.cells] == [2, 3, 4, 5, 6, 7, 9, 10, 11, 12]


def test_a_line_starting_with_percent_inside_python_is_not_a_magic():
    """`%` continuing an expression, or `!`/`%` inside a string, is Python: the cell runs as
    written (a .py file with the same code runs it too)."""
    code = 'x = (7\n     % 4)\ndoc = """\n%d items\n!important\n"""\n'
    assert nbcode.select(notebook(cell(code)), "toy.ipynb").cells[0].source == code
    magic = "%matplotlib inline\nx = 1\n"
    assert nbcode.select(notebook(cell(magic)), "toy.ipynb").cells[0].source == \
        "pass  # IPython line left out\nx = 1\n"


def test_the_summary_names_every_cell_left_out():
    summary = nbcode.select(HONEST, "toy.ipynb", DIGESTS).summary()
    assert nbcode.describe(summary) == (
        "cells run: 2-7, 9, 12; left out: cell 8 (a %%bash cell magic (not Python)), cell 10 "
        "(torchgrade's setup cell, unchanged), cell 11 (a torchgrade test cell, unchanged), "
        "cell 13 (empty)")
    lines = nbcode.summary_lines(summary)
    assert lines[:2] == ["cells run as your code: 2-7, 9, 12",
                         "cell 8 left out: a %%bash cell magic (not Python)"]
    assert lines[-1].startswith("cell 12 is torchgrade's test cell")
    # What comes back from the worker is untrusted: malformed entries are dropped.
    assert nbcode.clean_summary({"cells_run": [1, "x", True], "cells_left_out": [
        {"cell": 2, "why": "w" * 1000}, {"cell": "3", "why": "x"}], "notes": 7}) == {
        "cells_run": [1], "cells_left_out": [{"cell": 2, "why": "w" * 300}], "notes": []}


@pytest.mark.parametrize("text, says", [
    ("", "is empty"),
    ('{"cells": [', "JSON is broken at line 1, column 12"),
    ("[1, 2]", "not a Jupyter notebook"),
    ('{"worksheets": []}', "notebook format 3"),
    ('{"cells": [{"cell_type": "code", "source": 7}]}', "cell 1 has a 'source'"),
])
def test_unreadable_notebooks_say_what_is_wrong_and_how_to_fix_it(text, says):
    with pytest.raises(nbcode.NotebookError) as err:
        nbcode.code_cells(text, "toy.ipynb")
    assert says in str(err.value) and "save it again" in str(err.value)


def test_a_py_file_is_found_before_a_notebook(tmp_path):
    assignment = load("toy", COURSE)
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.ipynb").write_text("{}")
    assert find_submission(tmp_path, assignment) == tmp_path / "toy" / "toy.ipynb"
    (tmp_path / "toy.ipynb").write_text("{}")
    assert find_submission(tmp_path, assignment) == tmp_path / "toy.ipynb"
    (tmp_path / "toy.py").write_text("")
    assert find_submission(tmp_path, assignment) == tmp_path / "toy.py"


# -- graded in the sandbox ------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("student", ["nb_honest", "nbgrader_layout", "nb_imitates"])
def test_honest_notebooks_are_graded_like_the_same_code_as_a_py_file(graded, student):
    """Magics, shell lines, display(), a training loop under `if __name__ == '__main__':`,
    cells naming torchgrade or importing its course code, torchgrade's cells without their
    metadata, student code in a cell with a torchgrade_ id and (in nbgrader's layout) a print
    flood do not matter: every check has the status and feedback it has for the .py file."""
    report, py = graded[student], graded["py_honest"]
    assert report.score == py.score == report.max_score == 10, report.submission_error
    assert _statuses(report) == _statuses(py)
    assert [c.feedback for c in report.checks] == [c.feedback for c in py.checks]


@pytest.mark.slow
def test_the_report_names_every_cell_left_out(graded):
    """In the JSON report, on the HTML page, and nothing of the kind for a .py file."""
    assert graded["nb_honest"].extra["notebook"] == {
        "cells_run": [2, 3, 4, 5, 6, 7, 9, 12],
        "cells_left_out": [{"cell": 8, "why": "a %%bash cell magic (not Python)"},
                           {"cell": 10, "why": "torchgrade's setup cell, unchanged"},
                           {"cell": 11, "why": "a torchgrade test cell, unchanged"},
                           {"cell": 13, "why": "empty"}],
        "notes": [{"cell": 12, "note": nbcode.select(HONEST, "toy.ipynb", DIGESTS).notes[0][1]}]}
    page = render_student_html(graded["nb_honest"])
    assert "cell 10 left out: torchgrade&#39;s setup cell, unchanged" in page
    assert "cells run as your code: 2-7, 9, 12" in page
    notes = [n["note"] for n in graded["nb_imitates"].extra["notebook"]["notes"]]
    assert notes[0].startswith("is torchgrade's setup cell torchgrade_setup without")
    assert notes[1].startswith("has the id of a torchgrade cell (torchgrade_total)")
    assert "notebook" not in graded["py_honest"].extra
    assert "Your notebook" not in render_student_html(graded["py_honest"])


@pytest.mark.slow
def test_does_not_define_says_which_cells_ran(graded):
    feedback = {c.name: c.feedback for c in graded["nb_missing_total"].checks}
    said = ("toy.ipynb does not define 'total' (cells run: 1-2; left out: cell 3 (a %%bash "
            "cell magic (not Python)), cell 4 (torchgrade's setup cell, unchanged), cell 5 "
            "(a torchgrade test cell, unchanged))")
    assert any(said in f for f in feedback.values()), feedback


@pytest.mark.slow
def test_print_flood_is_capped(graded):
    output = graded["nbgrader_layout"].student_output
    assert "epoch 0 loss" in output and len(output) < 100_000


@pytest.mark.slow
def test_tampered_test_cells_change_nothing(graded):
    """Raised points, a check replaced by `pass`, a "test cell" claiming points, the setup
    cell edited (so it runs, and checks nothing): the notebook scores what the stub scores."""
    report, stub = graded["nb_tampered"], graded["py_stub"]
    assert report.score == stub.score and report.max_score == stub.max_score == 10
    assert _statuses(report) == _statuses(stub)


@pytest.mark.slow
@pytest.mark.parametrize("student, says", [
    ("nb_broken_json", "JSON is broken at line 1"),
    ("nb_syntax_error", "toy.ipynb [cell "),
    ("nb_runtime_error", "dataset not found"),
    ("nb_trains_forever", "if __name__ == '__main__':"),
])
def test_broken_notebooks_get_a_report_saying_what_to_fix(graded, student, says):
    report = graded[student]
    assert says in report.submission_error, report.submission_error
    assert report.score == 0 and len(report.checks) == 5
    assert "torchgrade failed" not in report.submission_error  # never an internal error


@pytest.mark.slow
def test_errors_in_cells_name_the_cell(graded):
    n = len(split(REFERENCE)) + 1  # the extra cell, numbered as Jupyter shows it
    assert f"toy.ipynb [cell {n}]" in graded["nb_syntax_error"].submission_error
    assert f"toy.ipynb [cell {n}]" in graded["nb_runtime_error"].submission_error
    assert f"the notebook's cells run: 1-{n}; left out: none" in \
        graded["nb_runtime_error"].submission_error
    assert "running the notebook's code cells took longer than" in \
        graded["nb_trains_forever"].submission_error
