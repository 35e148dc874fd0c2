"""The grader template: graders forked from a process that has imported torch and pytest.

Every grading runs its grader (pytest + ``torchgrade.plugin``, trusted code) in a new process,
so that no state crosses from one submission to the next. Started afresh, that process pays
``import torch`` and ``import pytest`` (seconds) per submission. The template pays them once:

- :func:`serve` is the template. It runs in its own process (started with
  ``PYTHONHASHSEED=0``, like every grader), imports :data:`PRELOAD`, then reads requests, one
  JSON line each, on stdin (a request may name more modules to import first, once: an
  assignment's ``[assignment] preload``, such as transformers). For each it forks; the child
  becomes the grader (new session, output into the grading's log, its environment and
  working directory, then
  ``pytest.main``). It answers on stdout with the child's pid, and again with its exit status
  when it ends. It is single-threaded (it only forks, reaps and answers), and it exits when
  its stdin closes, that is, when the batch that started it is gone; its graders then see
  their parent change and stop (``plugin._watch_parent``).
- :class:`Template` is the batch's side: one template per batch process, shared by its
  threads; :func:`run_grader` forks one grader and waits for it, killing its process group
  (the grader and its worker) when the grading's time is up.

Student code never runs in the template or in a grader: it runs in the sandboxed worker each
grader starts afresh, exactly as before. Unlike ``multiprocessing``'s fork server, nothing of
the caller's ``__main__`` is re-imported into the graders.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PRELOAD = ("torch", "numpy", "pytest", "hypothesis", "_pytest.python", "torchgrade.plugin",
           "torchgrade.checks", "torchgrade.proxy")


class TemplateGone(RuntimeError):
    """The template process died; the caller starts its grader afresh instead."""


# -- the template process -------------------------------------------------------------------------
def _grader(req: dict[str, Any]) -> int:
    """In the forked child: what ``python -m pytest ARGS`` does, output into the log."""
    os.setsid()  # its own process group, killed as one on timeout (workers included)
    fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    import pytest

    try:
        return int(pytest.main(req["args"]))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def preload_modules(names: list[str] | tuple[str, ...]) -> None:
    """Import what an assignment's rubric asks for (``[assignment] preload``) here, once,
    so that every process forked afterwards has it (this template's graders, and the worker
    template's workers); a module that fails to import is left to fail in the fork, where the
    error is reported."""
    import importlib

    for name in names:
        module, _, attr = name.partition(":")  # "transformers:CLIPModel": a lazy attribute
        try:
            loaded = importlib.import_module(module)
            if attr:
                getattr(loaded, attr)
        except Exception:  # noqa: BLE001 - the fork imports it again and reports
            pass


def reaped() -> Iterator[tuple[int, int]]:
    """(pid, exit code) of every child of this process that has ended, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)


def serve() -> None:
    for name in PRELOAD:
        __import__(name)
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints go to stderr, never into the replies
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    buffer = b""

    def answer(msg: dict[str, Any]) -> None:
        replies.write(json.dumps(msg).encode() + b"\n")

    while True:
        ready, _, _ = select.select([requests, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            for pid, code in reaped():
                answer({"exited": pid, "code": code})
        if requests in ready:
            chunk = os.read(requests.fileno(), 1 << 16)
            if not chunk:
                return  # the batch is gone
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                req = json.loads(line)
                preload_modules(req.get("preload", ()))
                pid = os.fork()
                if pid == 0:
                    code = 70
                    try:
                        signal.set_wakeup_fd(-1)
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        for fd in (wake_r, wake_w, requests.fileno(), replies.fileno()):
                            os.close(fd)
                        code = _grader(req)
                    finally:
                        os._exit(code)
                answer({"id": req["id"], "pid": pid})


# -- the batch's side -----------------------------------------------------------------------------
class _Run:
    def __init__(self) -> None:
        self.pid: int | None = None
        self.code: int | None = None
        self.started = threading.Event()
        self.ended = threading.Event()


class Template:
    """One template process, shared by the threads of a batch."""

    def __init__(self) -> None:
        engine = str(Path(__file__).resolve().parent.parent)
        code = (f"import sys; sys.path.insert(0, {engine!r}); "
                "from torchgrade.forkserver import serve; serve()")
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, start_new_session=True)
        self.lock = threading.Lock()
        self.runs: dict[int, _Run] = {}  # by request id, until the template says its pid
        # Then by pid. The template answers a request's pid in the loop turn that forks it and
        # reaps only in a later turn, so a grader's exit never arrives before its pid.
        self.by_pid: dict[int, _Run] = {}
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True, name="torchgrade-template").start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.lock:
                if "pid" in msg:
                    run = self.runs.pop(msg["id"])
                    run.pid = msg["pid"]
                    self.by_pid[run.pid] = run
                    run.started.set()
                else:
                    run = self.by_pid.pop(msg["exited"])
                    run.code = msg["code"]
                    run.ended.set()
        with self.lock:  # the template died: nobody is waiting for nothing
            for run in [*self.runs.values(), *self.by_pid.values()]:
                run.started.set()
                run.ended.set()

    def run(self, args: list[str], env: dict[str, str], cwd: Path, log: Path,
            timeout_s: float, preload: tuple[str, ...] = ()) -> bool:
        """Fork one grader and wait for it; True when it had to be killed for time."""
        run = _Run()
        with self.lock:
            if not self.alive():
                raise TemplateGone("the grader template is not running")
            self.next_id += 1
            self.runs[self.next_id] = run
            req = {"id": self.next_id, "args": args, "env": env, "cwd": str(cwd),
                   "log": str(log), "preload": list(preload)}
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(json.dumps(req).encode() + b"\n")
                self.proc.stdin.flush()
            except OSError as exc:
                raise TemplateGone(f"the grader template is gone: {exc}") from exc
        run.started.wait()
        if run.pid is None:
            raise TemplateGone("the grader template died before forking")
        if run.ended.wait(timeout_s):
            return False
        try:
            os.killpg(run.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        run.ended.wait(30)
        return True


_TEMPLATE: Template | None = None
_TEMPLATE_LOCK = threading.Lock()


def template() -> Template:
    """This process's template, started on first use (and again if it died)."""
    global _TEMPLATE
    with _TEMPLATE_LOCK:
        if _TEMPLATE is None or not _TEMPLATE.alive():
            _TEMPLATE = Template()
        return _TEMPLATE


def run_grader(args: list[str], env: dict[str, str], cwd: Path, log: Path,
               timeout_s: float, preload: tuple[str, ...] = ()) -> bool:
    """Run pytest with ``args`` as a fork of the template (which first imports ``preload``,
    once); True when killed for time."""
    return template().run(args, env, cwd, log, timeout_s, preload)


if __name__ == "__main__":
    serve()
