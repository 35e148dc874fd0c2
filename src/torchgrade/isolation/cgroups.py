"""A cgroup per worker, where this host lets us write cgroups (v1): ``pids`` caps its process
count (a fork bomb), ``memory`` its memory (a memory bomb), and ``cpuacct`` counts its CPU
time, against which each check's budget is measured (``torchgrade.cputime``). Every process
of the worker can then be killed at once. Without writable cgroups (a container, a laptop,
macOS) nothing is made, and the worker runs without them (its level says so).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def make(nproc: int, memory_mb: int) -> list[Path]:
    """One new cgroup per controller for a worker; empty when cgroups are not writable."""
    made: list[Path] = []
    name = f"torchgrade-{uuid.uuid4().hex[:12]}"
    settings = {"pids": {"pids.max": str(nproc)},
                "memory": {"memory.limit_in_bytes": str(memory_mb * 1024 * 1024)},
                "cpuacct": {}}  # counts the worker's CPU time for its budgets
    for controller, files in settings.items():
        parent = own(controller)
        if parent is None:
            continue
        path = parent / name
        try:
            path.mkdir()
            for fname, value in files.items():
                (path / fname).write_text(value)
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            continue
        made.append(path)
    return made


def own(controller: str) -> Path | None:
    """The v1 cgroup directory this process sits in for ``controller``, if writable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controller in controllers.split(","):
            path = Path("/sys/fs/cgroup") / controller / rel.lstrip("/")
            return path if os.access(path, os.W_OK) else None
    return None


def join_command(cgroup_dirs: list[Path], argv: list[str]) -> list[str]:
    """``argv`` run by a shell that first moves itself into ``cgroup_dirs`` (so the worker is
    in them before it runs anything)."""
    if not cgroup_dirs:
        return argv
    joins = " && ".join(f"echo $$ > {cg}/cgroup.procs" for cg in cgroup_dirs)
    return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *argv]


def join(cgroup_dirs: list[Path], pid: int) -> list[Path]:
    """Move a running process into ``cgroup_dirs``; those it could not join are removed, and
    only the joined ones returned (a level claims only those)."""
    joined = []
    for cg in cgroup_dirs:
        try:
            (cg / "cgroup.procs").write_text(str(pid))
            joined.append(cg)
        except OSError:
            remove(cg)
    return joined


def kill(path: Path) -> None:
    """SIGKILL every process in the cgroup at ``path``."""
    try:
        pids = (path / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError, PermissionError):
            pass


def remove(path: Path) -> None:
    """Kill what is left in the cgroup, then remove it."""
    kill(path)
    try:
        path.rmdir()
    except OSError:
        pass
