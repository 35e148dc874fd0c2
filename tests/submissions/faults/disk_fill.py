"""Fault: ``scale`` writes a 4 GB file into its working directory, then into /tmp, then
into / and /dev/shm; ``total`` is right.

Every write must fail early (file-size limit, size of the sandbox's tmpfs, read-only root), the
check ends as an error, and nothing lands on the grading host's disk.
"""

import os

import torch

CHUNK = b"\0" * (1 << 20)


def _fill(path: str) -> str:
    written = 0
    try:
        with open(path, "wb") as fh:
            for _ in range(4096):  # 4 GB
                fh.write(CHUNK)
                written += len(CHUNK)
        return f"{path}: wrote {written >> 20} MB"
    except OSError as exc:
        return f"{path}: stopped after {written >> 20} MB ({exc.strerror})"


REPORT: list[str] = []


def scale(x, s):
    if not REPORT:  # once per worker, so that repeated calls stay fast
        for p in ("fill.bin", "/tmp/fill.bin", "/fill.bin", "/dev/shm/fill.bin"):
            REPORT.append(_fill(p))
            try:
                os.remove(p)
            except OSError:
                pass
    raise OSError("; ".join(REPORT))


def total(x):
    return x.sum()
