"""Fault: a bounded fork bomb -- up to 500 processes that sleep for an hour.

The first call to ``scale`` starts a small helper process that forks up to 500 children named
``tgforkbomb`` (``/proc/*/comm``), each sleeping for an hour, and reports how many it made; then
``scale`` raises. The worker's process limit must stop the bomb, the checks must still end (with
the bomb's children still sleeping), ``total`` (right) must pass, and no child may outlive the
grading.
"""

import subprocess
import sys

import torch

HELPER = r"""
import ctypes, os, time
born = 0
for _ in range(500):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try:
            ctypes.CDLL(None).prctl(15, b"tgforkbomb", 0, 0, 0)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            time.sleep(3600)
        finally:
            os._exit(0)
    born += 1
print(born)
"""
BORN: list[str] = []


def scale(x, s):
    if not BORN:
        try:
            out = subprocess.run([sys.executable, "-I", "-c", HELPER], capture_output=True,
                                 text=True, timeout=60)
            BORN.append(out.stdout.strip() or out.stderr.strip()[-200:])
        except (OSError, subprocess.SubprocessError) as exc:
            BORN.append(f"helper failed: {exc}")
    raise RuntimeError(f"fork bomb: {BORN[0]} children")


def total(x):
    return x.sum()
