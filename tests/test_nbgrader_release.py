"""``torchgrade nbgrader release``: torchgrade's reports into a real nbgrader course.

Reports are built directly (their contract is pinned elsewhere), so these tests exercise the
release itself: the gradebook rows (one per student and check, updated on a second run), late
penalties from nbgrader's plugin, the feedback pages (hidden checks summarised, never shown),
nbgrader's release_feedback, and bad input. One test drives the real nbgrader CLI end to end:
release_assignment, fetch_assignment and submit as a student, collect, then torchgrade's
release twice, fetch_feedback as the student, and ``nbgrader export`` against the class CSV.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from torchgrade.cli import main
from torchgrade.nbgrader_release import (
    ReleaseError,
    hidden_summary,
    load_reports,
    release,
    render_feedback,
)
from torchgrade.render.csv_ import write_class_csv
from torchgrade.report import CheckResult, Report, write_report

pytest.importorskip("nbgrader")
from nbgrader import api  # noqa: E402 - only once nbgrader is known to be installed

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "toy"
SECRET = "the hidden input was 4242"
BIN = Path(sys.executable).parent
CHECKS = (  # name, max points, visibility, kind
    ("test_shape", 2.0, "public", "shape"),
    ("test_value", 3.0, "public", "value"),
    ("test_hidden_value", 4.0, "hidden", "value"),
    ("test_hidden_grad", 1.0, "hidden", "invariant"),
)


def make_report(student: str, passed: set[str], assignment: str = ASSIGNMENT) -> Report:
    checks = []
    for name, points, visibility, kind in CHECKS:
        ok = name in passed
        feedback = "" if ok else (f"off by 0.5: {SECRET}" if visibility == "hidden"
                                  else f"{name}: expected 1.0, got 2.0")
        checks.append(CheckResult(name=name, status="passed" if ok else "failed",
                                  points=points if ok else 0.0, max_points=points,
                                  visibility=visibility, kind=kind, feedback=feedback,
                                  description=f"what {name} checks"))
    return Report(student=student, assignment=assignment,
                  score=sum(c.points for c in checks), max_score=10.0, profile="cpu",
                  device="cpu", sandbox="none", submission_sha256="ab" * 32,
                  grader_version="toy-1", duration_s=1.0, checks=tuple(checks),
                  created_at="2026-12-01T12:00:00+00:00", torchgrade_version="test")


SCORES = {  # student -> checks passed
    "alice": {"test_shape", "test_value", "test_hidden_value", "test_hidden_grad"},
    "bob": {"test_shape", "test_hidden_value"},
    "carol": {"test_value"},
}


def write_reports(folder: Path, scores: dict[str, set[str]] = SCORES) -> list[Report]:
    reports = [make_report(s, p) for s, p in scores.items()]
    for r in reports:
        write_report(r, folder / r.student / f"{r.assignment}.json")
    write_class_csv(reports, folder / f"{ASSIGNMENT}.csv")
    return reports


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> Path:
    """An empty gradebook, made once: nbgrader runs `alembic` (seconds) for each new one."""
    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{BIN}{os.pathsep}{old}"
    try:
        api.Gradebook(f"sqlite:///{path}", course_id="tgcourse").close()
    finally:
        os.environ["PATH"] = old
    return path


def make_course(tmp: Path, extra: str = "", gradebook: Path | None = None) -> Path:
    course = tmp / "course"
    course.mkdir()
    if gradebook is not None:
        shutil.copyfile(gradebook, course / "gradebook.db")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'tgcourse'\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.Exchange.root = {str(tmp / 'exchange')!r}\n"
        "c.Exchange.path_includes_course = False\n" + extra, encoding="utf-8")
    (tmp / "exchange").mkdir()
    os.chmod(tmp / "exchange", 0o777)
    return course


def _as(tmp_path: Path, student: str) -> list[str]:
    """nbgrader's options for acting as ``student`` against the test's exchange."""
    return [f"--student={student}", "--CourseDirectory.course_id=tgcourse",
            f"--Exchange.root={tmp_path / 'exchange'}", "--Exchange.path_includes_course=False",
            f"--Exchange.cache={tmp_path / (student + '-cache')}"]


def fake_submission(course: Path, student: str, timestamp: str) -> None:
    """What `nbgrader collect` leaves in submitted/<student>/<assignment>/."""
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(_notebook()), encoding="utf-8")
    (folder / "timestamp.txt").write_text(timestamp, encoding="utf-8")
    (folder / "submission_secret.txt").write_text(f"secret-of-{student}", encoding="utf-8")


def _notebook() -> dict:
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1",
                       "metadata": {}, "outputs": [], "source": "x = 1"}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def gradebook_rows(course: Path) -> dict:
    with api.Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="tgcourse") as gb:
        db = gb.db
        out = {
            "assignments": db.query(api.Assignment).count(),
            "students": sorted(s.id for s in db.query(api.Student)),
            "submissions": db.query(api.SubmittedAssignment).count(),
            "grades": db.query(api.Grade).count(),
            "comments": db.query(api.Comment).count(),
            "grade_cells": sorted((c.name, c.max_score) for c in db.query(api.GradeCell)),
            "scores": {s.student.id: (s.score, s.late_submission_penalty)
                       for s in db.query(api.SubmittedAssignment)},
            "max_score": gb.find_assignment(ASSIGNMENT).max_score,
        }
        if "carol" in out["students"]:
            out["comment"] = gb.find_comment("test_value", ASSIGNMENT, ASSIGNMENT,
                                             "carol").auto_comment
        return out


# -- the feedback page ----------------------------------------------------------------------------
def test_feedback_page_shows_public_feedback_and_only_a_summary_of_hidden_checks():
    page = render_feedback(make_report("bob", SCORES["bob"]))
    assert "test_value: expected 1.0, got 2.0" in page  # a public check's feedback
    assert "Hidden checks: 1 of 2 passed, 4/5 points." in page
    assert "value checks: 1 of 1 passed" in page and "invariant checks: 0 of 1 passed" in page
    for name, _, visibility, _ in CHECKS:
        assert (name in page) == (visibility == "public"), name
    assert SECRET not in page and "off by" not in page
    assert "x&lt;b&gt;" in render_feedback(make_report("x<b>", set()))  # escaped
    assert hidden_summary(make_report("a", set()))[0] == \
        "Hidden checks: 0 of 2 passed, 0/5 points."


def test_help_teaches_the_release(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["nbgrader", "release", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for word in ("--course-dir", "--reports", "--duedate", "--no-exchange", "fetch_feedback",
                 "examples:", "feedback/<student>/NAME/<notebook>.html"):
        assert word in out, word


# -- bad input -----------------------------------------------------------------------------------
def test_bad_reports_are_skipped_with_a_message_and_a_missing_folder_is_an_error(tmp_path,
                                                                                 capsys):
    with pytest.raises(ReleaseError, match="does not exist"):
        load_reports(tmp_path / "nope", ASSIGNMENT)
    reports = tmp_path / "reports"
    write_reports(reports, {"alice": set()})
    (reports / "zed").mkdir()
    (reports / "zed" / f"{ASSIGNMENT}.json").write_text("{not json", encoding="utf-8")
    other = make_report("yan", set(), assignment="nt_xent")
    write_report(other, reports / "yan" / f"{ASSIGNMENT}.json")
    loaded, skipped = load_reports(reports, ASSIGNMENT)
    assert [r.student for r in loaded] == ["alice"]
    assert len(skipped) == 2 and "zed" in skipped[1] and "'nt_xent', not 'toy'" in skipped[0]

    course = make_course(tmp_path)
    with pytest.raises(ReleaseError, match="--duedate 'soon' is not a date"):
        release(ASSIGNMENT, course, reports, duedate="soon")
    code = main(["nbgrader", "release", ASSIGNMENT, "--course-dir", str(course),
                 "--reports", str(reports), "--no-exchange"])
    err = capsys.readouterr().err
    assert code == 1 and "skipped" in err and "2 report(s) skipped" in err
    assert gradebook_rows(course)["students"] == ["alice"]
    assert main(["nbgrader", "release", ASSIGNMENT, "--course-dir", str(course),
                 "--reports", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_reports_from_different_graders_write_nothing(tmp_path):
    reports = tmp_path / "reports"
    write_reports(reports, {"alice": set()})
    r = make_report("bob", set())
    changed = r.checks[0].__class__(**{**r.checks[0].__dict__, "max_points": 5.0})
    r = Report(**{**r.__dict__, "checks": (changed, *r.checks[1:]), "max_score": 13.0})
    write_report(r, reports / "bob" / f"{ASSIGNMENT}.json")
    course = make_course(tmp_path)
    with pytest.raises(ReleaseError, match="test_shape is worth 2 in alice's report but 5"):
        release(ASSIGNMENT, course, reports)
    assert not (course / "gradebook.db").exists()
    assert not (course / "feedback").exists()


# -- gradebook, late penalty, feedback, exchange (in process) -----------------------------------
def test_release_twice_updates_rows_applies_late_penalties_and_releases(tmp_path,
                                                                       empty_gradebook):
    course = make_course(tmp_path, "c.LateSubmissionPlugin.penalty_method = 'zero'\n",
                         empty_gradebook)
    reports = tmp_path / "reports"
    write_reports(reports)
    fake_submission(course, "alice", "2026-11-30 10:00:00.000000 UTC")
    fake_submission(course, "bob", "2026-12-02 10:00:00.000000 UTC")  # a day late
    due = "2026-12-01 10:00:00 UTC"

    first = release(ASSIGNMENT, course, reports, duedate=due)
    assert first.created_assignment and first.created_students == ("alice", "bob", "carol")
    assert first.late_penalties == {"bob": 6.0}  # penalty_method zero: all of it
    assert first.released == ("alice", "bob") and first.not_released == ("carol",)
    rows = gradebook_rows(course)
    assert rows["submissions"] == 3 and rows["grades"] == 3 * len(CHECKS)
    assert rows["comments"] == 3 * len(CHECKS)  # a solution cell per check holds the comment
    assert rows["grade_cells"] == sorted((n, p) for n, p, _, _ in CHECKS)
    assert rows["max_score"] == 10.0
    assert rows["scores"] == {"alice": (10.0, 0.0), "bob": (6.0, 6.0), "carol": (3.0, 0.0)}
    assert rows["comment"].startswith("torchgrade: passed, 3/3")

    # The feedback pages in nbgrader's layout, and in the exchange under the secret's hash.
    for student in ("alice", "bob", "carol"):
        page = course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
        assert page.is_file() and SECRET not in page.read_text(encoding="utf-8")
    assert (course / "feedback" / "bob" / ASSIGNMENT / "submission_secret.txt").is_file()
    assert "late submission penalty: 6" in (
        course / "feedback" / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    released = sorted((tmp_path / "exchange" / "tgcourse" / "feedback").glob("*.html"))
    assert len(released) == 2

    # Again, with carol now passing everything: the same rows, her grade updated.
    write_reports(reports, {**SCORES, "carol": SCORES["alice"]})
    second = release(ASSIGNMENT, course, reports)  # the duedate stays
    assert not second.created_assignment and second.created_students == ()
    again = gradebook_rows(course)
    assert {k: again[k] for k in ("submissions", "grades", "comments", "grade_cells")} == \
        {k: rows[k] for k in ("submissions", "grades", "comments", "grade_cells")}
    assert again["scores"]["carol"] == (10.0, 0.0) and again["scores"]["bob"] == (6.0, 6.0)
    assert len(sorted((tmp_path / "exchange" / "tgcourse" / "feedback").glob("*.html"))) == 2


def test_generate_assignments_test_cells_hold_the_public_checks(tmp_path, empty_gradebook):
    """A notebook made by `nbgrader generate_assignment` from notebooks/source/ already has a
    grade cell torchgrade_<check> per public check: those cells get the points (nbgrader
    keeps no comment on them), so nothing is counted twice. Its cells stay those of its file,
    so the hidden checks get a notebook of their own, toy_torchgrade."""
    course = make_course(tmp_path, gradebook=empty_gradebook)
    with api.Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="tgcourse") as gb:
        gb.add_assignment(ASSIGNMENT)
        gb.add_notebook(ASSIGNMENT, ASSIGNMENT)
        gb.add_source_cell("imports", ASSIGNMENT, ASSIGNMENT, cell_type="code",
                           source="import torch", checksum="0")
        for name, points, visibility, _ in CHECKS:
            if visibility == "public":
                gb.add_grade_cell(f"torchgrade_{name}", ASSIGNMENT, ASSIGNMENT,
                                  max_score=points, cell_type="code")
        gb.add_student("bob")
        with gb.db.no_autoflush:  # nbgrader's add_submission warns otherwise
            gb.add_submission(ASSIGNMENT, "bob")  # e.g. collected and autograded earlier
        assert gb.find_grade("torchgrade_test_shape", ASSIGNMENT, ASSIGNMENT, "bob")
    reports = tmp_path / "reports"
    write_reports(reports, {"bob": SCORES["bob"], "carol": SCORES["carol"]})
    result = release(ASSIGNMENT, course, reports, exchange=False)
    assert result.created_students == ("carol",) and not result.created_assignment
    assert result.notebooks == ("toy", "toy_torchgrade")
    assert release(ASSIGNMENT, course, reports, exchange=False).created_students == ()
    with api.Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="tgcourse") as gb:
        cells = {c.name: c.notebook.name for c in gb.db.query(api.GradeCell)}
        assert cells == {"torchgrade_test_shape": "toy", "torchgrade_test_value": "toy",
                         "test_hidden_grad": "toy_torchgrade",
                         "test_hidden_value": "toy_torchgrade"}
        assert {c.notebook.name for c in gb.db.query(api.SolutionCell)} == {"toy_torchgrade"}
        assert gb.find_assignment(ASSIGNMENT).max_score == 10.0
        assert gb.find_grade("torchgrade_test_shape", ASSIGNMENT, ASSIGNMENT,
                             "bob").auto_score == 2.0
        assert {s.student.id: s.score for s in gb.assignment_submissions(ASSIGNMENT)} == \
            {"bob": 6.0, "carol": 3.0}
        assert gb.db.query(api.Grade).count() == 2 * len(CHECKS)
        assert gb.db.query(api.Comment).count() == 2 * 2  # the hidden checks' solution cells


# -- the real nbgrader CLI ------------------------------------------------------------------------
# nbgrader's command costs seconds just to start on a busy machine, so consecutive commands run
# in one process: each step is exactly what the `nbgrader` script does (NbGraderApp with that
# command line, in that working directory), with nbgrader's config read afresh for each.
_STEPS = """
import json, os, sys
from jupyter_core.application import NoStart
from nbgrader.apps.nbgraderapp import NbGraderApp
for cwd, argv in json.loads(sys.argv[1]):
    os.chdir(cwd)
    print("### nbgrader", *argv, flush=True)
    NbGraderApp.clear_instance()
    app = NbGraderApp.instance()
    app.initialize(argv)
    try:
        app.start()
    except NoStart:  # what a finished subcommand raises; launch_instance swallows it too
        pass
    if app.subapp is not None:
        type(app.subapp).clear_instance()
"""


def _nbgrader(*steps: tuple[Path, list[str]]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    plan = json.dumps([(str(cwd), argv) for cwd, argv in steps])
    done = subprocess.run([sys.executable, "-c", _STEPS, plan], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"nbgrader {plan}:\n{done.stdout}{done.stderr}"
    return done


@pytest.mark.slow
def test_release_with_the_real_nbgrader_cli_then_fetch_feedback_and_export(tmp_path, capsys,
                                                                           empty_gradebook):
    if shutil.which("nbgrader", path=str(BIN)) is None:
        pytest.skip("nbgrader is not installed (requirements.txt has it)")
    course = make_course(tmp_path, gradebook=empty_gradebook)
    release_dir = course / "release" / ASSIGNMENT
    release_dir.mkdir(parents=True)
    (release_dir / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(_notebook()), encoding="utf-8")
    # alice goes through nbgrader: the assignment is released, she fetches and submits it.
    home = tmp_path / "alice"
    home.mkdir()
    student = _as(tmp_path, "alice")
    _nbgrader((course, ["release_assignment", ASSIGNMENT, "--force"]),
              (home, ["fetch_assignment", ASSIGNMENT, *student]),
              (home, ["submit", ASSIGNMENT, *student]),
              (course, ["collect", ASSIGNMENT]))
    assert (course / "submitted" / "alice" / ASSIGNMENT / "timestamp.txt").is_file()
    fake_submission(course, "bob", dt.datetime.now(dt.UTC).strftime(
        "%Y-%m-%d %H:%M:%S.%f UTC"))  # bob's collected submission, laid out by hand
    reports = tmp_path / "reports"
    write_reports(reports)  # carol has a report but no nbgrader submission

    args = ("nbgrader", "release", ASSIGNMENT, "--course-dir", str(course), "--reports",
            str(reports))
    assert main(list(args)) == 0
    out = capsys.readouterr().out
    assert "released to the exchange: 2 student(s)" in out
    assert "not released (no nbgrader submission with timestamp and secret): carol" in out
    rows = gradebook_rows(course)
    assert main(list(args)) == 0
    assert gradebook_rows(course) == rows
    assert rows["submissions"] == 3 and rows["grades"] == 3 * len(CHECKS)

    # alice fetches her feedback with nbgrader; the course exports its grades.
    _nbgrader((home, ["fetch_feedback", ASSIGNMENT, *student]),
              (course, ["export", "--to", str(tmp_path / "grades.csv")]))
    fetched = list((home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
    assert len(fetched) == 1, list(home.rglob("*"))
    page = fetched[0].read_text(encoding="utf-8")
    assert "feedback for alice" in page and "10 / 10" in page and SECRET not in page

    # nbgrader export gives torchgrade's totals.
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as fh:
        exported = {row["student_id"]: row for row in csv.DictReader(fh)
                    if row["assignment"] == ASSIGNMENT}
    with open(reports / f"{ASSIGNMENT}.csv", newline="", encoding="utf-8") as fh:
        ours = {row["student"]: row for row in csv.DictReader(fh)}
    assert exported.keys() == ours.keys() == set(SCORES)
    for name, row in ours.items():
        assert float(exported[name]["score"]) == float(row["score"]), name
        assert float(exported[name]["max_score"]) == float(row["max_score"]), name


# -- the whole path, with a real assignment -------------------------------------------------------
def _function_source(file: Path, name: str) -> str:
    text = file.read_text(encoding="utf-8")
    node = next(n for n in ast.parse(text).body
                if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name)
    return ast.get_source_segment(text, node) + "\n"


def _fill(released: Path, source: Path, replace: dict[str, str] | None = None) -> None:
    """What a student does in Jupyter: every solution cell of the released notebook gets the
    code of the source notebook's cell of the same grade_id (``replace``: other code)."""
    answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"]
               for c in json.loads(source.read_text(encoding="utf-8"))["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")}
    answers.update(replace or {})
    nb = json.loads(released.read_text(encoding="utf-8"))
    for c in nb["cells"]:
        grade_id = c["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            c["source"] = answers[grade_id]
    released.write_text(json.dumps(nb), encoding="utf-8")


def _tamper(released: Path) -> None:
    """The stub left as released, its test cells edited: points raised, checks replaced."""
    nb = json.loads(released.read_text(encoding="utf-8"))
    for c in nb["cells"]:
        meta = c["metadata"].get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 100
            c["source"] = "pass  # nothing to see here\n"
    released.write_text(json.dumps(nb), encoding="utf-8")


@pytest.mark.slow
def test_nt_xent_notebooks_from_generate_assignment_to_export(tmp_path, capsys, empty_gradebook):
    """The real path, with the real nbgrader CLI and the real nt_xent notebook: the instructor
    runs generate_assignment and release_assignment; alice (the reference's code), bob (the
    course text's loss) and carol (the stub, with its test cells edited to pass and to claim
    100 points) fetch and submit; the instructor collects, runs `torchgrade grade` on
    nbgrader's submitted/ folder and `torchgrade nbgrader release`; alice fetches her feedback;
    `nbgrader export` gives the totals of torchgrade's class CSV."""
    if shutil.which("nbgrader", path=str(BIN)) is None:
        pytest.skip("nbgrader is not installed (requirements.txt has it)")
    name = "nt_xent"
    course = make_course(tmp_path, gradebook=empty_gradebook)
    source = ROOT / "notebooks" / "source" / name / f"{name}.ipynb"
    (course / "source" / name).mkdir(parents=True)
    shutil.copyfile(source, course / "source" / name / f"{name}.ipynb")
    _nbgrader((course, ["generate_assignment", name, "--force"]),
              (course, ["release_assignment", name, "--force"]))
    students = ("alice", "bob", "carol")
    steps = []
    for student in students:
        (tmp_path / student).mkdir()
        steps.append((tmp_path / student, ["fetch_assignment", name, *_as(tmp_path, student)]))
    _nbgrader(*steps)
    mine = {s: tmp_path / s / name / f"{name}.ipynb" for s in students}
    # alice's answers name torchgrade and import its course code (issue 15: such cells run)
    loss = _function_source(ROOT / "solutions" / name / f"{name}.py", "nt_xent_loss")
    _fill(mine["alice"], source, {"nt_xent_loss": (
        '"""Uses torchgrade.course.encoders.SmallConvEncoder, as torchgrade\'s handout says."""\n'
        "from torchgrade.course.encoders import SmallConvEncoder  # torchgrade's course code\n"
        + loss)})
    course_text = _function_source(ROOT / "examples" / name / "course_text" / f"{name}.py",
                                   "nt_xent_loss")
    _fill(mine["bob"], source, {"nt_xent_loss": course_text})
    _tamper(mine["carol"])
    _nbgrader(*[(tmp_path / s, ["submit", name, *_as(tmp_path, s)]) for s in students],
              (course, ["collect", name]))

    reports = tmp_path / "reports"
    grade = ["--root", str(ROOT), "grade", name, str(course / "submitted"), "--out",
             str(reports), "--jobs", "2", "--skip-kind", "training"]
    assert main(grade) == 0
    graded = {s: json.loads((reports / s / f"{name}.json").read_text()) for s in students}
    scores = {s: r["score"] for s, r in graded.items()}
    # Graded without the training checks (left out of the reports): full marks are the rest.
    assert scores["alice"] == graded["alice"]["max_score"] < 100, graded["alice"]
    assert 0 < scores["bob"] < scores["alice"]
    assert scores["carol"] == 0  # the edited test cells changed nothing
    # generate_assignment left torchgrade's cells as author build wrote them: recognised, and
    # named in the report; carol's edited test cells ran as her code, and the report says so.
    cells = graded["alice"]["extra"]["notebook"]
    assert {e["why"] for e in cells["cells_left_out"]} == {
        "torchgrade's setup cell, unchanged", "a torchgrade test cell, unchanged"}
    assert not cells["notes"]
    edited = graded["carol"]["extra"]["notebook"]["notes"]
    assert edited and all("has the id of torchgrade's test cell" in n["note"] for n in edited)
    assert main(["--root", str(ROOT), "nbgrader", "release", name, "--course-dir", str(course),
                 "--reports", str(reports)]) == 0
    assert "released to the exchange: 3 student(s)" in capsys.readouterr().out

    _nbgrader((tmp_path / "alice", ["fetch_feedback", name, *_as(tmp_path, "alice")]),
              (course, ["export", "--to", str(tmp_path / "grades.csv")]))
    page = next((tmp_path / "alice" / name / "feedback").glob(f"*/{name}.html"))
    assert "feedback for alice" in page.read_text(encoding="utf-8")
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as fh:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(fh)
                    if row["assignment"] == name}
    with open(reports / f"{name}.csv", newline="", encoding="utf-8") as fh:
        ours = {row["student"]: float(row["score"]) for row in csv.DictReader(fh)}
    assert exported == ours == scores

