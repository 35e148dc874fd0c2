"""The student worker: the only process that ever imports a submission.

It runs inside the sandbox (see ``torchgrade.isolation``), imports the student's module (a
``.py`` file, or a notebook whose code cells it runs: :func:`load_notebook`), and answers the
grader's requests over two pipes given on the command line. Everything it sends back is
encoded by ``protocol.py``; objects that are not plain data stay here and are referred to by
handle. Nothing in this process is trusted: the grader treats every answer as a claim to check.

The student's own output goes to a separate pipe that the grader caps and never parses, so
printing cannot forge a message. What course and library code print in here (FFmpeg on the
grader's broken videos, a course model loading its weights) is kept apart from it and sent
with each reply as the course's (``torchgrade.worker_output``).
"""

from __future__ import annotations
import __future__

import argparse
import importlib
import importlib.util
import json
import linecache
import os
import random
import resource
import signal
import sys
import traceback
import types
from typing import Any

from torchgrade import nbcode, protocol
from torchgrade.isolation.base import SANDBOX_DIR
from torchgrade.worker_output import install as install_output

# Factories the grader may ask the worker to construct: course code shipped with torchgrade
# (small encoders, datasets), never anything from the grader or the reference.
CONSTRUCTIBLE_PREFIX = "torchgrade.course."
MAX_TRACEBACK_CHARS = 4000


class Handles:
    """Objects living in the worker that the grader refers to by id."""

    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}
        self.ids: dict[int, int] = {}  # id(obj) -> handle id, so one object has one handle
        self.next_id = 1

    def handle_for(self, obj: Any) -> protocol.HandleRef:
        hid = self.ids.get(id(obj))
        if hid is None or self.objects.get(hid) is not obj:
            hid = self.next_id
            self.next_id += 1
            self.objects[hid] = obj
            self.ids[id(obj)] = hid
        return protocol.HandleRef(hid, type(obj).__qualname__)

    def resolve(self, ref: protocol.HandleRef) -> Any:
        try:
            return self.objects[ref.id]
        except KeyError:
            raise LookupError(f"unknown handle {ref.id} ({ref.type_name})") from None

    def release(self, ids: list[int]) -> None:
        for hid in ids:
            obj = self.objects.pop(hid, None)
            if obj is not None:
                self.ids.pop(id(obj), None)


class Worker:
    def __init__(self, module_name: str, module_file: str,
                 max_reply_bytes: int = protocol.MAX_FRAME_BYTES) -> None:
        self.module_name = module_name
        self.module_file = module_file
        self.max_reply_bytes = max_reply_bytes  # the grader refuses larger frames
        self.module: Any = None
        self.notebook: nbcode.Selection | None = None  # a notebook's cells (op_hello)
        self.handles = Handles()
        self.course: Any = None  # worker_output.CourseLog: the course's output, kept apart

    # -- requests ---------------------------------------------------------------------------
    def op_hello(self, req: dict) -> Any:
        import torch

        nbcode.start_grading()  # a submission's run_public_checks() checks nothing here
        if self.module_file.endswith(".ipynb"):
            # Which cells run is decided before any of them does; the grader names
            # torchgrade's own cells (nbcode.select).
            self.notebook = select_cells(self.module_file, _harness(req.get("harness")))
            module = run_cells(self.module_name, self.module_file, self.notebook)
        else:
            spec = importlib.util.spec_from_file_location(self.module_name, self.module_file)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {self.module_file}")
            module = importlib.util.module_from_spec(spec)
            # Registered before exec so dataclasses and pickling-by-name work in the submission.
            sys.modules[self.module_name] = module
            spec.loader.exec_module(module)
        self.module = module
        return {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "names": sorted(n for n in vars(module) if not n.startswith("_")),
        } | self._notebook_summary()

    def _notebook_summary(self) -> dict[str, Any]:
        return {"notebook": self.notebook.summary()} if self.notebook is not None else {}

    def op_reseed(self, req: dict) -> Any:
        seed_everything(int(req["seed"]))
        return None

    def op_getattr(self, req: dict) -> Any:
        return getattr(self._target(req["target"]), str(req["name"]))

    def op_release(self, req: dict) -> Any:
        self.handles.release([int(i) for i in req["ids"]])
        return None

    def op_construct(self, req: dict) -> Any:
        factory = str(req["factory"])
        module_name, _, attr = factory.partition(":")
        if not module_name.startswith(CONSTRUCTIBLE_PREFIX) or not attr:
            raise PermissionError(f"the worker only constructs course objects, not {factory!r}")
        cls = getattr(importlib.import_module(module_name), attr)
        return cls(*req.get("args", []), **req.get("kwargs", {}))

    def op_call(self, req: dict) -> Any:
        import torch

        fn = self._target(req["target"])
        args = list(req.get("args", []))
        kwargs = dict(req.get("kwargs", {}))
        wrt = [(i, _get_arg(args, kwargs, i)) for i in req.get("grad_wrt") or []]
        for _, t in wrt:
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise TypeError("gradients can only be taken w.r.t. floating tensors")
            t.requires_grad_(True)
        before = _snapshot(args, kwargs) if req.get("check_inputs") else None
        if req.get("no_grad"):
            with torch.no_grad():
                value = fn(*args, **kwargs)
        else:
            value = fn(*args, **kwargs)
        result: dict[str, Any] = {"value": value}
        if before is not None:
            result["mutated"] = _mutated(before, args, kwargs)
        if wrt or req.get("grad_params"):
            result.update(_gradients(value, wrt, req.get("grad_params") or [], fn, args, kwargs))
        return result

    def _target(self, target: Any) -> Any:
        if not isinstance(target, str):
            return target  # an object the decoder already resolved from its handle
        if self.module is None:
            raise RuntimeError("the submission is not loaded")
        obj = self.module
        for part in target.split("."):
            if not hasattr(obj, part):
                where = os.path.basename(self.module_file)
                cells = (f" ({nbcode.describe(self.notebook.summary())})"
                         if self.notebook is not None else "")
                raise AttributeError(f"{where} does not define {target!r}{cells}")
            obj = getattr(obj, part)
        return obj

    # -- loop -------------------------------------------------------------------------------
    def serve(self, rx: Any, tx: Any) -> None:
        device_map = _device_map()
        while True:
            try:
                req = protocol.read_frame(rx, self.handles.resolve, device_map)
            except EOFError:
                return
            op = getattr(self, f"op_{req.get('op')}", None)
            try:
                if op is None:
                    raise ValueError(f"unknown op {req.get('op')!r}")
                reply = {"ok": True, "value": op(req)} | self._course_output()
                frame = protocol.dumps(reply, self.handles.handle_for, self.max_reply_bytes)
            except BaseException as exc:  # noqa: BLE001 - every failure becomes a reply
                if isinstance(exc, KeyboardInterrupt):
                    raise
                error = describe(exc, self.module_file)
                if req.get("op") == "hello":  # which cells ran, for the import error
                    error |= self._notebook_summary()
                frame = protocol.dumps({"ok": False, "error": error} | self._course_output())
            tx.write(frame)
            tx.flush()

    def _course_output(self) -> dict[str, str]:
        text = self.course.drain() if self.course is not None else ""
        return {"course_output": text} if text else {}


def _get_arg(args: list, kwargs: dict, key: Any) -> Any:
    return args[key] if isinstance(key, int) else kwargs[key]


def _snapshot(args: list, kwargs: dict) -> dict[Any, Any]:
    import torch

    items = list(enumerate(args)) + list(kwargs.items())
    return {k: v.detach().clone() for k, v in items if isinstance(v, torch.Tensor)}


def _mutated(before: dict[Any, Any], args: list, kwargs: dict) -> list[Any]:
    return [k for k, old in before.items() if not _same(_get_arg(args, kwargs, k).detach(), old)]


def _same(a: Any, b: Any) -> bool:
    import torch

    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point() or a.is_complex():
        return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())
    return torch.equal(a, b)


def _gradients(value: Any, wrt: list, grad_params: list, fn: Any, args: list,
               kwargs: dict) -> dict:
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a tensor to differentiate, got {type(value).__name__}")
    if not value.requires_grad:
        return {"grads": [None] * len(wrt), "param_grads": [None] * len(grad_params),
                "differentiable": False}
    # "self" names the called object itself (a module's forward), else an argument.
    modules = [fn if k == "self" else _get_arg(args, kwargs, k) for k in grad_params]
    params: list[tuple[int, str, Any]] = []
    for mi, m in enumerate(modules):
        if not isinstance(m, torch.nn.Module):
            raise TypeError("grad_params must name nn.Module arguments")
        params += [(mi, n, p) for n, p in m.named_parameters() if p.requires_grad]
    inputs = [t for _, t in wrt] + [p for _, _, p in params]
    out = value if value.dim() == 0 else value.sum()
    grads = torch.autograd.grad(out, inputs, allow_unused=True) if inputs else []
    param_grads: list[dict[str, Any]] = [{} for _ in modules]
    for (mi, name, _), g in zip(params, grads[len(wrt):], strict=True):
        param_grads[mi][name] = g
    return {"grads": list(grads[: len(wrt)]), "param_grads": param_grads, "differentiable": True}


def _cell_file(module_file: str, number: int) -> str:
    return f"{module_file} [cell {number}]"


def load_notebook(module_name: str, module_file: str,
                  harness: dict[str, str] | None = None) -> types.ModuleType:
    """Run a submitted notebook's code cells (:func:`torchgrade.nbcode.select` says which;
    ``harness``: the digests of torchgrade's own cells) as a module: :func:`run_cells`."""
    nbcode.start_grading()
    return run_cells(module_name, module_file, select_cells(module_file, harness))


def select_cells(module_file: str, harness: dict[str, str] | None) -> nbcode.Selection:
    from pathlib import Path

    path = Path(module_file)
    return nbcode.select(path.read_bytes(), path.name, harness)


def run_cells(module_name: str, module_file: str,
              selection: nbcode.Selection) -> types.ModuleType:
    """Run ``selection``'s cells in a fresh module, each compiled under its own name, ``<file>
    [cell N]``, so that errors and tracebacks point at the cell the student sees in Jupyter. A
    ``from __future__`` import applies to the cells after it, as in one IPython session.
    Jupyter's ``display()`` is there, and ``torchgrade_results`` is
    :class:`torchgrade.nbcode.NotChecked` (what torchgrade's setup cell gives while grading),
    so a test cell that runs as student code checks nothing."""
    module = types.ModuleType(module_name)
    module.__file__ = module_file
    # IPython's display() is a builtin in Jupyter; plain Python has none.
    module.__dict__["display"] = lambda *objs, **kw: print(*(repr(o) for o in objs))
    module.__dict__[nbcode.RESULTS_NAME] = nbcode.NotChecked()
    sys.modules[module_name] = module  # before exec, as for a .py file
    flags = 0
    for cell in selection.cells:
        name = _cell_file(module_file, cell.number)
        linecache.cache[name] = (len(cell.source), None, cell.source.splitlines(True), name)
        code = compile(cell.source, name, "exec", flags=flags, dont_inherit=True)
        flags |= code.co_flags & _FUTURE_FLAGS
        exec(code, module.__dict__)  # noqa: S102 - this process exists to run student code
    return module


def _harness(value: Any) -> dict[str, str]:
    """The grader's digests of torchgrade's cells (grade_id -> digest), as sent in hello."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag


def describe(exc: BaseException, module_file: str) -> dict[str, Any]:
    """An exception as plain data; the traceback keeps only the submission's own frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    cells = f"{module_file} [cell "  # a notebook's cells (load_notebook)
    own = [f for f in frames if f.filename == module_file or f.filename.startswith(cells)]
    # Shown where every sandbox puts it (/sandbox/<file>), so that feedback is the same
    # whatever the isolation: without namespaces the file sits in a temporary folder.
    shown = f"{SANDBOX_DIR}/{os.path.basename(module_file)}"
    for f in own:
        f.filename = shown + f.filename[len(module_file):]  # its lines were read already
    lines = traceback.format_list(own)
    text = "".join(lines)[-MAX_TRACEBACK_CHARS:]
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a hostile __str__
        message = "<exception message could not be read>"
    return {
        "type": type(exc).__name__,
        "mro": [c.__name__ for c in type(exc).__mro__],
        "message": message[:MAX_TRACEBACK_CHARS],
        "traceback": text,
    }


def apply_limits(limits: dict[str, Any]) -> None:
    """Lower this process's limits before any student code runs (it cannot raise them again)."""
    mb = 1024 * 1024
    wanted = {
        resource.RLIMIT_CPU: limits.get("cpu_s"),
        resource.RLIMIT_AS: limits["memory_mb"] * mb if limits.get("memory_mb") else None,
        resource.RLIMIT_FSIZE: limits["fsize_mb"] * mb if limits.get("fsize_mb") else None,
        resource.RLIMIT_NOFILE: limits.get("nofile"),
        resource.RLIMIT_NPROC: limits.get("nproc"),
        resource.RLIMIT_CORE: 0,
    }
    for res, value in wanted.items():
        if value is None:
            continue
        hard = resource.getrlimit(res)[1]  # never above it (that would be refused)
        value = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            if sys.platform == "linux":
                raise
            # macOS refuses some (RLIMIT_AS on some versions): the others still apply, and
            # the CPU budgets are measured from outside the worker anyway.
    # A file-size overrun should fail the write, not kill the worker silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    drop_to = limits.get("drop_to")
    if drop_to is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(int(drop_to))
        os.setuid(int(drop_to))


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _device_map() -> Any:
    import torch

    cuda = torch.cuda.is_available()
    return lambda d: d if d == "cpu" or (cuda and d.startswith("cuda")) else "cpu"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="torchgrade student worker (internal)")
    parser.add_argument("--module-name", required=True)
    parser.add_argument("--module-file", required=True)
    parser.add_argument("--rx", type=int, required=True, help="fd to read requests from")
    parser.add_argument("--tx", type=int, required=True, help="fd to write replies to")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limits", default="{}", help="JSON: cpu_s, memory_mb, ...")
    ns = parser.parse_args(argv)
    run(ns.module_name, ns.module_file, ns.rx, ns.tx, ns.threads, json.loads(ns.limits))


def run(module_name: str, module_file: str, rx_fd: int, tx_fd: int, threads: int,
        limits: dict[str, Any]) -> None:
    """Serve the grader over fds ``rx_fd``/``tx_fd``: a fresh worker (:func:`main`) or one
    forked from the worker template (``isolation/template_server.py``) once its sandbox is
    set up."""
    apply_limits(limits)
    # The channel may be stdin/stdout (--rx 0 --tx 1: a worker in a container, which cannot be
    # handed other fds): it moves to fresh fds, and fd 1 then joins fd 2, so that the student's
    # prints go to the capped output and never into the reply stream.
    rx_new, tx_new = os.dup(rx_fd), os.dup(tx_fd)
    for fd in {rx_fd, tx_fd} - {0, 1, 2}:
        os.close(fd)
    rx = os.fdopen(rx_new, "rb", buffering=1 << 16)
    tx = os.fdopen(tx_new, "wb", buffering=1 << 16)
    if 1 in (rx_fd, tx_fd):
        os.dup2(2, 1)
    # Students read stdin at their peril: it is empty.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.dont_write_bytecode = True
    import torch

    torch.set_num_threads(max(1, threads))
    seed_everything(0)
    reply_mb = limits.get("reply_mb")
    max_reply = int(reply_mb) * 1024 * 1024 if reply_mb else protocol.MAX_FRAME_BYTES
    worker = Worker(module_name, module_file, max_reply)
    # From here on fd 1 and 2 are the course's; sys.stdout/stderr route the student's writes
    # to the output pipe (torchgrade.worker_output).
    worker.course = install_output(module_file)
    worker.serve(rx, tx)

if __name__ == "__main__":
    main()
