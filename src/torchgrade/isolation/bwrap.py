"""The bubblewrap backend: a worker started afresh in its own namespaces.

bubblewrap gives it fresh user, pid, network, IPC, UTS and mount namespaces. The worker sees
the Python install, the torchgrade engine (read-only), a tmpfs ``/tmp`` and a tmpfs working
directory holding only the submission file; never ``graders/``, ``solutions/``, the reports or
the network. All capabilities are dropped. The worker template (``template.py``) runs inside
the same command line, and its forked workers give themselves the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from torchgrade.isolation.base import (
    NOBODY,
    SANDBOX_DIR,
    WORKER_ENV,
    Launch,
    Limits,
    WorkerSpec,
    engine_dir,
)
from torchgrade.isolation.rlimits import start


def available() -> bool:
    """True when bubblewrap exists and can create its namespaces on this host."""
    return why_not() == ""


def why_not() -> str:
    """Why bubblewrap cannot isolate a worker here ('' when it can)."""
    if sys.platform != "linux":
        return f"no Linux namespaces on {sys.platform}"
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed"
    probe = [exe, "--unshare-all", "--uid", str(NOBODY), "--gid", str(NOBODY),
             "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
    try:
        proc = subprocess.run(probe, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap does not run here ({exc})"
    if proc.returncode != 0:
        said = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
        return "bubblewrap cannot create namespaces here" + (
            f": {said[0][:200]}" if said else "")
    return ""


def launch(spec: WorkerSpec) -> Launch:
    """Start ``spec``'s worker afresh under bubblewrap (with a cgroup where possible), where
    :func:`available` says bubblewrap works."""
    return start(spec, folder=SANDBOX_DIR, limits=spec.worker_limits(),
                 wrapper=argv(spec.workdir, spec.limits, spec.gpu), namespaces="bwrap")


def argv(workdir: Path, limits: Limits, gpu: bool) -> list[str]:
    """The bubblewrap command line (up to the command it runs) of a worker for ``workdir``."""
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--uid", str(NOBODY), "--gid", str(NOBODY), "--cap-drop", "ALL",
            "--hostname", "sandbox", "--clearenv"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib64", "sbin"):
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.exists():
            argv += ["--ro-bind", str(host), f"/{name}"]
    # /etc/fonts: fontconfig (matplotlib's text) otherwise prints an error on every plot.
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                "/etc/alternatives", "/etc/fonts"):
        argv += ["--ro-bind-try", etc, etc]
    # The writable /tmp first: the read-only binds below may live under /tmp (a checkout or
    # a venv there), and a later mount would hide them.
    argv += ["--size", str(limits.tmpfs_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), engine_dir()}
    roots.add(Path(sys.executable).resolve().parent.parent)
    for root in sorted(roots):
        argv += ["--ro-bind", str(root), str(root)]
    # Symlinked interpreters (a venv's bin/python) must resolve inside the sandbox too.
    exe = Path(sys.executable)
    if exe.parent.parent.resolve() not in roots:
        argv += ["--ro-bind", str(exe.parent.parent), str(exe.parent.parent)]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    size = str(limits.tmpfs_mb * 1024 * 1024)
    argv += ["--size", size, "--tmpfs", SANDBOX_DIR, "--size", size, "--tmpfs", "/dev/shm"]
    for entry in sorted(workdir.iterdir()):
        argv += ["--ro-bind", str(entry), f"{SANDBOX_DIR}/{entry.name}"]
    if gpu:
        for dev in sorted(Path("/dev").glob("nvidia*")):
            argv += ["--dev-bind-try", str(dev), str(dev)]
    argv += ["--chdir", SANDBOX_DIR]
    for name, value in WORKER_ENV.items():
        argv += ["--setenv", name, value]
    if gpu and os.environ.get("CUDA_VISIBLE_DEVICES"):  # the GPU the batch gave this grading
        argv += ["--setenv", "CUDA_VISIBLE_DEVICES", os.environ["CUDA_VISIBLE_DEVICES"]]
    # bwrap's root and /dev are unsized tmpfs: read-only, so that only the sized /tmp,
    # /dev/shm and working directory take writes (else writing to / would fill host memory).
    argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return argv
