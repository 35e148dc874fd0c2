"""The worker template, from the grader's and the batch's side: student workers forked from a
sandboxed process that imported torch once.

A fresh worker pays ``import torch`` (seconds; transformers adds more) before it can load the
submission. The template pays it once per batch, without letting anything of one student's
run reach the next (``template_server.py`` says how, from inside):

- **The batch's side** (:func:`socket_for`) starts one template per (GPU, preload) in the
  batch process, inside bubblewrap; its socket lives in a 0700 folder and its path reaches the
  graders in ``TORCHGRADE_WORKER_TEMPLATE``. The template exits when the batch is gone (its
  stdin closes) and takes every worker with it.
- **The grader's side** (:func:`launch`, the backend, over :func:`request_worker`) passes its
  request, reply and output pipes and the submission's descriptor over a Unix socket
  (``SOCK_SEQPACKET``, ``SCM_RIGHTS``), gets back pidfds of the worker, and moves the worker
  into its cgroups before it sends the first request. Its socket staying open is the worker's
  lease: when a grader dies, the template kills its worker.

Where the host cannot nest the namespaces (``/proc`` cannot be mounted, user namespaces are
capped), the template says why, and every worker of the batch is started afresh by bubblewrap
as before; a worker the template cannot start for any other reason is started afresh too.
Reports say which level ran: ``bwrap+template+...`` for a worker forked from the template.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from torchgrade.isolation import bwrap, cgroups
from torchgrade.isolation.base import (
    TEMPLATE_ENV,
    Launch,
    Limits,
    WorkerSpec,
    engine_dir,
    meter_for,
)
from torchgrade.isolation.template_server import TemplateUnavailable

READY_TIMEOUT_S = 300.0  # import torch (and a preload such as transformers) on a busy host

__all__ = ["TemplateUnavailable", "launch", "request_worker", "socket_for", "unavailable_why"]


# -- the backend ---------------------------------------------------------------------------------
def launch(spec: WorkerSpec) -> Launch:
    """A worker for ``spec`` forked from this grading's worker template (the socket in
    ``TORCHGRADE_WORKER_TEMPLATE``), moved into its cgroups before it runs anything of the
    student's. Raises TemplateUnavailable when there is no template or it cannot; the caller
    then starts the worker afresh."""
    path = os.environ.get(TEMPLATE_ENV, "")
    if not path:
        raise TemplateUnavailable("this grading has no worker template")
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES", "") if spec.gpu else ""
    proc = request_worker(path, module_name=spec.module_name,
                          file=spec.workdir / spec.file_name, rx=spec.rx, tx=spec.tx,
                          out=spec.out, tmpfs_bytes=spec.limits.tmpfs_mb * 1024 * 1024,
                          threads=spec.threads, limits=spec.worker_limits(),
                          cuda_devices=cuda)
    try:
        worker = proc.worker_pid()
    except TemplateUnavailable:
        proc.kill()
        proc.close()
        raise
    joined = cgroups.join(cgroups.make(spec.limits.nproc, spec.limits.memory_mb), worker)
    level = ["bwrap", "template", *(["cgroup"] if joined else []), "rlimits"]
    return Launch(proc, "+".join(level), joined,  # type: ignore[arg-type]
                  meter=meter_for(joined, proc.pid))


# -- the grader's side ---------------------------------------------------------------------------
class TemplatedProcess:
    """A worker forked by the template, as much of ``subprocess.Popen`` as a Launch uses."""

    def __init__(self, conn: socket.socket, pidfds: list[int]) -> None:
        self.conn = conn
        self.pidfds = pidfds  # the forked child, then the worker (pid 1 of its namespace)
        self.returncode: int | None = None
        self.pid = _host_pid(pidfds[0])

    def worker_pid(self) -> int:
        return _host_pid(self.pidfds[1])

    def poll(self) -> int | None:
        return self._wait(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._wait(timeout)
        if code is None:
            raise subprocess.TimeoutExpired("worker", timeout or 0)
        return code

    def _wait(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            ready, _, _ = select.select([self.conn], [], [], timeout)
            if ready:
                try:
                    msg = self.conn.recv(1 << 12)
                except OSError:
                    msg = b""
                # No word from the template: it died, and its workers with it.
                self.returncode = int(json.loads(msg)["exited"]) if msg else 128 + 9
        return self.returncode

    def kill(self) -> None:
        for fd in self.pidfds:
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except (ProcessLookupError, OSError):
                pass

    def close(self) -> None:
        for fd in self.pidfds:
            os.close(fd)
        self.pidfds = []
        self.conn.close()


def _host_pid(pidfd: int) -> int:
    """The pid, as this process sees it, of the process a pidfd refers to."""
    for line in Path(f"/proc/self/fdinfo/{pidfd}").read_text().splitlines():
        if line.startswith("Pid:"):
            return int(line.split()[1])
    raise TemplateUnavailable("this kernel does not show a pidfd's pid")


def request_worker(path: str, *, module_name: str, file: Path, rx: int, tx: int, out: int,
                   tmpfs_bytes: int, threads: int, limits: dict[str, Any],
                   cuda_devices: str = "") -> TemplatedProcess:
    """Ask the template at ``path`` for a worker serving ``rx``/``tx`` for ``file``."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.settimeout(READY_TIMEOUT_S)  # a template still importing torch answers later
    sub = -1
    try:
        conn.connect(path)
        sub = os.open(file, os.O_RDONLY)
        req = {"module_name": module_name, "file_name": file.name, "threads": threads,
               "limits": limits, "tmpfs_bytes": tmpfs_bytes, "cuda_devices": cuda_devices}
        socket.send_fds(conn, [json.dumps(req).encode()], [rx, tx, out, sub])
        msg, pidfds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
    except OSError as exc:
        conn.close()
        raise TemplateUnavailable(f"the worker template did not answer: {exc}") from exc
    finally:
        if sub >= 0:
            os.close(sub)
    answer = json.loads(msg) if msg else {"ok": False, "why": "the template closed"}
    if not answer.get("ok") or len(pidfds) != 2:
        for fd in pidfds:
            os.close(fd)
        conn.close()
        raise TemplateUnavailable(str(answer.get("why", "no worker")))
    conn.settimeout(None)
    return TemplatedProcess(conn, pidfds)


# -- the batch's side ----------------------------------------------------------------------------
class Template:
    """One template process inside bubblewrap, and the socket its graders connect to."""

    def __init__(self, gpu: bool, preload: tuple[str, ...]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="torchgrade-wt-"))
        self.folder.chmod(0o700)  # only this uid's graders can connect
        self.path = str(self.folder / "socket")
        empty = self.folder / "empty"
        empty.mkdir()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(self.path)
        listener.listen(64)
        argv = bwrap.argv(empty, Limits(), gpu)
        # Not --die-with-parent (that is the starting thread); it exits when its stdin closes.
        argv.remove("--die-with-parent")
        # A /proc each worker can mount its own over: bubblewrap's covers /proc/sys, and the
        # kernel then refuses a new proc in a nested namespace. The template runs no student
        # code; each worker mounts its own /proc, covered as bubblewrap covers it, over this.
        i = argv.index("--proc")
        argv[i:i + 2] = ["--bind", "/proc", "/proc"]
        code = (f"import sys; sys.path.insert(0, {str(engine_dir().parent)!r}); "
                "from torchgrade.isolation.template_server import serve; "
                f"serve({listener.fileno()}, {list(preload)!r}, {keep_under_tmp(argv)!r})")
        self.log = self.folder / "template.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*argv, sys.executable, "-I", "-u", "-c", code], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, pass_fds=(listener.fileno(),),
                env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"},
                start_new_session=True)
        listener.close()
        self.why = ""
        self.ready = threading.Event()
        # Graders may connect at once: the kernel queues them until the template has imported
        # torch and accepts, so its start overlaps their own (a single `torchgrade check` pays
        # no more than with a fresh worker). If it never gets ready, they are refused.
        threading.Thread(target=self._await_ready, daemon=True,
                         name="torchgrade-worker-template").start()

    def _await_ready(self) -> None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else b""
        try:
            said = json.loads(line)
        except json.JSONDecodeError:
            last = self.log.read_text(errors="replace").strip().splitlines()[-1:]
            said = {"ready": False, "why": "the template did not start"
                    + (f": {last[0][:300]}" if last else "")}
        why = "" if said.get("ready") else str(said.get("why") or "not ready")
        if why:
            self.why = why
            self.close()
        self.ready.set()

    def alive(self) -> bool:
        return not self.why and self.proc.poll() is None

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the template's signal to end, with its workers
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for p in (self.folder / "socket", self.folder / "empty", self.log, self.folder):
            try:
                p.rmdir() if p.is_dir() else p.unlink()
            except OSError:
                pass


def keep_under_tmp(argv: list[str]) -> list[str]:
    """The read-only binds of a bubblewrap command line that lie under /tmp, outermost only."""
    binds = sorted(argv[i + 2] for i, arg in enumerate(argv[:-2])
                   if arg == "--ro-bind" and argv[i + 2].startswith("/tmp/"))
    kept: list[str] = []
    for path in binds:
        if not any(path == k or path.startswith(k + "/") for k in kept):
            kept.append(path)
    return kept


_TEMPLATES: dict[tuple[bool, tuple[str, ...]], Template] = {}
_LOCK = threading.Lock()


def socket_for(gpu: bool, preload: tuple[str, ...] = ()) -> str:
    """The socket of this process's template for (``gpu``, ``preload``), started on first use;
    '' where templates cannot run here (the reason is in :func:`unavailable_why`)."""
    key = (gpu, tuple(preload))
    with _LOCK:
        if key not in _TEMPLATES and not bwrap.available():
            return ""
        tpl = _TEMPLATES.get(key)
        if tpl is None or (not tpl.why and not tpl.alive()):
            tpl = _TEMPLATES[key] = Template(gpu, tuple(preload))
        return tpl.path if tpl.alive() else ""


def unavailable_why() -> str:
    """Why templates could not run here ('' if they run), once those starting are ready."""
    with _LOCK:
        templates = list(_TEMPLATES.values())
    for tpl in templates:
        tpl.ready.wait(READY_TIMEOUT_S)
    return "; ".join(t.why for t in templates if t.why)
