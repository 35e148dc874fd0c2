"""Does ``torchgrade check`` work for a student whose machine has no bubblewrap, no cgroups and
no Linux namespaces (a macOS laptop, a container without user namespaces)?

The student path runs inside a sandbox built to take those away for real, not by a switch:
user namespaces cannot be created in it (``bwrap --disable-userns``, as where unprivileged user
namespaces are off), so the bubblewrap on its PATH cannot start; ``/sys`` is empty, so no
cgroup can be made; it is not root, so nothing drops to another uid. Once with a ``/proc`` (the
worker's CPU time is read from it) and once with an empty one, as on macOS (the budgets fall
back to the wall clock). Each time ``check`` must say once which isolation it has, and give
the same checks, points and feedback as the same ``check`` with bubblewrap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from torchgrade.isolation import bwrap_available

REPO = Path(__file__).resolve().parents[1]
STUB = REPO / "assignments" / "nt_xent" / "nt_xent.py"
REFERENCE = REPO / "solutions" / "nt_xent" / "nt_xent.py"


def _nested_userns_can_be_refused() -> bool:
    probe = ["bwrap", "--unshare-user", "--disable-userns", "--ro-bind", "/", "/", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_bwrap = pytest.mark.skipif(
    not bwrap_available() or not _nested_userns_can_be_refused(),
    reason="needs bubblewrap 0.8+ (--disable-userns) to build a host without namespaces")


def _check(file: Path, out: Path, restricted: str | None) -> tuple[dict, str]:
    """``torchgrade check nt_xent FILE --json``: as usual (``restricted`` None), or inside a
    sandbox without user namespaces, cgroups or root, with a ``/proc`` ("proc") or an empty
    one ("no-proc"). Returns the report and what it printed."""
    report = out / "report.json"
    work = out / "tmp"
    work.mkdir(parents=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
           "TMPDIR": str(work), "LANG": "C.UTF-8", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torchgrade", "check", "nt_xent", str(file), "--json",
           str(report)]
    if restricted is not None:
        proc = ["--proc", "/proc"] if restricted == "proc" else ["--tmpfs", "/proc"]
        wrap = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns",
                "--uid", "65534", "--gid", "65534", "--die-with-parent", "--clearenv",
                "--ro-bind", "/", "/", "--dev", "/dev", *proc, "--tmpfs", "/sys",
                "--tmpfs", "/tmp"]
        # A checkout, a venv or the test's folder under /tmp stays visible (the latter
        # writable).
        for keep in sorted({REPO, Path(sys.prefix), Path(sys.base_prefix),
                            Path(sys.executable).resolve().parent.parent}):
            if keep.resolve().is_relative_to("/tmp"):
                wrap += ["--ro-bind", str(keep.resolve()), str(keep.resolve())]
        wrap += ["--bind", str(out), str(out), "--chdir", str(REPO)]
        for name, value in env.items():
            wrap += ["--setenv", name, value]
        cmd = wrap + ["--", *cmd]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert report.is_file(), done.stdout + done.stderr
    return json.loads(report.read_text()), done.stdout


def _graded(report: dict) -> list[tuple]:
    return [(c["name"], c["status"], c["points"], c["max_points"], c["feedback"])
            for c in report["checks"]]


@pytest.mark.slow
@needs_bwrap
@pytest.mark.parametrize(("file", "restricted"), [(STUB, "proc"), (REFERENCE, "no-proc")],
                         ids=["stub-with-proc", "reference-without-proc"])
def test_check_without_namespaces_or_cgroups_grades_as_with_bubblewrap(tmp_path, file,
                                                                       restricted):
    usual, usual_out = _check(file, tmp_path / "usual", None)
    bare, bare_out = _check(file, tmp_path / "bare", restricted)
    assert usual["sandbox"].startswith("bwrap")
    assert bare["sandbox"] == "rlimits"  # no namespaces, no cgroup, no uid to drop to
    said = [line for line in bare_out.splitlines() if line.startswith("isolation:")]
    assert len(said) == 1, bare_out
    assert "resource limits only" in said[0] and "bubblewrap cannot create" in said[0]
    assert [line for line in usual_out.splitlines() if line.startswith("isolation:")] == [
        "isolation: bubblewrap (namespaces of its own: no network, no other files)"]
    assert _graded(bare) == _graded(usual)
    assert bare["score"] == usual["score"]
    clock = bare["extra"]["budget_clock"]
    assert clock.startswith("CPU time (/proc)") if restricted == "proc" else \
        clock.startswith("wall-clock time")
    if file == STUB:
        assert bare["score"] == 0 and any("NotImplementedError" in c["feedback"]
                                          for c in bare["checks"])
    else:
        assert bare["score"] == bare["max_score"] > 0


def test_a_worker_running_as_the_student_may_start_processes_beside_theirs(monkeypatch):
    """RLIMIT_NPROC counts every task of the worker's user: a worker running as the student
    (a laptop where a browser alone has hundreds of threads) gets its allowance on top of what
    they run already; without /proc to count them (macOS), none; as ``nobody``, the plain one."""
    from torchgrade.isolation import rlimits

    assert rlimits._tasks_of(os.getuid()) >= 1  # this process, at least
    monkeypatch.setattr(rlimits.os, "getuid", lambda: 1000)
    monkeypatch.setattr(rlimits, "_tasks_of", lambda uid: 700)
    assert rlimits._nproc_limit(256, None) == 956
    assert rlimits._nproc_limit(256, 65534) == 256
    monkeypatch.setattr(rlimits, "_tasks_of", lambda uid: None)
    assert rlimits._nproc_limit(256, None) is None
