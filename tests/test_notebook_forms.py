"""Does the form of correct work change its grade? (A .py file, a notebook of many cells, or a
notebook holding the whole module in one cell, whatever the cells mention.)

For every assignment, the reference's code is graded three ways in ONE batch:

- ``py``: ``solutions/<a>/<module>.py`` with a few lines appended (:func:`course_code`) that
  import course code (``torchgrade.course...``) and name torchgrade in a docstring and a
  comment, as a student who follows the handout writes;
- ``nb_cells``: the notebook students receive (``notebooks/source/<a>/<a>.ipynb``, as
  ``author build`` generates it, with the metadata nbgrader's ``generate_assignment`` adds;
  ``tests/test_nbgrader_release.py`` runs the real nbgrader), every solution cell holding the
  reference's code with a comment naming torchgrade, and a cell of those same course-code
  lines after the imports;
- ``nb_one_cell``: the whole of ``py``'s module in one code cell, before torchgrade's setup
  and test cells.

Each notebook must get exactly the .py's checks, statuses, points and feedback, and its report
must name torchgrade's setup and test cells, unchanged, as the only cells left out.

Cost (CI must stay small): graded with ``skip_kinds=("training",)``, the slow checks that
exercise the code's training rather than its form (the audit grades the reference with every
check: tests/test_audit_shipped.py); hidden checks run. Seven batches of three gradings at
two jobs: about 75 s in all on a busy two-core machine (clip_search, which loads its CLIP
in every worker, a third of it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from torchgrade.assignment import available, load
from torchgrade.batch import grade_batch
from torchgrade.notebooks import TEST_PREFIX, notebook, public_checks
from torchgrade.report import Report
from torchgrade.runner import Options

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# Course code each assignment's students may import: (module of torchgrade.course, a name).
# clip_search's stub tells students to serve clip_ui.PAGE; mae_masking's model is TinyMAE.
COURSE = {
    "nt_xent": ("encoders", "SmallConvEncoder"),
    "vit_attention": ("shapes", "make_shapes"),
    "mae_masking": ("mae", "TinyMAE"),
    "ddpm_sampler": ("toy2d", "GaussianOracle"),
    "wgan_gp": ("wgan", "ToyCritic"),
    "clip_search": ("clip_ui", "PAGE"),
    "video_action": ("video", "ACTIONS"),
}
MENTION = "# My answer, as torchgrade's handout asks (torchgrade.course holds the course code).\n"


def course_code(name: str) -> str:
    module, attr = COURSE[name]
    return (f'"""Course code torchgrade ships: torchgrade.course.{module}.{attr}."""\n'
            f"from torchgrade.course.{module} import {attr}  # torchgrade's course code\n\n\n"
            f"def _course_{attr.lower()}():\n"
            f'    """torchgrade.course.{module}.{attr}, as the handout says."""\n'
            f"    return {attr}\n")


def _lines(text: str) -> list[str]:
    return text.splitlines(True)


def _released(cell: dict) -> dict:
    """A cell with the metadata nbgrader's generate_assignment gives it (its source is left
    as it is: torchgrade's cells stay exactly as generated)."""
    meta = cell["metadata"].get("nbgrader")
    if meta is None:
        return cell
    extra = {"deletable": False} | ({"editable": False} if meta["locked"] else {})
    return {**cell, "metadata": {**cell["metadata"], **extra, "nbgrader": {
        **meta, "cell_type": cell["cell_type"], "checksum": "5e" * 16}}}


def forms(name: str) -> dict[str, str]:
    """student -> file text: the three forms of the reference's code (module docstring)."""
    a = load(name, ROOT)
    reference = a.solution_file.read_text(encoding="utf-8")
    module = reference.rstrip("\n") + "\n\n\n" + course_code(name)
    source = notebook(a)  # what author build writes to notebooks/source/<a>/<a>.ipynb
    cells = []
    for cell in map(_released, source["cells"]):
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            cell = {**cell, "source": _lines(MENTION + "".join(cell["source"]))}
        cells.append(cell)
        if meta.get("grade_id") == "imports":
            cells.append({"cell_type": "code", "execution_count": None, "metadata": {},
                          "outputs": [], "source": _lines(course_code(name))})
    harness = [c for c in cells if c["metadata"].get("nbgrader", {}).get(
        "grade_id", "").startswith(TEST_PREFIX)]
    one_cell = [cells[0], {"cell_type": "code", "execution_count": None, "metadata": {},
                           "outputs": [], "source": _lines(MENTION + module)}, *harness]
    return {f"py/{a.module}.py": module,
            f"nb_cells/{name}.ipynb": json.dumps({**source, "cells": cells}, indent=1),
            f"nb_one_cell/{name}.ipynb": json.dumps({**source, "cells": one_cell}, indent=1)}


def _checks(report: Report) -> list[tuple]:
    return [(c.name, c.status, c.points, c.max_points, c.feedback) for c in report.checks]


@pytest.mark.parametrize("name", available(ROOT))
def test_correct_work_gets_full_marks_in_every_form(name, tmp_path):
    submissions = tmp_path / "submissions"
    for rel, text in forms(name).items():
        (submissions / rel).parent.mkdir(parents=True, exist_ok=True)
        (submissions / rel).write_text(text, encoding="utf-8")
    batch = grade_batch(load(name, ROOT), submissions, tmp_path / "reports",
                        options=Options(skip_kinds=("training",)), jobs=2, use_cache=False)
    graded = {r.student: r for r in batch.reports}
    py = graded["py"]
    assert py.score == py.max_score > 0 and not py.submission_error, _checks(py)
    for form in ("nb_cells", "nb_one_cell"):
        report = graded[form]
        assert not report.submission_error, report.submission_error
        assert _checks(report) == _checks(py), form
        cells = report.extra["notebook"]
        assert {e["why"] for e in cells["cells_left_out"]} == {
            "torchgrade's setup cell, unchanged", "a torchgrade test cell, unchanged"}, cells
        assert not cells["notes"], cells["notes"]
    one = graded["nb_one_cell"].extra["notebook"]
    harness = 1 + len(public_checks(load(name, ROOT)))  # the setup cell, one per public check
    assert one["cells_run"] == [2]
    assert [e["cell"] for e in one["cells_left_out"]] == list(range(3, 3 + harness))
    shutil.rmtree(tmp_path, ignore_errors=True)
