"""Release torchgrade's grades and feedback through nbgrader.

``release(assignment, course_dir, reports_dir)``:

1. reads every ``REPORTS/<student>/<assignment>.json`` (a corrupt one, or one for another
   assignment, is skipped with a message; nothing is written before all are read);
2. writes the grades into the course's nbgrader gradebook in one transaction: the assignment,
   a notebook named after it, one grade cell per check (max score = the check's points; an
   nbgrader test cell ``torchgrade_<check>`` made by ``generate_assignment`` is used where it
   exists, and the other checks then go to a notebook ``<assignment>_torchgrade``, so the
   notebook nbgrader made keeps exactly the cells its file has), the students, their
   submissions, each check's points as the grade's ``auto_score`` and its feedback as the
   comment of a solution cell of the same name (nbgrader keeps comments on solution cells
   only, so cells nbgrader made itself get no comment). Submission times come from
   nbgrader's ``submitted/<student>/<assignment>/timestamp.txt`` and late penalties from the
   configured ``LateSubmissionPlugin``, as ``nbgrader autograde`` does;
3. writes each student's feedback page to ``feedback/<student>/<assignment>/<notebook>.html``
   (nbgrader's layout), hidden checks summarised without names, inputs or feedback;
4. runs nbgrader's ``release_feedback`` exchange step for the students who submitted through
   nbgrader, so they can ``nbgrader fetch_feedback``.

Run again, it updates the same rows: one submission, one grade per (student, check).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jinja2

from torchgrade.render._text import strip_controls
from torchgrade.report import Report, ReportError, atomic_write_text, read_report

TEST_PREFIX = "torchgrade_"  # grade ids of the notebooks' test cells (torchgrade.notebooks)
EXTRA_SUFFIX = "_torchgrade"  # the notebook for checks an nbgrader-made notebook has no cell for
STUDENT_ID_CHARS = frozenset("*+/\\")  # nbgrader's exchange splits names on these


class ReleaseError(Exception):
    """Input that makes a release impossible; nothing has been written."""


@dataclasses.dataclass(frozen=True)
class ReleaseResult:
    assignment: str
    notebooks: tuple[str, ...]  # the gradebook notebooks holding the checks' grade cells
    students: tuple[str, ...]  # whose grades are in the gradebook now
    created_students: tuple[str, ...]  # added to the gradebook by this release
    created_assignment: bool
    skipped: tuple[str, ...]  # one message per report left out
    feedback: tuple[Path, ...]  # the feedback pages written
    released: tuple[str, ...]  # students whose feedback went to the exchange
    not_released: tuple[str, ...]  # no nbgrader submission: page written, not released
    late_penalties: dict[str, float]  # student -> penalty (nbgrader's export subtracts it)
    duration_s: float


# -- reports --------------------------------------------------------------------------------------
def load_reports(reports_dir: Path, assignment: str) -> tuple[list[Report], list[str]]:
    """The reports of ``assignment`` under ``reports_dir``, and one message per file skipped."""
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        raise ReleaseError(f"reports folder {reports_dir} does not exist (expected "
                           f"{reports_dir}/<student>/{assignment}.json, as `torchgrade grade` "
                           "writes)")
    reports: list[Report] = []
    skipped: list[str] = []
    for folder in sorted(p for p in reports_dir.iterdir() if p.is_dir()):
        path = folder / f"{assignment}.json"
        if folder.name.startswith(".") or not path.is_file():
            continue
        try:
            report = read_report(path)
        except ReportError as exc:
            skipped.append(f"{exc}: skipped")
            continue
        if report.assignment != assignment:
            skipped.append(f"{path}: a report of {report.assignment!r}, not {assignment!r}: "
                           "skipped")
        elif report.student != folder.name:
            skipped.append(f"{path}: a report of student {report.student!r} in folder "
                           f"{folder.name!r}: skipped")
        elif not report.student or STUDENT_ID_CHARS & set(report.student):
            skipped.append(f"{path}: student id {report.student!r} cannot be an nbgrader "
                           "student id: skipped")
        elif len({c.name for c in report.checks}) != len(report.checks):
            skipped.append(f"{path}: a check appears twice: skipped")
        else:
            reports.append(report)
    if not reports:
        raise ReleaseError(f"no readable report of {assignment} in {reports_dir} (expected "
                           f"{reports_dir}/<student>/{assignment}.json)"
                           + "".join(f"\n  {m}" for m in skipped))
    return reports, skipped


def check_points(reports: Iterable[Report]) -> dict[str, float]:
    """Check name -> max points, in order of first appearance; reports graded with different
    rubrics (a check worth different points) cannot share a gradebook cell."""
    points: dict[str, float] = {}
    where: dict[str, str] = {}
    for r in reports:
        for c in r.checks:
            if c.name not in points:
                points[c.name], where[c.name] = c.max_points, r.student
            elif points[c.name] != c.max_points:
                raise ReleaseError(
                    f"check {c.name} is worth {points[c.name]:g} in {where[c.name]}'s report "
                    f"but {c.max_points:g} in {r.student}'s: grade everyone with the same "
                    "grader (`torchgrade grade --no-cache`) before releasing")
    return points


# -- nbgrader's configuration -------------------------------------------------------------------
def nbgrader_config(course_dir: Path) -> Any:
    """nbgrader's configuration as its commands see it run in ``course_dir``: the Jupyter
    config paths' ``nbgrader_config.py`` files, then the course directory's."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    for folder in [*reversed(jupyter_config_path()), str(course_dir)]:
        if (Path(folder) / "nbgrader_config.py").is_file():
            config.merge(PyFileConfigLoader("nbgrader_config.py", folder).load_config())
    return config


def course_directory(course_dir: Path, config: Any) -> Any:
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    coursedir.root = str(Path(course_dir).resolve())
    return coursedir


def _late_plugin(config: Any) -> Any:
    from nbgrader.preprocessors.latesubmissions import AssignLatePenalties

    pre = AssignLatePenalties(config=config)
    pre.init_plugin()
    pre.plugin_inst.log.setLevel(logging.WARNING)
    return pre.plugin_inst


# -- the gradebook ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Submitted:
    """What nbgrader's ``submitted/<student>/<assignment>/`` holds for one student."""

    folder: Path | None
    timestamp: str | None
    notebooks: tuple[str, ...]  # notebook ids (file stems)
    has_secret: bool


def _submitted(coursedir: Any, student: str, assignment: str) -> _Submitted:
    folder = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
    if not folder.is_dir():
        return _Submitted(None, None, (), False)
    stamp = folder / "timestamp.txt"
    timestamp = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else None
    notebooks = tuple(sorted(p.stem for p in folder.glob("*.ipynb")))
    return _Submitted(folder, timestamp or None, notebooks,
                      (folder / "submission_secret.txt").is_file())


@contextlib.contextmanager
def _alembic_on_path():
    """nbgrader runs the ``alembic`` command when it creates a gradebook: find it beside this
    Python when a virtual environment was not activated."""
    old = os.environ.get("PATH", "")
    if shutil.which("alembic") is None:
        os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), old])
    try:
        yield
    finally:
        os.environ["PATH"] = old


def _grade_score(grade: Any) -> float:
    """nbgrader's ``Grade.score``, computed here so pending rows need no query."""
    base = grade.manual_score if grade.manual_score is not None else grade.auto_score
    if base is None:
        return 0.0
    return base + (grade.extra_credit or 0.0)


def write_gradebook(db_url: str, course_id: str, assignment: str, notebook: str,
                    reports: list[Report], submitted: dict[str, _Submitted],
                    duedate: str | None, late_plugin: Any) -> dict[str, Any]:
    """Write ``reports`` into the gradebook at ``db_url`` in one transaction."""
    from nbgrader import api
    from nbgrader.utils import parse_utc

    points = check_points(reports)
    created: dict[str, Any] = {"students": [], "assignment": False, "penalties": {}}
    with _alembic_on_path():
        gb = api.Gradebook(db_url, course_id=course_id)
    with gb:
        db = gb.db
        try:
            try:
                a = gb.find_assignment(assignment)
            except api.MissingEntry:
                a = api.Assignment(name=assignment, course_id=gb.course_id)
                db.add(a)
                created["assignment"] = True
            if duedate is not None:
                a.duedate = parse_utc(duedate)

            def the_notebook(name: str) -> Any:
                nb = next((n for n in a.notebooks if n.name == name), None)
                if nb is None:
                    nb = api.Notebook(name=name, assignment=a)
                    db.add(nb)
                return nb

            nb = the_notebook(notebook)
            test_cells = {c.name: c for c in nb.grade_cells}
            if nb.source_cells:
                # generate_assignment made this notebook: it keeps exactly the cells of its
                # file (what formgrader and autograde expect), and checks without a test cell
                # there get a notebook of their own.
                nb = the_notebook(notebook + EXTRA_SUFFIX) if any(
                    TEST_PREFIX + check not in test_cells for check in points) else None
            grade_cells = {c.name: c for c in nb.grade_cells} if nb is not None else {}
            solution_cells = {c.name: c for c in nb.solution_cells} if nb is not None else {}
            cell_of: dict[str, Any] = {}  # check -> grade cell
            comment_cell_of: dict[str, Any] = {}  # check -> solution cell for its comment
            for check, max_points in points.items():
                nbgrader_cell = test_cells.get(TEST_PREFIX + check)
                if nbgrader_cell is not None and check not in grade_cells:
                    cell_of[check] = nbgrader_cell  # generate_assignment's test cell
                    nbgrader_cell.max_score = max_points
                    continue
                cell = grade_cells.get(check)
                if cell is None:
                    cell = api.GradeCell(name=check, notebook=nb, max_score=max_points,
                                         cell_type="code")
                    db.add(cell)
                    grade_cells[check] = cell
                cell.max_score = max_points
                cell_of[check] = cell
                sol = solution_cells.get(check)
                if sol is None:
                    sol = api.SolutionCell(name=check, notebook=nb)
                    db.add(sol)
                    solution_cells[check] = sol
                comment_cell_of[check] = sol

            for report in reports:
                student = db.get(api.Student, report.student)
                if student is None:
                    student = api.Student(id=report.student)
                    db.add(student)
                    created["students"].append(report.student)
                submission = next((s for s in a.submissions if s.student is student), None)
                if submission is None:
                    submission = api.SubmittedAssignment(assignment=a, student=student)
                    db.add(submission)
                stamp = submitted[report.student].timestamp
                if stamp is not None:
                    submission.timestamp = parse_utc(stamp)
                # Every notebook of the assignment gets its rows, as add_submission makes them.
                sub_nbs = {sn.notebook: sn for sn in submission.notebooks}
                for each in a.notebooks:
                    sn = sub_nbs.get(each)
                    if sn is None:
                        sn = sub_nbs[each] = api.SubmittedNotebook(notebook=each,
                                                                  assignment=submission)
                        db.add(sn)
                    have_grade = {g.cell for g in sn.grades}
                    for cell in [*each.grade_cells, *each.task_cells]:
                        if cell not in have_grade:
                            db.add(api.Grade(cell=cell, notebook=sn))
                    have_comment = {c.cell for c in sn.comments}
                    for cell in [*each.solution_cells, *each.task_cells]:
                        if cell not in have_comment:
                            db.add(api.Comment(cell=cell, notebook=sn))
                grades = {g.cell: g for sn in sub_nbs.values() for g in sn.grades}
                comments = {c.cell: c for sn in sub_nbs.values() for c in sn.comments}
                results = {c.name: c for c in report.checks}
                for check, cell in cell_of.items():
                    result = results.get(check)
                    grade = grades[cell]
                    grade.auto_score = float(result.points) if result is not None else 0.0
                    grade.needs_manual_grade = False
                    if check in comment_cell_of:
                        comments[comment_cell_of[check]].auto_comment = _comment(result)
                # Late penalty per notebook, as nbgrader's AssignLatePenalties sets it at
                # autograde time.
                late = submission.total_seconds_late
                for sn in sub_nbs.values():
                    sn.late_submission_penalty = None
                    if late <= 0:
                        continue
                    score = sum(_grade_score(g) for g in sn.grades)
                    penalty = late_plugin.late_submission_penalty(report.student, score, late)
                    if penalty is not None:
                        sn.late_submission_penalty = min(max(0.0, float(penalty)), score)
                        created["penalties"][report.student] = \
                            created["penalties"].get(report.student, 0.0) \
                            + sn.late_submission_penalty
            created["notebooks"] = sorted({c.notebook.name for c in cell_of.values()})
            db.commit()
        except BaseException:
            db.rollback()
            raise
    return created


def _comment(result: Any) -> str:
    if result is None:
        return "torchgrade: this check did not run for this submission"
    head = f"torchgrade: {result.status}, {result.points:g}/{result.max_points:g}"
    return head + (f"\n{result.feedback}" if result.feedback else "")


# -- feedback pages -------------------------------------------------------------------------------
_FEEDBACK = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{ r.assignment }} · {{ r.student }} · feedback</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
         padding: 0 1rem; line-height: 1.45; }
  table { border-collapse: collapse; width: 100%; }
  th, td { border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left;
           vertical-align: top; }
  td.num { text-align: right; white-space: nowrap; }
  pre { background: #f6f8fa; border: 1px solid #ddd; padding: .5rem; white-space: pre-wrap; }
  .problem { border: 2px solid #b00020; padding: .5rem 1rem; }
</style>
</head>
<body>
<h1>{{ r.assignment }}: feedback for {{ r.student }}</h1>
<p id="score"><strong>{{ r.score|num }} / {{ r.max_score|num }}</strong> points
{% if penalty %} (late submission penalty: {{ penalty|num }}){% endif %}</p>
{% if problem %}
<section class="problem"><h2>Problem with your submission</h2><pre>{{ problem }}</pre></section>
{% endif %}
<h2>Public checks</h2>
{% if public %}
<table>
<tr><th>Check</th><th>What it verifies</th><th>Status</th><th>Points</th></tr>
{% for c in public %}
<tr><td><code>{{ c.name }}</code></td><td>{{ c.description }}</td><td>{{ c.status }}</td>
<td class="num">{{ c.points|num }} / {{ c.max_points|num }}</td></tr>
{% endfor %}
</table>
{% for c in public if c.status != "passed" %}
<h3><code>{{ c.name }}</code>: {{ c.status }}</h3>
<pre>{{ c.feedback or "(no feedback)" }}</pre>
{% if c.catches %}<p>This check catches: {{ c.catches }}</p>{% endif %}
{% endfor %}
{% else %}
<p>None.</p>
{% endif %}
<h2>Hidden checks</h2>
<p id="hidden">{{ hidden_summary }}</p>
{% if hidden_kinds %}
<ul>
{% for line in hidden_kinds %}<li>{{ line }}</li>
{% endfor %}
</ul>
{% endif %}
<p>Hidden checks run only at grading time; their names, inputs and feedback stay with the
course staff.</p>
<footer>torchgrade {{ r.torchgrade_version }} · grader {{ r.grader_version }} ·
graded {{ r.created_at }}</footer>
</body>
</html>
"""


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             finalize=lambda v: strip_controls(v) if isinstance(v, str) else v,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    return env.from_string(_FEEDBACK)


def hidden_summary(report: Report) -> tuple[str, list[str]]:
    """One line for all hidden checks and one per kind: counts and points, nothing else."""
    hidden = [c for c in report.checks if c.visibility == "hidden"]
    if not hidden:
        return "No hidden checks ran for this submission.", []
    passed = sum(c.status == "passed" for c in hidden)
    line = (f"Hidden checks: {passed} of {len(hidden)} passed, "
            f"{_num(sum(c.points for c in hidden))}/{_num(sum(c.max_points for c in hidden))} "
            "points.")
    kinds = []
    for kind in dict.fromkeys(c.kind for c in hidden):
        of_kind = [c for c in hidden if c.kind == kind]
        kinds.append(f"{kind} checks: {sum(c.status == 'passed' for c in of_kind)} of "
                     f"{len(of_kind)} passed")
    return line, kinds


def render_feedback(report: Report, penalty: float = 0.0) -> str:
    """The page a student fetches: public checks with their feedback, hidden ones summarised."""
    from torchgrade.batch import INTERNAL

    problem = report.submission_error
    if problem.startswith(INTERNAL):
        problem = "torchgrade failed while grading this submission; the course staff know."
    elif any(c.visibility == "hidden" for c in report.checks):
        problem = problem.splitlines()[0] if problem else ""  # the cause, not hidden output
    line, kinds = hidden_summary(report)
    return _template().render(r=report, penalty=penalty, problem=problem,
                              public=[c for c in report.checks if c.visibility == "public"],
                              hidden_summary=line, hidden_kinds=kinds)


def write_feedback(coursedir: Any, report: Report, submitted: _Submitted,
                   penalty: float = 0.0) -> list[Path]:
    """``feedback/<student>/<assignment>/<notebook>.html`` for each notebook the student
    submitted (``<assignment>.html`` when none), with the submission's ``timestamp.txt`` and
    ``submission_secret.txt`` beside them, as nbgrader's release_feedback expects."""
    folder = Path(coursedir.format_path(coursedir.feedback_directory, report.student,
                                        report.assignment))
    page = render_feedback(report, penalty)
    paths = []
    for name in submitted.notebooks or (report.assignment,):
        path = folder / f"{name}.html"
        atomic_write_text(path, page)
        paths.append(path)
    if submitted.folder is not None:
        for name in ("timestamp.txt", "submission_secret.txt"):
            if (submitted.folder / name).is_file():
                shutil.copyfile(submitted.folder / name, folder / name)
    return paths


def release_feedback(config: Any, coursedir: Any, assignment: str,
                     exclude: Iterable[str]) -> None:
    """nbgrader's ``release_feedback`` exchange step (the configured exchange plugin)."""
    from nbgrader.auth import Authenticator
    from nbgrader.exchange import ExchangeFactory

    coursedir.assignment_id = assignment
    coursedir.student_id = "*"
    coursedir.student_id_exclude = ",".join(sorted(exclude))
    factory = ExchangeFactory(config=config)
    app = factory.ReleaseFeedback(coursedir=coursedir,
                                  authenticator=Authenticator(config=config), config=config)
    app.log.setLevel(logging.WARNING)
    app.start()


# -- the whole release --------------------------------------------------------------------------
def release(assignment: str, course_dir: Path, reports_dir: Path, *,
            notebook: str | None = None, duedate: str | None = None,
            exchange: bool = True, log: Callable[[str], None] = lambda _: None
            ) -> ReleaseResult:
    """Grades, feedback pages and the exchange release for every report of ``assignment``."""
    try:
        from nbgrader.exchange.abc import ExchangeError
        from nbgrader.utils import parse_utc
    except ImportError as exc:
        raise ReleaseError(f"nbgrader is not installed here ({exc}): pip install nbgrader "
                           "(requirements.txt pins it)") from exc

    started = time.monotonic()
    course_dir = Path(course_dir)
    if not course_dir.is_dir():
        raise ReleaseError(f"course directory {course_dir} does not exist")
    if duedate is not None:
        try:
            parse_utc(duedate)
        except (ValueError, OverflowError) as exc:
            raise ReleaseError(f"--duedate {duedate!r} is not a date: {exc}") from exc
    reports, skipped = load_reports(Path(reports_dir), assignment)
    for message in skipped:
        log(message)
    check_points(reports)  # before anything is written
    config = nbgrader_config(course_dir)
    coursedir = course_directory(course_dir, config)
    notebook = notebook or assignment
    submitted = {r.student: _submitted(coursedir, r.student, assignment) for r in reports}
    if exchange and not coursedir.course_id:
        raise ReleaseError(f"no course id: set c.CourseDirectory.course_id in "
                           f"{course_dir}/nbgrader_config.py (release_feedback needs it)")

    written = write_gradebook(coursedir.db_url, coursedir.course_id, assignment, notebook,
                              reports, submitted, duedate, _late_plugin(config))
    log(f"gradebook: {len(reports)} student(s) of {assignment} written to {coursedir.db_url}")
    pages: list[Path] = []
    for r in reports:
        pages += write_feedback(coursedir, r, submitted[r.student],
                                written["penalties"].get(r.student, 0.0))
    releasable = [r.student for r in reports if submitted[r.student].has_secret
                  and submitted[r.student].timestamp is not None]
    not_released = sorted({r.student for r in reports} - set(releasable))
    if exchange and releasable:
        # Every student folder under feedback/ that this release cannot vouch for is left
        # out, so one stray folder never stops the others' release.
        feedback_root = Path(coursedir.format_path(coursedir.feedback_directory, "x",
                                                   assignment)).parent.parent
        others = {p.name for p in feedback_root.iterdir() if p.is_dir()} - set(releasable)
        try:
            release_feedback(config, coursedir, assignment, others)
        except (ExchangeError, OSError) as exc:
            raise ReleaseError(f"the gradebook and the feedback pages are written, but "
                               f"nbgrader's release_feedback failed: {exc} (check "
                               "c.Exchange.root; running the release again is safe)") from exc
    return ReleaseResult(
        assignment=assignment, notebooks=tuple(written["notebooks"]),
        students=tuple(r.student for r in reports),
        created_students=tuple(written["students"]),
        created_assignment=written["assignment"], skipped=tuple(skipped),
        feedback=tuple(pages), released=tuple(releasable) if exchange else (),
        not_released=tuple(not_released) if exchange else tuple(releasable + not_released),
        late_penalties=dict(written["penalties"]),
        duration_s=time.monotonic() - started)
