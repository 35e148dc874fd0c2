"""Grades into the course's gradebook: the CSV files Canvas and Moodle import, from the reports.

``torchgrade grade`` leaves one JSON report per student (``REPORTS/<student>/<name>.json``);
course staff then need the scores in the learning management system. Both gradebooks import a
CSV file through their web interface, and each documents what it reads:

**Canvas** ("How do I import grades in the Gradebook?", Canvas Instructor Guide,
community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807;
the Ohio State summary of it, teaching.resources.osu.edu/toolsets/carmencanvas/guides/
calculating-final-grades/import-csv-file-carmen-grades; and the exporter in Canvas's source,
``Course#gradebook_to_csv`` in instructure/canvas-lms ``app/models/course.rb``, whose output the
importer reads back): the columns ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``,
``Section``, in that order, then one column per assignment, headed with the assignment's name
(``Name (1234)`` with its Canvas id updates that assignment; a new name creates one). A row
whose first cell is ``Points Possible`` gives each assignment's points. A student is found by
``ID``, ``SIS User ID`` or ``SIS Login ID``; any of them (or the name) is enough.

**Moodle** ("Grade import", docs.moodle.org/en/Grade_import; the importer is
``gradeimport_csv_load_data`` in moodle/moodle ``grade/import/csv/classes/load_data.php``): any
header row; on import the teacher maps one column to the user ("Map from" -> "Map to": ``id``,
``username``, ``idnumber`` or ``email``) and each other column to a grade item, a new grade
item or a grade item's feedback. The file written here has Moodle's own export's identity
columns (``First name``, ``Last name``, ``ID number``, ``Email address``) and ``Username``, then
the grade and its feedback. It has no "Last downloaded from this course" column, which would
make Moodle refuse grades changed since.

**csv**: one plain row per student (folder, score, points possible, percent, checks passed,
status), plus the roster's columns.

The **roster** (``--roster FILE``) maps torchgrade's student folder names to the gradebook's
identities when they differ: a CSV with a ``folder`` column and the target's identity columns,
named as above (a Canvas gradebook export with a ``folder`` column added works as it is).
Without one, the folder name is used as ``SIS Login ID`` (Canvas) or ``Username`` (Moodle).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

from torchgrade.render.csv_ import _safe
from torchgrade.report import Report, ReportError, atomic_write_text, read_report

FORMATS = ("canvas", "moodle", "csv")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "Points Possible"
MOODLE_COLUMNS = ("First name", "Last name", "ID number", "Email address", "Username")
CSV_COLUMNS = ("folder", "score", "points_possible", "percent", "checks_passed", "checks",
               "status")
# The roster columns that identify a student in each gradebook (at least one must be filled).
IDENTITY = {"canvas": ("ID", "SIS User ID", "SIS Login ID", "Student"),
            "moodle": ("Username", "ID number", "Email address"), "csv": ()}
FOLDER = "folder"


class ExportError(ValueError):
    """Input the export cannot use: the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Roster:
    columns: tuple[str, ...]  # as the target format names them (recognised case-insensitively)
    rows: dict[str, dict[str, str]]  # folder name -> column -> value


@dataclasses.dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    students: tuple[str, ...]  # folder names exported, in file order
    points_possible: float
    skipped: tuple[str, ...] = ()  # one message per report left out
    without_report: tuple[str, ...] = ()  # roster folders with no report: not exported
    incomplete: tuple[str, ...] = ()  # graded on fewer points than possible (skipped checks)


def load_reports(reports_dir: Path, assignment: str) -> tuple[list[Report], list[str]]:
    """The reports of ``assignment`` under ``reports_dir``, and one message per file skipped."""
    if not reports_dir.is_dir():
        raise ExportError(f"reports folder {reports_dir} does not exist: give the --out folder "
                          f"of `torchgrade grade` (it holds <student>/{assignment}.json)")
    reports, skipped = [], []
    for folder in sorted(p for p in reports_dir.iterdir() if p.is_dir()):
        path = folder / f"{assignment}.json"
        if folder.name.startswith(".") or not path.is_file():
            continue
        try:
            report = read_report(path)
        except ReportError as exc:
            skipped.append(f"{path}: {exc}: skipped")
            continue
        if report.assignment != assignment:
            skipped.append(f"{path}: a report of {report.assignment!r}, not {assignment!r}: "
                           "skipped")
        elif report.student != folder.name:
            skipped.append(f"{path}: the report of {report.student!r} in folder "
                           f"{folder.name!r}: skipped")
        else:
            reports.append(report)
    if not reports:
        raise ExportError(f"no readable report of {assignment} in {reports_dir} (expected "
                          f"{reports_dir}/<student>/{assignment}.json: run `torchgrade grade "
                          f"{assignment} SUBMISSIONS --out {reports_dir}` first)"
                          + "".join(f"\n  {m}" for m in skipped))
    return reports, skipped


def read_roster(path: Path, fmt: str) -> Roster:
    """The roster file (see the module docstring), checked: a ``folder`` column, the format's
    identity columns recognised whatever their case, one row per folder."""
    if not path.is_file():
        raise ExportError(f"roster file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is fine
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    known = {c.lower(): c for c in (FOLDER, *CANVAS_COLUMNS, *MOODLE_COLUMNS)}
    names = {h: known.get(h.lower(), h) for h in header}
    if FOLDER not in names.values():
        raise ExportError(f"roster {path} has no 'folder' column (its columns: "
                          f"{', '.join(header) or 'none'}): add one holding each student's "
                          "folder name under the submissions (as in the reports folder)")
    wanted = {"canvas": CANVAS_COLUMNS, "moodle": MOODLE_COLUMNS}.get(fmt)
    columns = tuple(c for c in names.values() if c != FOLDER and (wanted is None or c in wanted))
    if fmt != "csv" and not set(columns) & set(IDENTITY[fmt]):
        raise ExportError(f"roster {path} has none of the columns that identify a student in "
                          f"{fmt.title()}: {', '.join(IDENTITY[fmt])} (its columns: "
                          f"{', '.join(header)})")
    rows: dict[str, dict[str, str]] = {}
    for line, raw in enumerate(reader, start=2):
        row = {names.get((k or "").strip(), k): (v or "").strip() for k, v in raw.items()
               if k is not None}
        folder = row.get(FOLDER, "")
        if not folder:
            continue  # Canvas's "Points Possible" row, a blank line
        if folder in rows:
            raise ExportError(f"roster {path}, line {line}: folder {folder!r} appears twice: "
                              "keep one row per student")
        rows[folder] = {c: row.get(c, "") for c in columns}
    return Roster(columns, rows)


def _num(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _identity(report: Report, roster: Roster | None, fmt: str) -> dict[str, str]:
    if roster is not None:
        return dict(roster.rows[report.student])
    if fmt == "canvas":
        return {"Student": report.student, "SIS Login ID": report.student}
    if fmt == "moodle":
        return {"Username": report.student}
    return {}


def _feedback(report: Report, points: float) -> str:
    passed = sum(c.status == "passed" for c in report.checks)
    text = (f"torchgrade: {_num(report.score)}/{_num(points)} points, {passed} of "
            f"{len(report.checks)} checks passed")
    if report.submission_error:
        text += "; the submission had a problem (see your report)"
    return text


def _status(report: Report, points: float) -> str:
    if report.unresolved:
        return "not fully graded: grade again"
    if report.submission_error:
        return "submission problem"
    return "graded" if report.max_score >= points else "graded on fewer checks"


def render(reports: Sequence[Report], fmt: str, column: str, points: float,
           roster: Roster | None = None) -> str:
    """The CSV text of ``fmt`` for ``reports`` (see the module docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if fmt == "canvas":
        writer.writerow([*CANVAS_COLUMNS, column])
        writer.writerow([CANVAS_POINTS_ROW, "", "", "", "", _num(points)])
        for r in reports:
            who = _identity(r, roster, fmt)
            writer.writerow([_safe(who.get(c, "")) for c in CANVAS_COLUMNS] + [_num(r.score)])
    elif fmt == "moodle":
        writer.writerow([*MOODLE_COLUMNS, column, f"{column} (Feedback)"])
        for r in reports:
            who = _identity(r, roster, fmt)
            writer.writerow([_safe(who.get(c, "")) for c in MOODLE_COLUMNS]
                            + [_num(r.score), _feedback(r, points)])
    elif fmt == "csv":
        extra = list(roster.columns) if roster is not None else []
        writer.writerow([*CSV_COLUMNS, *extra])
        for r in reports:
            who = _identity(r, roster, fmt)
            percent = 100.0 * r.score / points if points > 0 else 0.0
            writer.writerow([_safe(r.student), _num(r.score), _num(points), f"{percent:.2f}",
                             sum(c.status == "passed" for c in r.checks), len(r.checks),
                             _status(r, points)] + [_safe(who.get(c, "")) for c in extra])
    else:
        raise ExportError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    return buffer.getvalue()


def export(assignment: str, reports_dir: Path, fmt: str, out: Path, *,
           roster: Path | None = None, column: str | None = None,
           points_possible: float | None = None) -> ExportResult:
    """Write the gradebook file of ``fmt`` for every report of ``assignment`` to ``out``.

    ``points_possible``: the assignment's points (the rubric's ``total_points``); by default
    the largest ``max_score`` of the reports. ``column``: the gradebook column (default the
    assignment's name; for Canvas, ``Name (id)`` updates an existing assignment)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    reports, skipped = load_reports(reports_dir, assignment)
    points = points_possible if points_possible is not None else max(
        r.max_score for r in reports)
    table = read_roster(roster, fmt) if roster is not None else None
    without: tuple[str, ...] = ()
    if table is not None:
        missing = [r.student for r in reports if r.student not in table.rows]
        if missing:
            raise ExportError(
                f"the roster {roster} has no row for {len(missing)} student folder(s) with a "
                f"report: {', '.join(missing)}. Add a row for each (folder = the folder name, "
                "and their gradebook identity), or leave --roster out to use the folder names "
                "as gradebook logins")
        graded = {r.student for r in reports}
        without = tuple(f for f in table.rows if f not in graded)
    atomic_write_text(out, render(reports, fmt, column or assignment, points, table))
    return ExportResult(out, fmt, tuple(r.student for r in reports), points, tuple(skipped),
                        without, tuple(r.student for r in reports if r.max_score < points))
