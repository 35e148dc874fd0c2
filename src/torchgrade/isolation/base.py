"""What every way of running a student worker shares: its limits, its environment, its paths,
what to run in it, and the :class:`Launch` every backend hands back.

The backends (``bwrap``, ``template``, ``docker``, ``rlimits``) import from here and from
nothing above them, so the package has no import circle (``tests/test_import_cycles.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torchgrade
from torchgrade.cputime import CgroupMeter, Meter, NoMeter, TreeMeter
from torchgrade.isolation import cgroups

Mode = Literal["auto", "bwrap", "docker", "none"]
NOBODY = 65534
SANDBOX_DIR = "/sandbox"  # the worker's working directory inside bubblewrap or a container
# The whole environment of a sandboxed worker (fresh under bubblewrap, or forked from the worker
# template). PYTHONHASHSEED: the same set and dict order of strings on every run, as in the
# grader.
WORKER_ENV = {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "TMPDIR": "/tmp", "PYTHONHASHSEED": "0"}
# Set in a grader's environment to the socket of its batch's worker template (template.py).
TEMPLATE_ENV = "TORCHGRADE_WORKER_TEMPLATE"


class Unavailable(RuntimeError):
    """A backend cannot start this worker here; the message says why."""


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


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """One worker to start, whatever the backend: the submission in ``workdir`` (which holds
    only the module file), the worker's ends of the request (``rx``) and reply (``tx``) pipes,
    and ``out`` for its stdout and stderr."""

    module_name: str
    workdir: Path
    rx: int
    tx: int
    out: int
    limits: Limits = Limits()
    threads: int = 1  # torch threads (the rubric's profile)
    gpu: bool = False  # the gpu profile: the GPU devices are visible, RLIMIT_AS is left off

    @property
    def file_name(self) -> str:
        """The submission file the worker loads (see :func:`worker_file_name`)."""
        return worker_file_name(self.workdir, self.module_name)

    def worker_limits(self, *, nproc: int | None = None, drop_to: int | None = None
                      ) -> dict[str, Any]:
        """The limits the worker applies to itself (``worker.apply_limits``). ``nproc``: its
        RLIMIT_NPROC, where no cgroup or namespace bounds its processes; ``drop_to``: the uid
        it becomes."""
        limits = self.limits
        # Under the gpu profile the address-space limit is left off: the CUDA driver reserves
        # tens of GB of virtual address space at start-up, far above any useful RLIMIT_AS; the
        # worker's cgroup still bounds the memory it actually uses, where cgroups exist.
        return {"cpu_s": limits.cpu_s, "memory_mb": None if self.gpu else limits.memory_mb,
                "fsize_mb": limits.fsize_mb, "nofile": limits.nofile,
                "reply_mb": limits.reply_mb, "nproc": nproc, "drop_to": drop_to}


@dataclasses.dataclass
class Launch:
    """A started worker: its process, its cgroups, its CPU meter and the isolation level."""

    process: subprocess.Popen
    level: str  # as written into reports, e.g. "bwrap+template+cgroup+rlimits"
    cgroups: list[Path]
    container: str | None = None  # the worker's Docker container (--sandbox docker)
    meter: Meter = dataclasses.field(default_factory=NoMeter)  # its CPU time (cputime.py)
    # What else stopping it takes (a container outlives its killed docker CLI).
    stop: Callable[[], None] | None = None

    def kill(self) -> None:
        if self.stop is not None:
            self.stop()
        for cg in self.cgroups:
            cgroups.kill(cg)
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
            cgroups.remove(cg)


def engine_dir() -> Path:
    """The torchgrade package folder (bound read-only into every sandbox)."""
    return Path(torchgrade.__file__).resolve().parent


def worker_code() -> str:
    """The ``python -c`` program of a worker started afresh: the engine on its path, then
    ``torchgrade.worker.main``."""
    return (f"import sys; sys.path.insert(0, {str(engine_dir().parent)!r}); "
            "from torchgrade.worker import main; main()")


@functools.cache
def submission_file_name(module_name: str, submission: Path) -> str:
    """What a submission is called in the worker's folder: ``<module>.ipynb`` for a notebook
    (the worker runs its code cells), else ``<module>.py``."""
    return f"{module_name}.ipynb" if submission.suffix == ".ipynb" else f"{module_name}.py"


def worker_file_name(workdir: Path, module_name: str) -> str:
    """The submission file the worker in ``workdir`` loads (see submission_file_name)."""
    notebook = f"{module_name}.ipynb"
    return notebook if (workdir / notebook).is_file() else f"{module_name}.py"


def meter_for(cgroup_dirs: list[Path], pid: int) -> Meter:
    """The worker's CPU meter: its cpuacct cgroup where it has one, else its process tree
    (rooted at ``pid``) in /proc, else none (the wall clock stands in: cputime.NoMeter)."""
    cpuacct = next((cg for cg in cgroup_dirs if (cg / "cpuacct.usage").is_file()), None)
    if cpuacct is not None:
        return CgroupMeter(cpuacct)
    if Path(f"/proc/{pid}/stat").is_file():
        return TreeMeter(pid)
    return NoMeter()
