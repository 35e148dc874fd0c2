"""The grader's side of the trust boundary: a proxy that looks like the student's module.

``student.nt_xent_loss(z_i, z_j, 0.5)`` in a grader sends the arguments to the sandboxed
worker and returns the worker's answer, decoded into fresh, plain objects. Objects that are not
plain data (a student's ``nn.Module``) come back as ``RemoteHandle``s whose attributes and
methods are used the same way.

Failures of the student's code become typed exceptions that the pytest plugin turns into
statuses: ``StudentError`` (their code raised: status ``error``), ``StudentTimeout``
(``timeout``: the check's CPU budget spent, or as long idle), ``WorkerCrashed`` (the process
died: ``error``) and ``MachineOverloaded`` (the wall-clock backstop ran out while the worker
was computing: ``infrastructure``, not the student's doing). Limits are CPU time of the worker
(``torchgrade.cputime``), so a busy machine does not change a grade. A timeout or a crash is
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
from pathlib import Path
from typing import Any

from torchgrade import nbcode, protocol
from torchgrade.cputime import Budget, NoMeter, Usage, Verdict
from torchgrade.isolation import (
    Launch,
    Limits,
    Mode,
    WorkerSpec,
    launch_worker,
    submission_file_name,
)


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
    """The submission did not answer within its budget: ``why`` is "cpu" (it used the CPU
    seconds it had), "idle" (it waited as long without computing), "total" (earlier checks
    used up the grading's CPU budget), "niced" (it lowered its own priority and so got too
    little CPU before the wall-clock backstop) or "wall" (no CPU time on this host: the wall
    clock)."""

    def __init__(self, message: str, why: str = "cpu", budget_s: float = 0.0,
                 used_s: float = 0.0) -> None:
        super().__init__(message, why, budget_s, used_s)
        self.message, self.why, self.budget_s, self.used_s = message, why, budget_s, used_s

    def __str__(self) -> str:
        return self.message


class MachineOverloaded(Exception):
    """The wall-clock backstop ran out while the worker was still computing: the grading
    machine gave it too little CPU. Not the student's doing: no points given or taken."""

    def __init__(self, message: str, budget_s: float = 0.0, used_s: float = 0.0,
                 wall_s: float = 0.0) -> None:
        super().__init__(message, budget_s, used_s, wall_s)
        self.message, self.budget_s, self.used_s, self.wall_s = message, budget_s, used_s, wall_s

    def __str__(self) -> str:
        return self.message


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


class CourseOutput:
    """The course's output the worker sent with its replies, capped (the worker's claim:
    shown apart and labelled, never parsed)."""

    CAP = 16 * 1024

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def take(self, reply: Any) -> None:
        text = reply.get("course_output") if isinstance(reply, dict) else None
        if not isinstance(text, str) or not text:
            return
        room = max(self.CAP - self.size, 0)
        self.parts.append(text[:room])
        self.size += min(len(text), room)
        self.dropped += max(len(text) - room, 0)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[torchgrade: {self.dropped} more characters dropped]"
        return out


class WorkerClient:
    """Owns at most one live worker for a submission and restarts it after a crash or hang."""

    def __init__(self, submission: Path, module_name: str, *, limits: Limits | None = None,
                 mode: Mode = "auto", threads: int = 1, gpu: bool = False,
                 import_timeout_s: float = 60.0, wall_factor: float = 5.0,
                 wall_slack_s: float = 30.0) -> None:
        self.submission = submission
        self.module_name = module_name
        self.limits = limits or Limits()
        self.mode = mode
        self.threads = threads
        self.gpu = gpu
        self.import_timeout_s = import_timeout_s  # CPU seconds for importing the submission
        self.wall_factor = wall_factor  # the backstop of a wait: factor x budget + slack
        self.wall_slack_s = wall_slack_s
        self.meter: Any = NoMeter()  # the live worker's (cputime): set at each start
        self.budget = self.new_budget(import_timeout_s)  # the current check's
        self.overloaded: MachineOverloaded | None = None  # the import ran out of wall time
        self.output = OutputSink(self.limits.output_kb * 1024)
        # What course and library code printed in the worker, sent with its replies and kept
        # apart from the student's output (torchgrade.worker_output); never parsed.
        self.course_output = CourseOutput()
        self.level = ""
        self.info: dict[str, Any] = {}
        # A notebook's torchgrade cells (grade_id -> nbcode.digest), sent with the hello so
        # that the worker leaves exactly those out (torchgrade.notebooks.harness_digests).
        self.harness: dict[str, str] = {}
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
        # Readable by the unprivileged uid a worker may drop to (see isolation/rlimits.py).
        self._tmp.chmod(0o711)
        workdir.chmod(0o755)
        file.chmod(0o644)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            self._launch = launch_worker(WorkerSpec(
                module_name=self.module_name, workdir=workdir, rx=req_r, tx=rep_w, out=out_w,
                limits=self.limits, threads=self.threads, gpu=self.gpu), self.mode)
        finally:
            for fd in (req_r, rep_w, out_w):
                os.close(fd)
        self.starts += 1
        self.handles_epoch += 1
        self.level = self._launch.level
        self.meter = self._launch.meter
        self._tx = os.fdopen(req_w, "wb")
        self._replies = queue.Queue()
        threading.Thread(target=self._read_replies, args=(rep_r, self._replies),
                         daemon=True).start()
        threading.Thread(target=self.output.drain, args=(out_r,), daemon=True).start()
        self._send({"op": "hello", "harness": self.harness})
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

    def new_budget(self, cpu_s: float) -> Budget:
        """A budget of ``cpu_s`` CPU seconds with this grading's wall-clock backstop."""
        return Budget(cpu_s, self.wall_factor, self.wall_slack_s)

    def usage(self) -> Usage | None:
        """The live worker's usage now (None without a worker or a meter)."""
        return self.meter.read() if self._launch is not None else None

    def _wait(self, budget: Budget) -> Any:
        """The worker's next reply, waiting while ``budget`` allows. The meter is read only
        when a wait lasts (every 20 ms at first, then every 0.5 s): quick calls cost nothing."""
        budget.metered = not isinstance(self.meter, NoMeter)
        wait = budget.wait()
        pause = 0.02
        while True:
            try:
                kind, msg = self._replies.get(timeout=pause)
                break
            except queue.Empty:
                verdict = wait.judge(self.usage())
                if verdict is not None:
                    self.stop()
                    raise self._stopped(verdict, budget,
                                        wall=budget.clock() - wait.started) from None
                pause = min(pause * 2, 0.5)
        wait.end(self.usage() if wait.at_start is not None else None)
        if kind == "eof":
            why = self._exit_description()
            self.stop()
            raise WorkerCrashed(why)
        if kind == "bad":
            self.stop()
            raise WorkerCrashed(f"the worker sent a malformed message ({msg})")
        return msg

    def _stopped(self, verdict: Verdict, budget: Budget, wall: float) -> Exception:
        used = budget.used_cpu_s
        if verdict == "overloaded" and self.meter.deprioritised():
            # Starved by its own os.nice() or SCHED_IDLE, not by the machine: its doing.
            return StudentTimeout(f"lowered its own CPU priority and used {used:.1f} of its "
                                  f"{budget.cpu_s:g} CPU seconds in {wall:.0f} s", "niced",
                                  budget.cpu_s, used)
        if verdict == "overloaded":
            return MachineOverloaded(
                f"used {used:.1f} of its {budget.cpu_s:g} CPU seconds in {wall:.0f} s of wall "
                "clock: the grading machine was too busy to run it", budget.cpu_s, used, wall)
        if verdict == "idle":
            return StudentTimeout(f"waited {budget.idle_s + wall:.0f} s without computing",
                                  "idle", budget.cpu_s, used)
        how = "cpu" if budget.metered else "wall"
        return StudentTimeout(f"used its {budget.cpu_s:g} s budget", how, budget.cpu_s, used)

    def ensure_loaded(self) -> None:
        if self.unloadable is not None:
            raise SubmissionUnloadable(self.unloadable)
        if self._launch is None:
            self.start()
        if not self._hello_sent:
            return
        self._hello_sent = False
        if self.overloaded is not None:
            raise self.overloaded
        budget = self.new_budget(self.import_timeout_s)
        budget.start(Usage(0.0, 0.0))  # a new worker: all its work so far is the import
        try:
            reply = self._wait(budget)
        except MachineOverloaded as exc:
            self.overloaded = MachineOverloaded(
                f"importing the submission {exc.message}", exc.budget_s, exc.used_s, exc.wall_s)
            raise self.overloaded from None
        except StudentTimeout as exc:
            spent = (f"took longer than {self.import_timeout_s:.0f} s, waiting without "
                     "computing (a sleep or a wait at the top level)" if exc.why == "idle"
                     else f"took longer than {self.import_timeout_s:.0f} CPU seconds")
            if self.submission.suffix == ".ipynb":
                self.unloadable = (
                    f"running the notebook's code cells {spent}: a cell trains, sleeps or "
                    "waits for input() at the top level. Grading runs every code cell first, "
                    "so put long work inside `if __name__ == '__main__':` (true in Jupyter, "
                    "false when grading) or in a function you call yourself")
            else:
                self.unloadable = (
                    f"importing the submission {spent} (is there training or input() at the "
                    "top level? put it under `if __name__ == '__main__':`)")
            raise SubmissionUnloadable(self.unloadable) from None
        except WorkerCrashed as exc:
            said = self.output.text().strip()[-1500:]
            self.unloadable = f"the submission crashed while being imported: {exc}" + (
                f"\nits last output:\n{said}" if said else "")
            raise SubmissionUnloadable(self.unloadable) from None
        self.course_output.take(reply)
        if not isinstance(reply, dict) or not reply.get("ok"):
            err = reply.get("error", {}) if isinstance(reply, dict) else {}
            self.info = {"notebook": err.get("notebook")} if isinstance(err, dict) else {}
            self.unloadable = _format_import_error(err)
            self.stop()
            raise SubmissionUnloadable(self.unloadable)
        self.info = reply.get("value") or {}

    def begin_check(self, budget: Budget | None = None) -> None:
        """A new check starts, with ``budget`` for its student work (counted from its first
        call, after any import): failures of the previous check are forgotten."""
        self.sticky = None
        self.budget = budget if budget is not None else self.new_budget(60.0)

    def check_cpu_s(self) -> float:
        """CPU seconds the current check's student work has used (the worker's, measured
        from outside; wall time in calls where the host shows no CPU time)."""
        return self.budget.spent(self.usage())

    def request(self, msg: dict) -> Any:
        """Send one request and return its decoded value, or raise a typed failure."""
        if self.sticky is not None:
            raise self.sticky
        budget = self.budget
        if budget.used_cpu_s >= budget.cpu_s:
            self.sticky = StudentTimeout("the check's CPU budget was used up",
                                         "total" if budget.cpu_s <= 0 else "cpu",
                                         budget.cpu_s, budget.used_cpu_s)
            raise self.sticky
        self.ensure_loaded()
        if budget.baseline is None:
            budget.start(self.usage())
        self._send(msg)
        try:
            reply = self._wait(budget)
        except (StudentTimeout, WorkerCrashed, MachineOverloaded) as exc:
            self.sticky = exc
            raise
        if not isinstance(reply, dict) or "ok" not in reply:
            self.stop()
            raise WorkerCrashed("the worker sent a reply without a status")
        self.course_output.take(reply)
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
    cells = f"\nthe notebook's {nbcode.describe(err['notebook'])}" if "notebook" in err else ""
    return text + (f"\n{where}" if where else "") + cells


def _handle_ref(value: Any) -> protocol.HandleRef | None:
    if isinstance(value, RemoteHandle):
        value._check_alive()
        return value._ref
    return None


def _keep_device(device: str) -> str:
    return device


class StudentProxy:
    """Stands for the student's module in grader code. Every call crosses to the worker."""

    def __init__(self, client: WorkerClient) -> None:
        object.__setattr__(self, "_client", client)

    def __getattr__(self, name: str) -> RemoteFunction:
        # Private names stay local so repr/pretty-printer probes never cross the boundary;
        # call a private student helper explicitly with student.call("_name", ...).
        if name.startswith("_"):
            raise AttributeError(name)
        return RemoteFunction(self, name)

    def _request(self, msg: dict) -> Any:
        # Importing the submission (again, after a crash or a timeout) has its own budget,
        # import_timeout_s; the check's budget counts the student's work from its first call.
        return self._client.request(msg)

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
        # A proxy holds nothing but its client: each check's budget lives on the client.
        return StudentProxy(self._client)

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
