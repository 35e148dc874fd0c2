"""Does `torchgrade grade` show a redrawn progress bar on a terminal and plain lines in a log?

The terminal is a real pseudo-terminal (``pty.openpty``), so ``isatty()`` is answered by the
kernel, as for an instructor's shell; the log is a pipe, as in CI.
"""

from __future__ import annotations

import os
import pty

from torchgrade.batch import bar_progress, plain_progress, progress_for
from torchgrade.report import Report


def _report(student: str, score: float, error: str = "") -> Report:
    return Report(student=student, assignment="nt_xent", score=score, max_score=100.0,
                  profile="cpu", device="cpu", sandbox="none", submission_sha256="",
                  grader_version="1", duration_s=1.0, checks=(), created_at="2026-12-01",
                  torchgrade_version="0", submission_error=error)


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the pty's other end is closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode()


def test_terminal_gets_a_bar_redrawn_in_place():
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as stream:
        show = progress_for(stream)
        assert show.__qualname__.startswith(bar_progress.__name__)
        show(1, 3, _report("alice", 80))
        show(2, 3, _report("bob", 0, error="SyntaxError in nt_xent.py"))
        show(3, 3, _report("carol", 100))
    text = _read_all(master)
    os.close(master)
    assert "\r" in text and "\x1b[K" in text  # redrawn, not scrolled
    assert "[" + "#" * 8 + "." * 16 + "] 1/3" in text
    assert "[" + "#" * 24 + "] 3/3" in text and "ETA" in text and "/min" in text
    assert "last: carol 100/100" in text
    assert "bob: 0/100, did not grade cleanly" in text  # kept on a line of its own
    assert text.rstrip("\r\n").count("\n") <= 2  # one line per problem, plus the final line


def test_log_gets_one_plain_line_per_submission():
    read, write = os.pipe()
    with os.fdopen(write, "w") as stream:
        show = progress_for(stream)
        assert show.__qualname__.startswith(plain_progress.__name__)
        show(1, 2, _report("alice", 80))
        show(2, 2, _report("bob", 100))
    with os.fdopen(read) as log:
        lines = log.read().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["[1/2] alice: 80/100",
                                                      "[2/2] bob: 100/100"]
    assert all("\r" not in line and "\x1b" not in line for line in lines)
