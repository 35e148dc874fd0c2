"""Reading a file the student's code wrote, from inside the worker.

Why it exists: some functions a grader checks write files (``plot_attention_maps`` saves a
PNG). The file lives in the sandboxed worker's own file system, which the grader cannot see,
so the grader asks the worker, through ``student.construct("torchgrade.course.files:
read_file_bytes", path, max_bytes)``, to send the bytes back as plain data. The grader treats
them as untrusted (it decodes them with size limits); nothing here interprets them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_file_bytes(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path``; ValueError if it is larger than
    ``max_bytes``, FileNotFoundError if it is missing, ValueError if it is not a plain file."""
    if not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be an int >= 0, got {max_bytes!r}")
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path} is not a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"{path} has {info.st_size} bytes, more than {max_bytes}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ValueError(f"{path} has more than {max_bytes} bytes")
    return data
