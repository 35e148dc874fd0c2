"""The bare backend: a worker process limited by its own rlimits (and a cgroup where this host
has writable cgroups), with no namespaces. What runs where bubblewrap cannot (a macOS laptop, a
container without user namespaces) and under ``--sandbox none``.

The worker lowers its rlimits itself before it imports the submission (``worker.apply_limits``:
CPU time, address space, file size, open files, processes, no core dumps). Started as root, it
also drops to ``nobody`` where ``nobody`` can reach the interpreter, the engine and the
submission. :func:`start` is also how bubblewrap's fresh workers are started (``bwrap.py``
puts its command line in front).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from torchgrade.isolation import cgroups
from torchgrade.isolation.base import NOBODY, Launch, WorkerSpec, engine_dir, meter_for, worker_code


def launch(spec: WorkerSpec) -> Launch:
    """Start ``spec``'s worker with rlimits only (plus a cgroup and ``nobody`` where possible)."""
    drop_to = NOBODY if _can_drop_to_nobody(spec.workdir) else None
    return start(spec, folder=str(spec.workdir), limits=spec.worker_limits(
        nproc=_nproc_limit(spec.limits.nproc, drop_to), drop_to=drop_to))


def _nproc_limit(nproc: int, drop_to: int | None) -> int | None:
    """RLIMIT_NPROC for a worker that may start ``nproc`` processes and threads. The kernel
    counts every task of the worker's user, so a worker running as the student (a laptop
    without bubblewrap, where a browser alone has hundreds of threads) may add ``nproc`` to
    what its user runs already; where that cannot be counted (no /proc: macOS), none is set."""
    if drop_to is not None or os.getuid() == 0:  # nobody's own count; root is not limited
        return nproc
    running = _tasks_of(os.getuid())
    return None if running is None else running + nproc


def _tasks_of(uid: int) -> int | None:
    """How many processes and threads user ``uid`` runs now (from /proc), None without /proc."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    count = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue  # gone, or not ours to read
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


def start(spec: WorkerSpec, *, folder: str, limits: dict[str, Any], wrapper: list[str] = (),
          namespaces: str = "") -> Launch:
    """Start the worker program (``torchgrade.worker.main``) for ``spec``, inside new cgroups
    where possible, under ``wrapper`` if given (a bubblewrap command line, whose level is
    ``namespaces``). ``folder`` is where the worker finds the submission (its own view of
    ``spec.workdir``); ``limits`` what it applies to itself."""
    cmd = [sys.executable, "-I", "-u", "-c", worker_code(), "--module-name", spec.module_name,
           "--module-file", f"{folder}/{spec.file_name}", "--rx", str(spec.rx),
           "--tx", str(spec.tx), "--threads", str(spec.threads), "--limits", json.dumps(limits)]
    cgroup_dirs = cgroups.make(spec.limits.nproc, spec.limits.memory_mb)
    cmd = cgroups.join_command(cgroup_dirs, [*wrapper, *cmd])
    threads = str(spec.threads)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    if spec.gpu and os.environ.get("CUDA_VISIBLE_DEVICES"):
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]  # this grading's GPU
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=spec.out, stderr=spec.out,
        pass_fds=(spec.rx, spec.tx), cwd=str(spec.workdir), env=env, start_new_session=True)
    level = [*([namespaces] if namespaces else []), *(["cgroup"] if cgroup_dirs else []),
             "rlimits", *(["uid"] if limits.get("drop_to") is not None else [])]
    return Launch(proc, "+".join(level), cgroup_dirs, meter=meter_for(cgroup_dirs, proc.pid))


def _can_drop_to_nobody(workdir: Path) -> bool:
    """As root without bubblewrap, the worker can run as ``nobody`` if ``nobody`` can reach
    the interpreter, the engine and the submission (a Python under /root usually cannot)."""
    if not hasattr(os, "getuid") or os.getuid() != 0:
        return False
    needed = [Path(sys.executable).resolve(), Path(sys.prefix), Path(sys.base_prefix),
              engine_dir(), workdir]
    return all(_world_reachable(p) for p in needed)


def _world_reachable(path: Path) -> bool:
    for part in (path, *path.parents):
        try:
            mode = part.stat().st_mode
        except OSError:
            return False
        if not mode & 0o001:  # others may not traverse (or execute)
            return False
    return True
