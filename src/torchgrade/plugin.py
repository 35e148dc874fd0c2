"""The pytest plugin that turns a grader suite into check results.

It runs in the trusted grader process (started by ``runner.py`` with ``-p torchgrade.plugin``)
and provides the fixtures graders use: ``student`` (the proxy to the sandboxed worker),
``reference`` (the hidden solution, hidden checks only), ``fixture_case`` (public fixtures built
from the reference), ``device`` and ``budget``. It records, as JSON lines in a file only the
grader process can see: the checks it collected, then each check's status and feedback. The
runner scores from that file alone, so a check that never reported scores zero.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from torchgrade import checks as tg_checks
from torchgrade import nbcode, profiles
from torchgrade.assignment import Assignment, load
from torchgrade.cputime import describe as describe_meter
from torchgrade.fixtures import load_cases
from torchgrade.isolation import Limits
from torchgrade.proxy import (
    LocalStudent,
    MachineOverloaded,
    StudentError,
    StudentProxy,
    StudentTimeout,
    SubmissionUnloadable,
    WorkerClient,
    WorkerCrashed,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tg-config", help="torchgrade run configuration (JSON file)")


class Session:
    """Per-run state: the configuration, the worker client and the results file."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.assignment: Assignment = load(cfg["assignment"], Path(cfg["root"]))
        self.profile: str = cfg.get("profile", "cpu")
        self.visibility: str = cfg.get("visibility", "all")
        self.skip_kinds: frozenset[str] = frozenset(cfg.get("skip_kinds", ()))
        self.results = Path(cfg["results"]).open("a", encoding="utf-8")
        self.threads = int(cfg.get("threads") or 1)
        # CPU seconds the student's code used over the checks so far, against the grading's
        # budget (submission_timeout_s).
        self.cpu_spent = 0.0
        self.client: WorkerClient | None = None
        submission = cfg.get("submission")
        self.local: LocalStudent | None = None
        if submission and Path(submission).is_file() and cfg.get("inprocess"):
            # Benchmarks only: the submission imported into this process, no boundary at all.
            self.local = LocalStudent(_import_path(Path(submission), self.assignment.module))
        elif submission and Path(submission).is_file():
            limits = Limits(**{**self.assignment.limits.__dict__, **cfg.get("limits", {})})
            self.client = WorkerClient(
                Path(submission), self.assignment.module, limits=limits,
                mode=cfg.get("sandbox", "auto"), threads=self.threads,
                gpu=profiles.uses_cuda(self.profile),
                import_timeout_s=self.assignment.import_timeout_s,
                wall_factor=self.assignment.wall_factor,
                wall_slack_s=self.assignment.wall_slack_s)
            if Path(submission).suffix == ".ipynb":  # the worker leaves exactly these out
                from torchgrade.notebooks import harness_digests

                self.client.harness = harness_digests(self.assignment)
        self.missing_reason = "" if self.client or self.local else (
            f"no submission file: expected {self.assignment.module}.py or a notebook "
            f"{self.assignment.name}.ipynb")
        self.proxy = StudentProxy(self.client) if self.client else None
        self.outcomes: dict[str, tuple[str, str]] = {}
        self.started: dict[str, float] = {}
        self.table = self.assignment.table(self.profile)  # the `budget` fixture

    def timeout_of(self, meta: dict[str, Any]) -> float:
        """A check's CPU budget: its ``timeout=`` (else the rubric's ``check_timeout_s``), or
        for a check of this profile alone (a GPU check) the profile table's ``cpu_budget_s``
        where it sets one (``gpu_smoke``: small, for its small sizes)."""
        own = profiles.own_checks(self.profile, tuple(meta.get("profiles", ())))
        if own and profiles.BUDGET_KEY in self.table:
            return float(self.table[profiles.BUDGET_KEY])
        return float(meta.get("timeout") or self.assignment.check_timeout_s)

    def emit(self, record: dict[str, Any]) -> None:
        self.results.write(json.dumps(record) + "\n")
        self.results.flush()


_SESSION: Session | None = None


def _session() -> Session:
    if _SESSION is None:
        raise RuntimeError("torchgrade plugin used without --tg-config")
    return _SESSION


def pytest_configure(config: pytest.Config) -> None:
    global _SESSION
    config.addinivalue_line("markers", "torchgrade_check(points, kind, visibility, timeout, "
                            "profiles, catches): a graded check")
    path = config.getoption("--tg-config")
    if not path:
        return
    _SESSION = Session(json.loads(Path(path).read_text(encoding="utf-8")))
    # The grader's own torch computes the reference with the worker's thread count: the same
    # numbers on every machine, whatever its cores.
    import torch

    torch.set_num_threads(_SESSION.threads)
    _watch_parent(_SESSION)
    _register_hypothesis_profile(int(_SESSION.cfg.get("max_examples", 25)))
    if _SESSION.client is not None:
        _SESSION.client.start()  # the worker imports torch while pytest collects


def _watch_parent(s: Session) -> None:
    """If the batch that started this grader dies (even by SIGKILL), stop the worker and exit
    instead of grading on for nobody."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                if s.client is not None:
                    s.client.stop()
                os._exit(70)

    threading.Thread(target=watch, name="torchgrade-parent-watch", daemon=True).start()


def _register_hypothesis_profile(max_examples: int) -> None:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "torchgrade", derandomize=True, database=None, deadline=None, print_blob=False,
        max_examples=max_examples,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much])
    settings.load_profile("torchgrade")


def _meta(item: pytest.Item) -> dict[str, Any] | None:
    marker = item.get_closest_marker(tg_checks.MARKER)
    return dict(marker.kwargs) if marker is not None else None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if _SESSION is None:
        return
    s = _SESSION
    keep, dropped, declared = [], [], []
    seen: set[str] = set()
    for item in items:
        meta = _meta(item)
        if meta is None:
            raise tg_checks.GraderConfigError(f"{item.nodeid} is not decorated with @check")
        if item.name in seen:
            raise tg_checks.GraderConfigError(f"two checks are named {item.name}")
        seen.add(item.name)
        wanted = profiles.selects(s.profile) in meta["profiles"] and (
            s.visibility == "all" or meta["visibility"] == "public") and (
            meta["kind"] not in s.skip_kinds)
        (keep if wanted else dropped).append(item)
        if wanted:
            doc = (getattr(item, "function", None).__doc__ or "").strip().splitlines()
            declared.append({
                "name": item.name, "points": meta["points"], "kind": meta["kind"],
                "visibility": meta["visibility"], "catches": meta["catches"],
                "description": doc[0] if doc else "",
                "timeout": s.timeout_of(meta),
            })
    items[:] = keep
    config.hook.pytest_deselected(items=dropped)
    s.emit({"event": "collected", "checks": declared})


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _SESSION is None:
        return
    s = _SESSION
    meta = _meta(item) or {}
    tg_checks.take_measured()  # nothing left over from an earlier check
    if s.client is not None:
        # The check's CPU budget, never more than what the grading's budget has left.
        left = s.assignment.submission_timeout_s - s.cpu_spent
        s.client.begin_check(s.client.new_budget(
            max(0.0, min(s.timeout_of(meta), left))))
    s.started[item.name] = time.monotonic()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    meta = _meta(item) or {}
    with tg_checks.revealing(meta.get("visibility") == "public"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if _SESSION is None:
        return report
    s = _SESSION
    meta = _meta(item) or {}
    if call.when in ("setup", "call") and item.name not in s.outcomes:
        outcome = _classify(call, meta, s)
        if outcome is not None:
            s.outcomes[item.name] = outcome
    if call.when == "teardown":
        status, feedback = s.outcomes.pop(item.name, ("passed", ""))
        duration = time.monotonic() - s.started.pop(item.name, time.monotonic())
        cpu = s.client.check_cpu_s() if s.client is not None else 0.0
        s.cpu_spent += cpu
        measured = tg_checks.take_measured()
        s.emit({"event": "result", "name": item.name, "status": status, "feedback": feedback,
                "duration_s": round(duration, 4), "cpu_s": round(cpu, 3)}
               | ({"measured": measured} if measured else {}))
    return report


def _classify(call: pytest.CallInfo, meta: dict, s: Session) -> tuple[str, str] | None:
    """(status, feedback) for a failed phase; None when the phase passed."""
    if call.excinfo is None:
        return None
    exc = _leaf(call.excinfo.value)
    public = meta.get("visibility") == "public"
    catches = meta.get("catches") or ""
    tail = f"\nThis check catches: {catches}" if catches else ""
    if isinstance(exc, pytest.skip.Exception):
        return "skipped", str(exc.msg if hasattr(exc, "msg") else exc)
    if isinstance(exc, SubmissionUnloadable):
        return "error", str(exc)
    if isinstance(exc, MachineOverloaded):
        return "infrastructure", (
            f"Not graded: the grading machine was overloaded. Your code {exc.message} (its "
            "limit is CPU time, not wall-clock time, and it had not used it up). This check "
            "gives and takes no points, and is graded again.")
    if isinstance(exc, StudentTimeout):
        return "timeout", _timeout_feedback(exc, s)
    if isinstance(exc, WorkerCrashed):
        return "error", (f"Your code crashed the process running it: {exc}. A crash like this "
                         "usually means too much memory, a native crash, or an exit() call.")
    if isinstance(exc, StudentError):
        where = f"\n{exc.traceback.rstrip()}" if exc.traceback else ""
        return "error", f"Your code raised {exc.type_name}: {exc.message}{where}{tail}"
    if isinstance(exc, AssertionError):
        notes = "\n".join(getattr(exc, "__notes__", []) or []) if public else ""
        return "failed", f"{exc}{tail}" + (f"\n{notes}" if notes else "")
    return "error", (f"The grader could not evaluate your answer ({type(exc).__name__}: "
                     f"{exc}).{tail}")


def _timeout_feedback(exc: StudentTimeout, s: Session) -> str:
    budget, used = exc.budget_s, exc.used_s
    if exc.why == "idle":
        return (f"Your code stopped making progress: it {exc.message} (this check allows "
                f"{budget:g} s idle). It was waiting, not computing: look for time.sleep, "
                "input(), a lock or a queue that is never released, or a process that never "
                "answers.")
    if exc.why == "total":
        return (f"The grading's CPU budget for your code "
                f"({s.assignment.submission_timeout_s:g} CPU seconds over all checks) was "
                "used up by the checks before this one: look for far too much work.")
    if exc.why == "niced":
        return (f"Your code {exc.message}: do not change your process's priority "
                "(os.nice, os.sched_setscheduler), it only starves your own code.")
    if exc.why == "wall":
        return (f"Your code did not finish within this check's time limit ({budget:g} s; "
                "this machine does not show CPU time, so the wall clock stood in): look for "
                "an endless loop or far too much work.")
    return (f"Your code did not finish within this check's CPU budget ({budget:g} CPU "
            f"seconds; it used {used:.1f}): look for an endless loop or far too much work.")


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def pytest_unconfigure(config: pytest.Config) -> None:
    global _SESSION
    if _SESSION is None:
        return
    s = _SESSION
    client = s.client
    info = {"sandbox": client.level if client else "", "worker_starts": client.starts
            if client else 0, "output": client.output.text() if client else "",
            "course_output": client.course_output.text() if client else "",
            "budget_clock": describe_meter(client.meter) if client and client.starts else "",
            "submission_error": (client.unloadable or "") if client else s.missing_reason,
            # a notebook's cells run and left out (worker's claim, cleaned: only shown)
            "notebook": nbcode.clean_summary(client.info.get("notebook")) if client else None}
    if client is not None:
        client.close()
    s.emit({"event": "finished", **info})
    s.results.close()
    _SESSION = None


# -- fixtures for grader authors ----------------------------------------------------------------
@pytest.fixture
def student(request: pytest.FixtureRequest) -> StudentProxy:
    """The submission, behind the trust boundary. Reseeded before every check."""
    s = _session()
    if s.local is not None:
        s.local.reseed(zlib.crc32(request.node.name.encode()))
        return s.local  # type: ignore[return-value]
    if s.proxy is None or s.client is None:
        raise SubmissionUnloadable(s.missing_reason)
    s.proxy.reseed(zlib.crc32(request.node.name.encode()))
    return s.proxy


@pytest.fixture(scope="session")
def reference() -> Any:
    """The hidden reference solution, imported by path. Hidden checks only."""
    s = _session()
    path = s.assignment.solution_file
    if s.visibility != "all" or not path.is_file():
        raise RuntimeError("the reference solution is not available to public checks")
    return _import_path(path, f"torchgrade_reference_{s.assignment.name}")


def _import_path(path: Path, name: str) -> Any:
    if path.suffix == ".ipynb":
        from torchgrade.worker import load_notebook

        return load_notebook(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fixture_case() -> Any:
    """``fixture_case(name)``: a dict of tensors/numbers computed from the reference."""
    s = _session()
    cases = load_cases(s.assignment.fixtures_dir / "public.safetensors")

    def get(name: str) -> dict[str, Any]:
        if name not in cases:
            raise KeyError(f"no public fixture case {name!r}: run `torchgrade author fixtures "
                           f"{s.assignment.name}`")
        return {k: (v.clone() if hasattr(v, "clone") else v) for k, v in cases[name].items()}

    return get


@pytest.fixture(scope="session")
def profile() -> str:
    return _session().profile


@pytest.fixture(scope="session")
def device() -> str:
    """"cuda" under the gpu profile (skipping when this runner has no GPU), else "cpu" (the
    gpu_smoke profile runs the GPU checks on the CPU)."""
    if profiles.device(_session().profile) == "cpu":
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        pytest.skip("the gpu profile needs CUDA, and this runner has no GPU")
    return "cuda"


@pytest.fixture(scope="session")
def budget() -> dict[str, Any]:
    """The rubric's ``[profiles.<profile>]`` table: sizes and thresholds for this profile
    (``gpu_smoke``: ``[profiles.gpu]`` overlaid by ``[profiles.gpu_smoke]``)."""
    return {k: dict(v) if isinstance(v, dict) else v for k, v in _session().table.items()}
