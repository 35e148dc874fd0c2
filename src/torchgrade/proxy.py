"""The grader's side of the trust boundary: a proxy that looks like the student's module.

``student.nt_xent_loss(z_i, z_j, 0.5)`` in a grader sends the arguments to the sandboxed
worker and returns the worker's answer, decoded into fresh, plain objects. Objects that are not
plain data (a student's ``nn.Module``) come back as ``RemoteHandle``s whose attributes and
methods are used the same way.

Failures of the student's code become typed exceptions that the pytest plugin turns into
statuses: ``StudentError`` (their code raised: status ``error``), ``StudentTimeout``
(``timeout``) and ``WorkerCrashed`` (the process died: ``error``). A timeout or a crash is
sticky for the rest of the check, so hypothesis shrinking a failure does not restart a dead or
hung worker dozens of times; the next check gets a fresh worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from torchgrade import protocol
from torchgrade.sandbox import Launch, Limits, Mode, launch_worker, submission_file_name


class StudentError(Exception):
    """The submission's code raised an exception (or returned something that cannot cross)."""

    def __init__(self, type_name: str, message: str, traceback: str = "",
                 mro: tuple[str, ...] = ()) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.traceback = traceback
        self.mro = mro or (type_name,)

    def is_a(self, name: str) -> bool:
        """Whether the student's exception is (a subclass of) the builtin named ``name``."""
        return name in self.mro


class StudentTimeout(Exception):
    """The submission did not answer within the check's time limit."""


class WorkerCrashed(Exception):
    """The worker process died (segfault, os._exit, killed for memory...)."""


class SubmissionUnloadable(Exception):
    """The submission cannot be imported at all (syntax error, crash or hang on import)."""


@dataclasses.dataclass(frozen=True)
class GradResult:
    """What ``student.grad(...)`` returns: the value and the gradients the worker computed."""

    value: Any
    grads: list[Any]  # one per ``wrt`` entry; None where the input did not affect the value
    param_grads: list[dict[str, Any]]  # one {name: grad} per ``grad_params`` entry
    differentiable: bool  # False when the value did not require grad at all


class OutputSink:
    """Drains the worker's stdout/stderr, keeping the first ``cap`` bytes (never parsed)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept = bytearray()
        self.dropped = 0
        self.lock = threading.Lock()

    def drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as fh:
            while chunk := fh.read(65536):
                with self.lock:
                    room = self.cap - len(self.kept)
                    self.kept += chunk[: max(room, 0)]
                    self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        with self.lock:
            out = self.kept.decode("utf-8", errors="replace")
            if self.dropped:
                out += f"\n[torchgrade: {self.dropped} more bytes of output dropped]"
            return out


class WorkerClient:
    """Owns at most one live worker for a submission and restarts it after a crash or hang."""

    def __init__(self, submission: Path, module_name: str, *, limits: Limits | None = None,
                 mode: Mode = "auto", threads: int = 1, gpu: bool = False,
                 import_timeout_s: float = 60.0) -> None:
        self.submission = submission
        self.module_name = module_name
        self.limits = limits or Limits()
        self.mode = mode
        self.threads = threads
        self.gpu = gpu
        self.import_timeout_s = import_timeout_s
        self.output = OutputSink(self.limits.output_kb * 1024)
        self.level = ""
        self.info: dict[str, Any] = {}
        self.unloadable: str | None = None  # set once an import failed: fail fast afterwards
        self.starts = 0
        self.sticky: Exception | None = None  # a timeout or crash ends the current check
        self._launch: Launch | None = None
        self._tx: Any = None
        self._replies: queue.Queue[Any] = queue.Queue()
        self._hello_sent = False
        self._tmp = Path(tempfile.mkdtemp(prefix="torchgrade-sub-"))
        self.handles_epoch = 0  # increases with every new worker: old handles die with it

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Launch a worker and send its hello without waiting (import overlaps other work)."""
        if self._launch is not None or self.unloadable is not None:
            return
        workdir = self._tmp / f"w{self.starts}"
        workdir.mkdir()
        # A notebook stays a notebook: the worker runs its code cells inside the sandbox.
        file = workdir / submission_file_name(self.module_name, self.submission)
        shutil.copyfile(self.submission, file)
        # Readable by the unprivileged uid a worker may drop to (see sandbox.py).
        self._tmp.chmod(0o711)
        workdir.chmod(0o755)
        file.chmod(0o644)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            self._launch = launch_worker(
                module_name=self.module_name, workdir=workdir, rx=req_r, tx=rep_w, out=out_w,
                limits=self.limits, mode=self.mode, threads=self.threads, gpu=self.gpu)
        finally:
            for fd in (req_r, rep_w, out_w):
                os.close(fd)
        self.starts += 1
        self.handles_epoch += 1
        self.level = self._launch.level
        self._tx = os.fdopen(req_w, "wb")
        self._replies = queue.Queue()
        threading.Thread(target=self._read_replies, args=(rep_r, self._replies),
                         daemon=True).start()
        threading.Thread(target=self.output.drain, args=(out_r,), daemon=True).start()
        self._send({"op": "hello"})
        self._hello_sent = True

    def _read_replies(self, fd: int, replies: queue.Queue) -> None:
        # Frames are untrusted: sizes are checked as announced, before anything is buffered.
        max_bytes = self.limits.reply_mb * 1024 * 1024
        with os.fdopen(fd, "rb") as rx:
            while True:
                try:
                    replies.put(("ok", protocol.read_frame(rx, self._resolve, _keep_device,
                                                           max_bytes=max_bytes)))
                except EOFError:
                    replies.put(("eof", None))
                    return
                except Exception as exc:  # noqa: BLE001 - any undecodable frame, e.g. a
                    # tensor for a device this host lacks: never a silently dead reader
                    replies.put(("bad", f"{type(exc).__name__}: {exc}"[:500]))
                    return

    def _resolve(self, ref: protocol.HandleRef) -> RemoteHandle:
        return RemoteHandle(self, ref, self.handles_epoch)

    def stop(self) -> None:
        if self._launch is not None:
            try:
                self._tx.close()
            except OSError:
                pass
            self._launch.kill()
            self._launch = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _exit_description(self) -> str:
        assert self._launch is not None
        try:
            code = self._launch.process.wait(timeout=5)
        except Exception:  # noqa: BLE001
            return "the worker stopped answering"
        # A signal shows as -N, or as 128 + N through bwrap or a shell.
        signum = -code if code < 0 else code - 128 if 128 < code < 128 + 65 else 0
        if signum == signal.SIGKILL:
            return "the worker process was killed (SIGKILL: memory or process limit?)"
        if signum:
            try:
                name = signal.Signals(signum).name
            except ValueError:
                name = f"signal {signum}"
            return f"the worker process was killed by {name}"
        return f"the worker process exited with status {code}"

    # -- requests ---------------------------------------------------------------------------
    def _send(self, msg: dict) -> None:
        try:
            protocol.write_frame(self._tx, msg, _handle_ref)
        except (BrokenPipeError, OSError):
            pass  # the reader will see EOF and report the crash

    def _wait(self, timeout: float) -> Any:
        try:
            kind, msg = self._replies.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            self.stop()
            raise StudentTimeout(f"no answer within {timeout:.1f} s") from None
        if kind == "eof":
            why = self._exit_description()
            self.stop()
            raise WorkerCrashed(why)
        if kind == "bad":
            self.stop()
            raise WorkerCrashed(f"the worker sent a malformed message ({msg})")
        return msg

    def ensure_loaded(self) -> None:
        if self.unloadable is not None:
            raise SubmissionUnloadable(self.unloadable)
        if self._launch is None:
            self.start()
        if not self._hello_sent:
            return
        self._hello_sent = False
        try:
            reply = self._wait(self.import_timeout_s)
        except StudentTimeout:
            if self.submission.suffix == ".ipynb":
                self.unloadable = (
                    f"running the notebook's code cells took longer than "
                    f"{self.import_timeout_s:.0f} s: a cell trains, sleeps or waits for "
                    "input() at the top level. Grading runs every code cell first, so put "
                    "long work inside `if __name__ == '__main__':` (true in Jupyter, false "
                    "when grading) or in a function you call yourself")
            else:
                self.unloadable = (
                    f"importing the submission took longer than {self.import_timeout_s:.0f} s "
                    "(is there training or input() at the top level? put it under "
                    "`if __name__ == '__main__':`)")
            raise SubmissionUnloadable(self.unloadable) from None
        except WorkerCrashed as exc:
            said = self.output.text().strip()[-1500:]
            self.unloadable = f"the submission crashed while being imported: {exc}" + (
                f"\nits last output:\n{said}" if said else "")
            raise SubmissionUnloadable(self.unloadable) from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            err = reply.get("error", {}) if isinstance(reply, dict) else {}
            self.unloadable = _format_import_error(err)
            self.stop()
            raise SubmissionUnloadable(self.unloadable)
        self.info = reply.get("value") or {}

    def begin_check(self) -> None:
        """A new check starts: failures of the previous one are forgotten."""
        self.sticky = None

    def request(self, msg: dict, timeout: float) -> Any:
        """Send one request and return its decoded value, or raise a typed failure."""
        if self.sticky is not None:
            raise type(self.sticky)(*self.sticky.args)
        if timeout <= 0:
            self.sticky = StudentTimeout("the check's time was used up")
            raise self.sticky
        self.ensure_loaded()
        self._send(msg)
        try:
            reply = self._wait(timeout)
        except (StudentTimeout, WorkerCrashed) as exc:
            self.sticky = exc
            raise
        if not isinstance(reply, dict) or "ok" not in reply:
            self.stop()
            raise WorkerCrashed("the worker sent a reply without a status")
        if reply["ok"]:
            return reply.get("value")
        err = reply.get("error")
        if not isinstance(err, dict):
            raise StudentError("Error", "the submission failed without a description")
        return _raise_student_error(err)


def _raise_student_error(err: dict) -> Any:
    mro = tuple(str(m) for m in err.get("mro", []) if isinstance(m, str))
    raise StudentError(str(err.get("type", "Error")), str(err.get("message", "")),
                       str(err.get("traceback", "")), mro)


def _format_import_error(err: dict) -> str:
    where = str(err.get("traceback", "")).strip()
    text = f"the submission cannot be imported: {err.get('type')}: {err.get('message')}"
    return text + (f"\n{where}" if where else "")


def _handle_ref(value: Any) -> protocol.HandleRef | None:
    if isinstance(value, RemoteHandle):
        value._check_alive()
        return value._ref
    return None


def _keep_device(device: str) -> str:
    return device


class Deadline:
    """The time left for the current check; each call to the worker gets what remains."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.until: float | None = None

    def set(self, seconds: float) -> None:
        self.until = self.clock() + seconds

    def remaining(self, default: float = 60.0) -> float:
        if self.until is None:
            return default
        return self.until - self.clock()

    def extend(self, seconds: float) -> None:
        if self.until is not None:
            self.until += seconds


class StudentProxy:
    """Stands for the student's module in grader code. Every call crosses to the worker."""

    def __init__(self, client: WorkerClient, deadline: Deadline | None = None) -> None:
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "_deadline", deadline or Deadline())

    def __getattr__(self, name: str) -> RemoteFunction:
        # Private names stay local so repr/pretty-printer probes never cross the boundary;
        # call a private student helper explicitly with student.call("_name", ...).
        if name.startswith("_"):
            raise AttributeError(name)
        return RemoteFunction(self, name)

    def _request(self, msg: dict) -> Any:
        client = self._client
        if client.sticky is None and client.unloadable is None:
            # Importing the submission (again, after a crash or a timeout) has its own limit,
            # import_timeout_s: the check's time only runs while its calls run.
            started = self._deadline.clock()
            client.ensure_loaded()
            self._deadline.extend(self._deadline.clock() - started)
        return client.request(msg, self._deadline.remaining())

    def call(self, target: Any, *args: Any, _check_inputs: bool = False, _no_grad: bool = False,
             **kwargs: Any) -> Any:
        """Call ``target`` (a module attribute name or a handle) with plain arguments.

        With ``_check_inputs`` the result is ``(value, mutated)`` where ``mutated`` lists the
        arguments (positions or names) the call changed in place.
        """
        msg = {"op": "call", "target": _target(target), "args": list(args), "kwargs": kwargs,
               "check_inputs": _check_inputs, "no_grad": _no_grad}
        out = self._request(msg)
        if _check_inputs:
            return out["value"], out.get("mutated", [])
        return out["value"]

    def grad(self, target: Any, *args: Any, wrt: tuple[Any, ...] = (0,),
             grad_params: tuple[Any, ...] = (), **kwargs: Any) -> GradResult:
        """Call ``target`` and have the worker back-propagate from the result (summed if not
        a scalar) to the arguments in ``wrt`` and the parameters of the modules in
        ``grad_params`` (positions or names of handle arguments)."""
        msg = {"op": "call", "target": _target(target), "args": list(args), "kwargs": kwargs,
               "grad_wrt": list(wrt), "grad_params": list(grad_params)}
        out = self._request(msg)
        return GradResult(out["value"], out.get("grads", []), out.get("param_grads", []),
                          bool(out.get("differentiable", False)))

    def construct(self, factory: str, *args: Any, **kwargs: Any) -> RemoteHandle:
        """Build a course object (``torchgrade.course...``) inside the worker."""
        return self._request({"op": "construct", "factory": factory, "args": list(args),
                              "kwargs": kwargs})

    def reseed(self, seed: int) -> None:
        self._request({"op": "reseed", "seed": int(seed)})

    def defines(self, name: str) -> bool:
        self._client.ensure_loaded()
        return name in self._client.info.get("names", [])


class RemoteFunction:
    """A module-level name of the submission; calling it calls it in the worker."""

    def __init__(self, proxy: StudentProxy, name: str) -> None:
        self._proxy = proxy
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._proxy.call(self._name, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<student.{self._name}>"


class RemoteHandle:
    """An object that lives in the worker. Attribute access and calls cross the boundary."""

    def __init__(self, client: WorkerClient, ref: protocol.HandleRef, epoch: int) -> None:
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_epoch", epoch)

    @property
    def type_name(self) -> str:
        return self._ref.type_name

    def _check_alive(self) -> None:
        if self._epoch != self._client.handles_epoch:
            raise StudentError("RuntimeError", f"this {self._ref.type_name} lived in a worker "
                               "that has since been restarted")

    def _proxy(self) -> StudentProxy:
        return _current_proxy(self._client)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self._check_alive()
        return self._proxy()._request({"op": "getattr", "target": self._ref, "name": name})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._check_alive()
        return self._proxy().call(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<remote {self._ref.type_name} #{self._ref.id}>"


_PROXIES: dict[int, StudentProxy] = {}


def bind_proxy(proxy: StudentProxy) -> None:
    """Handles created by ``proxy``'s client use its deadline for their own calls."""
    _PROXIES[id(proxy._client)] = proxy


def _current_proxy(client: WorkerClient) -> StudentProxy:
    proxy = _PROXIES.get(id(client))
    if proxy is None:
        proxy = StudentProxy(client)
        bind_proxy(proxy)
    return proxy


def _target(target: Any) -> Any:
    if isinstance(target, RemoteHandle):
        target._check_alive()
        return target._ref
    if isinstance(target, str):
        return target
    raise TypeError("a call target is a module attribute name or a RemoteHandle")


class LocalStudent:
    """The same interface as ``StudentProxy`` over a module imported in this process.

    For measuring the cost of the trust boundary (``benchmarks/``) and for course staff who
    debug a grader against their own reference. Never used to grade students: it trusts the
    module completely.
    """

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._module, name)

    def _resolve(self, target: Any) -> Any:
        return getattr(self._module, target) if isinstance(target, str) else target

    def call(self, target: Any, *args: Any, _check_inputs: bool = False, _no_grad: bool = False,
             **kwargs: Any) -> Any:
        import torch

        from torchgrade.worker import _mutated, _snapshot

        before = _snapshot(list(args), kwargs) if _check_inputs else None
        with torch.no_grad() if _no_grad else contextlib.nullcontext():
            value = self._resolve(target)(*args, **kwargs)
        if before is not None:
            return value, _mutated(before, list(args), kwargs)
        return value

    def grad(self, target: Any, *args: Any, wrt: tuple[Any, ...] = (0,),
             grad_params: tuple[Any, ...] = (), **kwargs: Any) -> GradResult:
        from torchgrade.worker import _get_arg, _gradients

        args_l = [a.detach().clone() if hasattr(a, "detach") else a for a in args]
        fn = self._resolve(target)
        for key in wrt:
            _get_arg(args_l, kwargs, key).requires_grad_(True)
        value = fn(*args_l, **kwargs)
        out = _gradients(value, [(k, _get_arg(args_l, kwargs, k)) for k in wrt],
                         list(grad_params), fn, args_l, kwargs)
        return GradResult(value, out["grads"], out["param_grads"], out["differentiable"])

    def construct(self, factory: str, *args: Any, **kwargs: Any) -> Any:
        import importlib

        module_name, _, attr = factory.partition(":")
        return getattr(importlib.import_module(module_name), attr)(*args, **kwargs)

    def reseed(self, seed: int) -> None:
        from torchgrade.worker import seed_everything

        seed_everything(seed)

    def defines(self, name: str) -> bool:
        return hasattr(self._module, name)
