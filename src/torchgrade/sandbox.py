"""How a student worker is launched: the strongest isolation the host allows, said plainly.

Levels, strongest first, combined where available:

- ``bwrap``: bubblewrap with fresh user, pid, network, IPC, UTS and mount namespaces. The
  worker sees the Python install, the torchgrade engine (read-only), a tmpfs ``/tmp`` and a
  tmpfs working directory holding only the submission file; never ``graders/``,
  ``solutions/``, the reports or the network. All capabilities are dropped.
- ``template``: with ``bwrap``, the worker was forked from the batch's worker template (a
  bubblewrap sandbox that imported torch once) and gave itself new namespaces, fresh tmpfs
  mounts, its own ``/proc`` and no capabilities before any student code ran
  (``worker_template.py``).
- ``cgroup``: a cgroup (v1 or v2) per worker capping its process count and memory, so a fork
  bomb or a memory bomb is contained and every process of the worker can be killed, and
  counting its CPU time (``cpuacct``), against which each check's budget is measured
  (``cputime.py``; without it, the worker's process tree in ``/proc`` is read instead).
- ``rlimits``: set by the worker itself before it imports the submission (CPU time, address
  space, file size, open files, processes, no core dumps).
- ``uid``: without bubblewrap, a worker started as root drops to ``nobody``.
- ``docker``: the worker in a container instead (``docker_exec.py``): no network, memory and
  pid limits, read-only root, uid ``nobody``, plus the worker's rlimits.

The level in force is written into every report (``Report.sandbox``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Literal

import torchgrade
from torchgrade.cputime import CgroupMeter, Meter, NoMeter, TreeMeter

Mode = Literal["auto", "bwrap", "docker", "none"]
NOBODY = 65534
SANDBOX_DIR = "/sandbox"
# The whole environment of a sandboxed worker (fresh under bubblewrap, or forked from the worker
# template). PYTHONHASHSEED: the same set and dict order of strings on every run, as in the
# grader.
WORKER_ENV = {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "TMPDIR": "/tmp", "PYTHONHASHSEED": "0"}
# Set in a grader's environment to the socket of its batch's worker template (worker_template.py).
TEMPLATE_ENV = "TORCHGRADE_WORKER_TEMPLATE"


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one student worker. Defaults suit the CPU checks of the course."""

    cpu_s: int = 900  # CPU seconds over the worker's whole life (RLIMIT_CPU)
    memory_mb: int = 6144  # address space (RLIMIT_AS); below 4096 `import torch` fails
    nproc: int = 256  # processes/threads (cgroup pids.max; RLIMIT_NPROC without bwrap)
    fsize_mb: int = 64  # largest file the worker may write (RLIMIT_FSIZE)
    tmpfs_mb: int = 256  # size of its writable /tmp and working directory (bwrap only)
    nofile: int = 256  # open file descriptors (RLIMIT_NOFILE)
    output_kb: int = 64  # student stdout+stderr kept for the report; the rest is dropped
    reply_mb: int = 1024  # largest reply the grader accepts from the worker (one frame)


@dataclasses.dataclass
class Launch:
    """A started worker: its process, the cgroup to clean and the isolation level."""

    process: subprocess.Popen
    level: str
    cgroups: list[Path]
    container: str | None = None  # the worker's Docker container (--sandbox docker)
    meter: Meter = dataclasses.field(default_factory=NoMeter)  # its CPU time (cputime.py)

    def kill(self) -> None:
        if self.container is not None:
            # Killing the docker CLI alone would leave the container running.
            from torchgrade.docker_exec import remove_container

            remove_container(self.container)
        for cg in self.cgroups:
            _kill_cgroup(cg)
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if hasattr(self.process, "close"):  # a worker from the template: its pidfds, socket
            self.process.close()
        for cg in self.cgroups:
            _kill_cgroup(cg)
            try:
                cg.rmdir()
            except OSError:
                pass


@functools.cache
def submission_file_name(module_name: str, submission: Path) -> str:
    """What a submission is called in the worker's folder: ``<module>.ipynb`` for a notebook
    (the worker runs its code cells), else ``<module>.py``."""
    return f"{module_name}.ipynb" if submission.suffix == ".ipynb" else f"{module_name}.py"


def worker_file_name(workdir: Path, module_name: str) -> str:
    """The submission file the worker in ``workdir`` loads (see submission_file_name)."""
    notebook = f"{module_name}.ipynb"
    return notebook if (workdir / notebook).is_file() else f"{module_name}.py"


def bwrap_available() -> bool:
    """True when bubblewrap exists and can create its namespaces on this host."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False
    probe = [exe, "--unshare-all", "--uid", str(NOBODY), "--gid", str(NOBODY),
             "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _engine_dir() -> Path:
    return Path(torchgrade.__file__).resolve().parent


def _bwrap_argv(workdir: Path, limits: Limits, gpu: bool) -> list[str]:
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
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), _engine_dir()}
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


def _cgroup_dirs(limits: Limits) -> list[Path]:
    """Create one cgroup per controller for a worker; empty when cgroups are not writable."""
    made: list[Path] = []
    name = f"torchgrade-{uuid.uuid4().hex[:12]}"
    settings = {"pids": {"pids.max": str(limits.nproc)},
                "memory": {"memory.limit_in_bytes": str(limits.memory_mb * 1024 * 1024)},
                "cpuacct": {}}  # counts the worker's CPU time for its budgets
    for controller, files in settings.items():
        parent = _own_cgroup(controller)
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


def _own_cgroup(controller: str) -> Path | None:
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


def _kill_cgroup(path: Path) -> None:
    try:
        pids = (path / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError, PermissionError):
            pass


def _can_drop_to_nobody(workdir: Path) -> bool:
    """As root without bubblewrap, the worker can run as ``nobody`` if ``nobody`` can reach
    the interpreter, the engine and the submission (a Python under /root usually cannot)."""
    if os.getuid() != 0:
        return False
    needed = [Path(sys.executable).resolve(), Path(sys.prefix), Path(sys.base_prefix),
              _engine_dir(), workdir]
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


def launch_worker(
    *, module_name: str, workdir: Path, rx: int, tx: int, out: int, limits: Limits,
    mode: Mode = "auto", threads: int = 1, gpu: bool = False,
) -> Launch:
    """Start a worker for the submission in ``workdir`` (which holds only the module file).

    ``rx``/``tx`` are the worker's ends of the request and reply pipes; ``out`` receives its
    stdout and stderr.
    """
    if mode == "docker":
        from torchgrade.docker_exec import launch

        return launch(module_name=module_name, workdir=workdir, rx=rx, tx=tx, out=out,
                      limits=limits, threads=threads, gpu=gpu)
    use_bwrap = mode == "bwrap" or (mode == "auto" and bwrap_available())
    if mode == "bwrap" and not bwrap_available():
        raise RuntimeError("--sandbox bwrap was asked for but bubblewrap cannot run here "
                           "(install the 'bubblewrap' package)")
    folder = SANDBOX_DIR if use_bwrap else workdir
    module_file = f"{folder}/{worker_file_name(workdir, module_name)}"
    # Under the gpu profile the address-space limit is left off: the CUDA driver reserves
    # tens of GB of virtual address space at start-up, far above any useful RLIMIT_AS; the
    # worker's cgroup still bounds the memory it actually uses, where cgroups are available.
    worker_limits = {"cpu_s": limits.cpu_s, "memory_mb": None if gpu else limits.memory_mb,
                     "fsize_mb": limits.fsize_mb, "nofile": limits.nofile,
                     "reply_mb": limits.reply_mb,
                     "nproc": None if use_bwrap else limits.nproc,
                     "drop_to": NOBODY if not use_bwrap and _can_drop_to_nobody(workdir)
                     else None}
    template = os.environ.get(TEMPLATE_ENV, "") if use_bwrap else ""
    if template:
        launched = _launch_from_template(template, module_name, workdir, rx, tx, out, limits,
                                         threads, gpu, worker_limits)
        if launched is not None:
            return launched
    code = (f"import sys; sys.path.insert(0, {str(_engine_dir().parent)!r}); "
            "from torchgrade.worker import main; main()")
    cmd = [sys.executable, "-I", "-u", "-c", code, "--module-name", module_name,
           "--module-file", module_file, "--rx", str(rx), "--tx", str(tx),
           "--threads", str(threads), "--limits", json.dumps(worker_limits)]
    if use_bwrap:
        cmd = _bwrap_argv(workdir, limits, gpu) + cmd
    cgroups = _cgroup_dirs(limits)
    if cgroups:
        joins = " && ".join(f"echo $$ > {cg}/cgroup.procs" for cg in cgroups)
        cmd = ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *cmd]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if gpu and os.environ.get("CUDA_VISIBLE_DEVICES"):
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]  # this grading's GPU
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=(rx, tx),
        cwd=str(workdir), env=env, start_new_session=True,
    )
    level = []
    if use_bwrap:
        level.append("bwrap")
    if cgroups:
        level.append("cgroup")
    level.append("rlimits")
    if worker_limits["drop_to"] is not None:
        level.append("uid")
    return Launch(proc, "+".join(level), cgroups, meter=meter_for(cgroups, proc.pid))


def meter_for(cgroups: list[Path], pid: int) -> Meter:
    """The worker's CPU meter: its cpuacct cgroup where it has one, else its process tree
    (rooted at ``pid``) in /proc, else none (the wall clock stands in: cputime.NoMeter)."""
    cpuacct = next((cg for cg in cgroups if (cg / "cpuacct.usage").is_file()), None)
    if cpuacct is not None:
        return CgroupMeter(cpuacct)
    if Path(f"/proc/{pid}/stat").is_file():
        return TreeMeter(pid)
    return NoMeter()


def _launch_from_template(path: str, module_name: str, workdir: Path, rx: int, tx: int,
                          out: int, limits: Limits, threads: int, gpu: bool,
                          worker_limits: dict) -> Launch | None:
    """A worker forked from the batch's worker template (``worker_template.py``), moved into
    its cgroups before it runs anything of the student's; None when the template cannot, and
    the caller then starts one afresh."""
    from torchgrade.worker_template import TemplateUnavailable, launch

    cuda = os.environ.get("CUDA_VISIBLE_DEVICES", "") if gpu else ""
    try:
        proc = launch(path, module_name=module_name,
                      file=workdir / worker_file_name(workdir, module_name), rx=rx, tx=tx,
                      out=out, tmpfs_bytes=limits.tmpfs_mb * 1024 * 1024, threads=threads,
                      limits=worker_limits, cuda_devices=cuda)
    except TemplateUnavailable:
        return None
    cgroups = _cgroup_dirs(limits)
    worker = str(proc.worker_pid())
    for cg in list(cgroups):
        try:
            (cg / "cgroup.procs").write_text(worker)
        except OSError:  # not joined: not claimed in the level either
            cgroups.remove(cg)
            cg.rmdir()
    level = ["bwrap", "template", *(["cgroup"] if cgroups else []), "rlimits"]
    return Launch(proc, "+".join(level), cgroups,  # type: ignore[arg-type]
                  meter=meter_for(cgroups, proc.pid))
