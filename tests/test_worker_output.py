"""Does a report's student output hold only what the student's code printed?

Course and library code run in the worker too (course objects the grader builds, FFmpeg reading
the grader's broken videos, transformers' warnings): ``torchgrade.worker_output`` keeps their
output apart, labelled as the course's. The routing rules are pinned in a subprocess (they
change the process's file descriptors); one grading of the toy course shows the whole path,
worker to report. The shipped references' quiet reports are asserted on the CI audit's
gradings (tests/test_example_submissions.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from torchgrade.assignment import load
from torchgrade.runner import Options, grade_submission

HERE = Path(__file__).resolve().parent

SUBMISSION = '''
import sys
import warnings

import lib


def shout():
    print("student print")
    sys.stderr.write("student stderr\\n")
    warnings.warn("student warning")
    lib.noisy()
    lib.call_back(lambda: print("student print inside a callback"))
'''

LIBRARY = '''
import os
import sys
import warnings


def noisy():
    print("library print")
    warnings.warn("library warning", stacklevel=1)
    sys.stdout.flush()
    os.write(2, b"native write\\n")


def call_back(fn):
    fn()


def progress_bar():
    sys.stderr.write("\\rLoading weights: 100%\\n")
'''

DRIVER = '''
import json
import sys

sys.path.insert(0, sys.argv[1])
from torchgrade.worker_output import install

course = install(sys.argv[2])
import importlib.util
spec = importlib.util.spec_from_file_location("sub", sys.argv[2])
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)
import lib

sub.shout()
lib.progress_bar()  # course code the grader runs: no submission frame on the stack
sys.stdout.flush()
with open(sys.argv[3], "w") as fh:
    json.dump(course.drain(), fh)
'''


def test_writes_are_routed_by_who_makes_them(tmp_path: Path) -> None:
    """Prints with the submission on the stack, and warnings pointing into it, are the
    student's; library prints and warnings, native writes to fd 2 and course code's progress
    bars are the course's."""
    (tmp_path / "lib.py").write_text(textwrap.dedent(LIBRARY))
    sub = tmp_path / "sub.py"
    sub.write_text(textwrap.dedent(SUBMISSION))
    course_file = tmp_path / "course.json"
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path), str(sub),
                           str(course_file)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    student = proc.stderr + proc.stdout
    course = json.loads(course_file.read_text())
    for line in ("student print", "student stderr", "student warning",
                 "student print inside a callback", "library print"):
        assert line in student, (line, student)
    for line in ("library warning", "native write", "Loading weights"):
        assert line in course and line not in student, (line, course, student)


def test_a_graded_submission_keeps_its_own_output(tmp_path: Path) -> None:
    """Graded for real: what the submission prints and warns stays in student_output; what
    reaches fd 2 natively is reported apart, as the course's."""
    course = load("toy", HERE / "toy_course")
    source = (HERE / "toy_course" / "solutions" / "toy" / "toy.py").read_text()
    source = source.replace('    return x * s\n', textwrap.indent(textwrap.dedent('''
        import os
        import warnings
        print("hello from scale")
        warnings.warn("scale's own warning")
        os.write(2, b"native noise\\n")
        return x * s
        '''), "    "))
    sub = tmp_path / "toy.py"
    sub.write_text(source)
    report = grade_submission(course, sub, "loud", Options(skip_kinds=("invariant",)))
    assert report.score == report.max_score, [(c.name, c.feedback) for c in report.checks]
    assert "hello from scale" in report.student_output
    assert "scale's own warning" in report.student_output
    assert "native noise" not in report.student_output
    assert "native noise" in report.extra.get("course_output", "")


def test_the_page_shows_course_output_apart_and_labelled() -> None:
    """On a student's page (public run) the course's output has its own labelled block, apart
    from the output of the student's code."""
    import dataclasses

    from torchgrade.render.html import render_student_html
    from torchgrade.report import Report

    report = Report(student="s", assignment="toy", score=0.0, max_score=1.0, profile="cpu",
                    device="cpu", sandbox="none", submission_sha256="", grader_version="1",
                    duration_s=0.0, checks=(), created_at="", torchgrade_version="",
                    visibility="public", student_output="my print",
                    extra={"course_output": "Loading weights: 100%"})
    page = render_student_html(report)
    assert "Output printed by your code" in page and "my print" in page
    assert "not of your code" in page and "Loading weights: 100%" in page
    plain = render_student_html(dataclasses.replace(report, extra={}))
    assert "not of your code" not in plain
