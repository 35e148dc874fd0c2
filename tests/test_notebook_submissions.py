"""Notebook submissions, graded for real: ``torchgrade grade`` on ``<student>/<a>.ipynb`` and
on nbgrader's ``submitted/<student>/<a>/<a>.ipynb`` layout.

The worker runs the notebook's code cells inside the sandbox (torchgrade.nbcode decides which);
the grader never parses the student's file. The toy assignment's notebooks below are graded in
ONE batch beside the same code as a ``.py`` file, then one small test per question: is an honest
notebook (with magics, shell lines, a guarded training loop, a print flood) graded exactly like
the .py, do tampered test cells change nothing, and does each broken notebook (invalid JSON, a
cell that trains forever, a syntax or runtime error in a cell) end in a report saying what to
fix?
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
from torchgrade.report import Report
from torchgrade.runner import Options

HERE = Path(__file__).resolve().parent
COURSE = HERE / "toy_course"
REFERENCE = (COURSE / "solutions" / "toy" / "toy.py").read_text(encoding="utf-8")
STUB = (COURSE / "assignments" / "toy" / "toy.py").read_text(encoding="utf-8")


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


SETUP = cell('from torchgrade.notebooks import run_public_checks\n'
             'torchgrade_results = run_public_checks("toy", "toy.ipynb")\n',
             grade_id="torchgrade_setup", locked=True)


def grade_cell(check: str, points: float, **meta: object) -> dict:
    return cell(f'torchgrade_results.expect("{check}")\n', grade_id=f"torchgrade_{check}",
                grade=True, points=points, locked=True, **meta)


HONEST = notebook(
    markdown("# Toy\nScale a tensor."),
    *split(REFERENCE)[:1],
    cell("%matplotlib inline\n!pip install --no-index nothing-at-all\n"),
    *split(REFERENCE)[1:],
    cell("if True:\n    %time x = 1\nprint(scale(torch.ones(2), 2.0))\n"
         "display(total(torch.ones(3)))\n"),
    cell("%%bash\necho this cell is shell, not Python\n"),
    cell("if __name__ == '__main__':  # true in Jupyter, not when grading\n"
         "    while True:  # training forever\n        pass\n"),
    SETUP,
    grade_cell("test_scale_public", 2),
    # a test cell whose nbgrader metadata was stripped: still recognised, never run
    cell('torchgrade_results.expect("test_total_public")\n'),
)
SUBMISSIONS = {
    "py_honest/toy.py": REFERENCE,
    "py_stub/toy.py": STUB,
    "nb_honest/toy.ipynb": HONEST,
    # nbgrader's layout, and a print flood in a top-level cell
    "nbgrader_layout/toy/toy.ipynb": notebook(
        *json.loads(HONEST)["cells"],
        cell("for i in range(300_000):\n    print('epoch', i, 'loss', 0.5)\n")),
    # The stub, with its test cells edited: points raised, checks replaced by `pass`, one
    # deleted, and a "test cell" holding a solution. None of it may change the score.
    "nb_tampered/toy.ipynb": notebook(
        *split(STUB), SETUP,
        grade_cell("test_scale_public", 1000),
        cell("pass\n", grade_id="torchgrade_test_total_public", grade=True, points=1000),
        cell("def scale(x, s):\n    return x * s\n\n\ndef total(x):\n    return x.sum()\n",
             grade_id="torchgrade_test_scale_hidden", grade=True, points=10),
    ),
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
def test_code_cells_leave_out_torchgrade_cells_by_id_and_by_content():
    cells = nbcode.code_cells(HONEST, "toy.ipynb")
    text = "".join(c.source for c in cells)
    assert "torchgrade" not in text
    assert "def scale" in text and "def total" in text and "echo" not in text
    assert [c.number for c in cells] == [2, 3, 4, 5, 6, 8]  # as Jupyter numbers them
    assert "    pass  # IPython line left out\n" in text  # an indented magic stays valid


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
@pytest.mark.parametrize("student", ["nb_honest", "nbgrader_layout"])
def test_honest_notebooks_are_graded_like_the_same_code_as_a_py_file(graded, student):
    """Magics, shell lines, display(), a training loop under `if __name__ == '__main__':` and
    (in nbgrader's layout) a print flood do not matter: every check has the status it has for
    the .py file."""
    report, py = graded[student], graded["py_honest"]
    assert report.score == py.score == report.max_score == 10, report.submission_error
    assert _statuses(report) == _statuses(py)


@pytest.mark.slow
def test_print_flood_is_capped(graded):
    output = graded["nbgrader_layout"].student_output
    assert "epoch 0 loss" in output and len(output) < 100_000


@pytest.mark.slow
def test_tampered_test_cells_change_nothing(graded):
    """Raised points, checks replaced by `pass`, a deleted test cell and a solution hidden in
    a test cell: the notebook scores exactly what the stub scores."""
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
    assert "running the notebook's code cells took longer than" in \
        graded["nb_trains_forever"].submission_error
