"""The student's output, and the course's noise kept apart from it.

A report's ``student_output`` is what the student's code printed. Yet course code runs in the
worker too (course objects the grader constructs, the shipped CLIP loading its weights), and
libraries print while serving the grader's fixtures (FFmpeg complaining about the grader's
deliberately broken videos, transformers warning on every padded text call). Shown as the
student's, such noise buries what the student printed and suggests their code is at fault.

Inside the worker, before the submission is imported (:func:`install`):

- **fd 1 and fd 2 go to a course log** (a file in the sandbox's private ``/tmp``): what C code
  writes there (FFmpeg, OpenCV), and Python streams bound to them before (a library's logging
  handler made at import), is the course's.
- **``sys.stdout`` and ``sys.stderr`` route each write by who makes it**: a write with a frame
  of the submission on its call stack (a ``print`` in the student's code, their own progress
  bar, a print in a function course code calls back) goes to the student's output, the capped
  pipe the grader reads as before; any other (a progress bar of ``from_pretrained`` in a course
  object the grader builds) goes to the course log.
- **Warnings go by where they point**: one whose location (after ``stacklevel``) is in the
  submission is the student's; one a library attributes to itself is the course's.

After each request the worker sends what the course log gained with its reply
(``course_output``, :meth:`CourseLog.drain`); the grader keeps it apart and the report shows
it labelled as the course's (``extra["course_output"]``), never as the student's. Nothing of
either is parsed: scores come from checks only.
"""

from __future__ import annotations

import fcntl
import io
import os
import sys
import tempfile
import warnings
from typing import Any, TextIO

# What one worker's course log keeps in all (the rest is counted, not kept).
COURSE_CAP = 16 * 1024


class CourseLog:
    """The course's output in the worker: a file that fd 1 and fd 2 append to."""

    def __init__(self, cap: int = COURSE_CAP) -> None:
        self.file = tempfile.TemporaryFile(prefix="torchgrade-course-")
        self.fd = self.file.fileno()
        # Every write lands at the end, wherever the shared offset is: truncating after a
        # drain then leaves no hole (fd 1 and 2 share this open file).
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) | os.O_APPEND)
        self.cap = cap
        self.kept = 0
        self.dropped = 0

    def write(self, text: str) -> None:
        try:
            os.write(self.fd, text.encode("utf-8", errors="backslashreplace"))
        except OSError:
            pass  # a full /tmp or the file-size limit: the course's noise is lost, nothing else

    def drain(self) -> str:
        """What was written since the last drain, within the cap; the file starts over."""
        try:
            size = os.fstat(self.fd).st_size
            data = os.pread(self.fd, min(size, 1 << 20), 0) if size else b""
            os.ftruncate(self.fd, 0)
        except OSError:
            return ""
        room = max(self.cap - self.kept, 0)
        kept, self.dropped = data[:room], self.dropped + max(len(data) - room, 0)
        self.kept += len(kept)
        return kept.decode("utf-8", errors="replace")


class Router(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of the worker: each write goes to the student's output
    when a frame of the submission is on its call stack, else to the course log."""

    def __init__(self, student: TextIO, course: CourseLog, is_student: Any) -> None:
        super().__init__()
        self._student = student
        self._course = course
        self._is_student = is_student

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if _from_student(self._is_student):
            return self._student.write(text)
        self._course.write(text)
        return len(text)

    def flush(self) -> None:
        self._student.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._student.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._student.encoding

    @property
    def buffer(self) -> Any:
        return self._student.buffer


def _from_student(is_student: Any) -> bool:
    try:
        frame = sys._getframe(2)
    except ValueError:  # written with no Python caller at all (interpreter shutdown)
        return False
    while frame is not None:
        if is_student(frame.f_code.co_filename):
            return True
        frame = frame.f_back
    return False


def install(module_file: str) -> CourseLog:
    """Route this process's output as the module docstring says; ``module_file`` is the
    submission (a notebook's cells are compiled as ``<module_file> [cell N]``)."""
    names = {module_file, os.path.abspath(module_file)}
    cells = tuple(f"{n} [cell " for n in names)

    def is_student(filename: str) -> bool:
        return filename in names or filename.startswith(cells)

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    # The student's output is the pipe fd 2 leads to now (fd 1 joins it: worker.run).
    student = io.TextIOWrapper(os.fdopen(os.dup(2), "wb", buffering=0), encoding="utf-8",
                               errors="backslashreplace", write_through=True)
    course = CourseLog()
    os.dup2(course.fd, 1)
    os.dup2(course.fd, 2)
    sys.stdout = Router(student, course, is_student)  # type: ignore[assignment]
    sys.stderr = Router(student, course, is_student)  # type: ignore[assignment]

    def showwarning(message: Any, category: type[Warning], filename: str, lineno: int,
                    file: Any = None, line: str | None = None) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, line)
        if is_student(filename):
            student.write(text)
        else:
            course.write(text)

    warnings.showwarning = showwarning
    return course
