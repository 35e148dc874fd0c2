"""Tests for the notebook versions (``torchgrade.notebooks``): every generated nbgrader source
notebook is valid nbformat with the public checks' points, and, with the real nbgrader CLI in a
temporary course directory, ``generate_assignment`` gives a student version without any
solution line whose checks fail, while the source notebook passes ``nbgrader validate``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from torchgrade import contract, nbcode
from torchgrade.author import TEMPLATE, marked, plan
from torchgrade.leaks import _telling
from torchgrade.markers import split_solution
from torchgrade.notebooks import (
    BEGIN,
    END,
    NOTEBOOKS,
    SETUP_ID,
    TEST_PREFIX,
    PublicResults,
    code_cells,
    harness_cells,
    harness_digests,
    public_checks,
)

REPO = Path(__file__).resolve().parents[1]
E2E = "nt_xent"  # the assignment whose public checks are quickest (about 20 s)


@pytest.fixture(scope="module")
def the_plan():
    return plan(REPO)


def _cells(the_plan, name: str) -> list[dict]:
    return json.loads(the_plan.files[f"{NOTEBOOKS}/source/{name}/{name}.ipynb"])["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def test_every_notebook_is_valid_nbformat_with_the_public_points(the_plan):
    nbformat = pytest.importorskip("nbformat")
    assert f"{NOTEBOOKS}/nbgrader_config.py" in the_plan.files
    for a in marked(REPO)[0]:
        rel = f"{NOTEBOOKS}/source/{a.name}/{a.name}.ipynb"
        nb = nbformat.reads(the_plan.files[rel].decode(), as_version=4)
        nbformat.validate(nb)
        meta = [c.metadata["nbgrader"] for c in nb.cells]
        ids = [m["grade_id"] for m in meta]
        assert len(set(ids)) == len(ids), ids
        assert [c.id for c in nb.cells] == ids  # stable ids: the grade ids
        assert all(c.outputs == [] and c.execution_count is None
                   for c in nb.cells if c.cell_type == "code")
        tests = [m for m in meta if m["grade"]]
        checks = public_checks(a)
        assert [m["grade_id"] for m in tests] == [TEST_PREFIX + c.name for c in checks]
        assert all(m["locked"] and not m["solution"] for m in tests)
        rubric = tomllib.loads(the_plan.files[f"{TEMPLATE}/graders/{a.name}/rubric.toml"]
                               .decode())
        assert sum(m["points"] for m in tests) == rubric["assignment"]["total_points"], a.name
        assert SETUP_ID in ids and ids.index(SETUP_ID) < ids.index(tests[0]["grade_id"])
        # Canonical JSON (what nbformat writes): building again gives the same bytes.
        assert the_plan.files[rel].decode() == json.dumps(
            json.loads(the_plan.files[rel]), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert plan(REPO).files == the_plan.files


def _stubbed(code: str) -> str:
    """What nbgrader's ClearSolutions makes of a cell (its default code stub)."""
    out, inside = [], False
    for line in code.splitlines():
        if BEGIN in line:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + "# YOUR CODE HERE", indent + "raise NotImplementedError()"]
            inside = True
        elif END in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def test_code_cells_keep_the_reference_and_put_every_solution_line_in_a_region():
    for a in marked(REPO)[0]:
        source = a.solution_file.read_text(encoding="utf-8")
        split = split_solution(source)
        cells = code_cells(source)
        code = "\n\n\n".join(text for _, text, _ in cells)
        compile(code, f"{a.name} (source notebook)", "exec")
        student = "\n\n\n".join(_stubbed(text) for _, text, _ in cells)
        compile(student, f"{a.name} (student notebook)", "exec")
        secret = {s.text for s in split.secret if _telling(s.text)} - split.public_lines
        shown = {line.strip() for line in student.splitlines()}
        assert not secret & shown, sorted(secret & shown)[:5]
        # Every top-level function or class of the stub, with its student docstring.
        stub_tree = ast.parse(split.stub)
        student_tree = ast.parse(student)
        docs = {n.name: ast.get_docstring(n) for n in student_tree.body
                if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        for node in stub_tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                assert docs.get(node.name) == ast.get_docstring(node), (a.name, node.name)
        assert all(is_solution == (BEGIN in text) for _, text, is_solution in cells)


def test_module_source_leaves_out_magics_and_untouched_helper_stubs():
    def cell(grade_id: str, source: str) -> dict:
        return {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": grade_id}},
                "source": source, "outputs": [], "execution_count": None}

    nb = {"cells": [cell("imports", "import math\n%matplotlib inline"),
                    cell("helpers_1", "# optional\n# YOUR CODE HERE\nraise NotImplementedError()"),
                    cell("helpers_2", "def _h():\n    return 1"),
                    {"cell_type": "markdown", "metadata": {}, "source": "x = 1"},
                    cell("f", ["def f():\n", "    return _h()"])]}
    assert nbcode.module_source(json.dumps(nb), "a.ipynb") == \
        "import math\npass  # IPython line left out\n\n\ndef _h():\n    return 1\n\n\n" \
        "def f():\n    return _h()\n"


def test_the_grader_knows_exactly_the_notebooks_own_cells(the_plan):
    """harness_cells (what the grader hands the worker, as digests) are exactly the setup and
    test cells of each generated notebook; with them every other code cell runs, in the source
    notebook and in the student version (where only the untouched helpers stubs are left
    out), and in the source notebook the cells that run are the reference."""
    for a in marked(REPO)[0]:
        cells = _cells(the_plan, a.name)
        ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells]
        generated = {gid: _text(c) for gid, c in zip(ids, cells, strict=True)
                     if gid.startswith(TEST_PREFIX)}
        assert harness_cells(a) == generated, a.name
        code = [(n, gid) for n, (gid, c) in enumerate(zip(ids, cells, strict=True), start=1)
                if c["cell_type"] == "code"]
        nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        selection = nbcode.select(json.dumps(nb), f"{a.name}.ipynb", harness_digests(a))
        assert [c.number for c in selection.cells] == [
            n for n, gid in code if not gid.startswith(TEST_PREFIX)], a.name
        assert [n for n, _ in selection.left_out] == [
            n for n, gid in code if gid.startswith(TEST_PREFIX)] and not selection.notes
        student = [{**c, "source": _stubbed(_text(c))} if c["metadata"]["nbgrader"]["solution"]
                   else c for c in cells]
        left = nbcode.select(json.dumps({**nb, "cells": student}), f"{a.name}.ipynb",
                             harness_digests(a)).left_out
        assert {why for _, why in left} <= {"an untouched optional helpers stub",
                                            "torchgrade's setup cell, unchanged",
                                            "a torchgrade test cell, unchanged"}
        assert len(left) == len(generated) + sum(gid.startswith("helpers_") for gid in ids)


def test_public_results_pass_or_fail_with_the_feedback(capsys):
    results = PublicResults({"checks": [
        {"name": "test_a", "status": "passed", "points": 5, "max_points": 5,
         "description": "a works", "feedback": ""},
        {"name": "test_b", "status": "failed", "points": 0, "max_points": 3,
         "description": "b works", "feedback": "expected 1, got 2"}]}, "")
    results.expect("test_a")
    assert "PASSED 5/5 test_a: a works" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"FAILED 0/3 test_b: b works\nexpected 1, got 2"):
        results.expect("test_b")
    with pytest.raises(AssertionError, match="test_c: no result"):
        results.expect("test_c")


# -- the real nbgrader ------------------------------------------------------------------------
def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "TORCHGRADE_ROOT": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(bin_dir / "nbgrader"), *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_nbgrader_releases_a_student_notebook_without_the_solution(the_plan, tmp_path):
    """generate_assignment with nbgrader itself; validate passes on the source notebook (the
    reference passes every public check) and fails on the student version (the stub)."""
    if shutil.which("nbgrader", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("nbgrader is not installed (requirements.txt has it)")
    course = tmp_path / "course"
    source = course / "source" / E2E / f"{E2E}.ipynb"
    source.parent.mkdir(parents=True)
    source.write_bytes(the_plan.files[f"{NOTEBOOKS}/source/{E2E}/{E2E}.ipynb"])
    (course / "nbgrader_config.py").write_bytes(the_plan.files[f"{NOTEBOOKS}/nbgrader_config.py"])

    done = _nbgrader(course, "generate_assignment", E2E, "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    release = course / "release" / E2E / f"{E2E}.ipynb"
    cells = json.loads(release.read_text(encoding="utf-8"))["cells"]
    text = "\n".join(_text(c) for c in cells)

    a = next(a for a in marked(REPO)[0] if a.name == E2E)
    split = split_solution(a.solution_file.read_text(encoding="utf-8"))
    secret = {s.text for s in split.secret if _telling(s.text)} - split.public_lines
    leaked = [line.strip() for line in text.splitlines() if line.strip() in secret]
    assert not leaked, leaked[:5]
    assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
    # The handout as the README has it (budget table and API reference in place), and the
    # student docstrings of the stub.
    handout = contract.handout(a)
    markdown = "\n\n".join(_text(c) for c in cells if c["cell_type"] == "markdown")
    assert all(line in markdown for line in handout.splitlines() if line.strip())
    for node in ast.parse(split.stub).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            assert ast.get_docstring(node, clean=False).splitlines()[0] in text, node.name
    # The test cells, with their points.
    tests = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"]
             for c in cells if c["metadata"].get("nbgrader", {}).get("grade")}
    assert tests == {TEST_PREFIX + c.name: c.points for c in public_checks(a)}

    ok = _nbgrader(course, "validate", str(source))
    assert ok.returncode == 0 and "Success! Your notebook passes all the tests." in ok.stdout, \
        ok.stdout + ok.stderr
    stub = _nbgrader(course, "validate", str(release))
    out = stub.stdout + stub.stderr
    assert "Success!" not in out, out
    failed = set(re.findall(r"torchgrade_results\.expect\(\"(\w+)\"\)", out))
    assert failed == {c.name for c in public_checks(a)}, out[-3000:]
    assert "NotImplementedError" in out
