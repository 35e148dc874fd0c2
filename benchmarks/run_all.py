"""Speed of torchgrade: what the trust boundary costs a student and an instructor.

Four measurements (``--only`` picks some; default all), each printed as a table row and
written to ``--out`` (JSON) with the machine's load average (``os.getloadavg()``) before and
after, because a busy 2-core machine easily moves these numbers by tens of percent:

- ``latency``: ``torchgrade check nt_xent solutions/nt_xent/nt_xent.py`` end to end as a
  subprocess, against the same public checks run in-process (``Options(visibility="public",
  inprocess=True)``: submission imported into the grader, no worker, no sandbox) from a
  ``python -c`` subprocess, so both pay interpreter start-up. Medians of ``--repeats``; ratio.
- ``overhead``: one full grading (public and hidden checks) of the reference with
  ``sandbox="bwrap"``, ``sandbox="none"`` and ``inprocess=True``; the differences are the
  per-submission cost of the worker and of bubblewrap. Also the sum of the per-check times
  against the total (the rest is process start, torch import, pytest collection).
- ``startup``: ``python -I -c "import torch"`` and ``WorkerClient.start()`` until
  ``ensure_loaded()`` returns, with and without bubblewrap; plus the round trip of one small
  ``nt_xent_loss`` call through the worker against a direct call.
- ``batch``: ``--batch-size`` submissions cycled from ``examples/nt_xent/*/nt_xent.py`` (or,
  while that folder is empty, the reference and the stub, or the reference and a copy with a
  deliberate bug) graded with ``grade_batch`` at each ``--jobs`` value.

Never a timed assert: this only measures and reports (see benchmarks/RESULTS.md).

    .venv/bin/python benchmarks/run_all.py --only latency overhead startup
    .venv/bin/python benchmarks/run_all.py --only batch --batch-size 10 --jobs 1 2
    make bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "nt_xent"
REFERENCE = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.py"
STUB = ROOT / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.py"
EXAMPLES = ROOT / "examples" / ASSIGNMENT
SECTIONS = ("latency", "overhead", "startup", "batch")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}

# A deliberate bug appended to a copy of the reference when there are no example submissions
# and no stub: the loss is 1 % too large, so value checks fail and everything else passes.
BUG = '''

# --- deliberate bug added by benchmarks/run_all.py: the loss is 1 % too large ---
_reference_nt_xent_loss = nt_xent_loss


def nt_xent_loss(z_i, z_j, temperature=0.5):
    return _reference_nt_xent_loss(z_i, z_j, temperature) * 1.01
'''

BASELINE_CODE = """\
import json, os, sys
from pathlib import Path
from torchgrade.assignment import load
from torchgrade.runner import Options, grade_submission
a = load(sys.argv[1], Path(sys.argv[2]))
opts = Options(visibility="public", inprocess=True, threads=1)  # as `check`: the rubric's 1
r = grade_submission(a, Path(sys.argv[3]), "you", opts)
print(json.dumps({"score": r.score, "max_score": r.max_score, "checks": len(r.checks),
                  "passed": sum(c.status == "passed" for c in r.checks),
                  "duration_s": r.duration_s, "sandbox": r.sandbox}))
"""


# -- helpers --------------------------------------------------------------------------------
PARTIAL: dict[str, Any] = {}  # what a section has measured so far, kept if it is interrupted


class Terminated(Exception):
    """SIGTERM arrived: stop, but keep what was measured (see main)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated(f"stopped by signal {signum} (SIGTERM from outside this benchmark)")


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


def spread(values: list[float]) -> list[float]:
    return [round(min(values), 3), round(max(values), 3)] if values else []


def timed_run(cmd: list[str], timeout: float = 900) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    return time.perf_counter() - t0, proc


def section_meta(started: float, load_before: list[float]) -> dict[str, Any]:
    return {"measured_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "wall_s": round(time.perf_counter() - started, 1),
            "load_before": load_before, "load_after": load_avg()}


def torchgrade_cli() -> list[str]:
    exe = Path(sys.executable).parent / "torchgrade"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "torchgrade"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load_avg()[0]:.2f}] {msg}", file=sys.stderr,
          flush=True)


# -- 1. latency of `torchgrade check` ---------------------------------------------------------
def bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    started, load0 = time.perf_counter(), load_avg()
    check_cmd = [*torchgrade_cli(), "check", ASSIGNMENT, str(REFERENCE)]
    base_cmd = [sys.executable, "-c", BASELINE_CODE, ASSIGNMENT, str(ROOT), str(REFERENCE)]
    runs: dict[str, list[dict[str, Any]]] = {"check": [], "bare": []}
    for i in range(args.repeats):  # interleaved, so a change in load hits both alike
        for name, cmd in (("check", check_cmd), ("bare", base_cmd)):
            la = load_avg()[0]
            wall, proc = timed_run(cmd)
            row: dict[str, Any] = {"wall_s": round(wall, 3), "rc": proc.returncode,
                                   "load1": la}
            if name == "check":
                m = re.search(r"score: ([\d.]+)/([\d.]+)\s+sandbox: (\S+)\s+time: ([\d.]+)",
                              proc.stdout)
                if m:
                    row |= {"score": float(m[1]), "max_score": float(m[2]),
                            "sandbox": m[3], "report_duration_s": float(m[4])}
            else:
                try:
                    out = json.loads(proc.stdout.strip().splitlines()[-1])
                    row |= {k: out[k] for k in ("score", "max_score", "sandbox")}
                    row["report_duration_s"] = out["duration_s"]
                except (IndexError, ValueError, KeyError):
                    row["error"] = (proc.stderr or proc.stdout)[-2000:]
            if proc.returncode not in (0,):
                row["output_tail"] = (proc.stdout + proc.stderr)[-2000:]
            runs[name].append(row)
            log(f"latency {name} #{i + 1}: {wall:.2f} s rc={proc.returncode} "
                f"score={row.get('score')}/{row.get('max_score')}")
    check_med = median([r["wall_s"] for r in runs["check"]])
    bare_med = median([r["wall_s"] for r in runs["bare"]])
    return {
        "commands": {"check": " ".join(check_cmd),
                     "bare": f"{sys.executable} -c <grade_submission(..., Options("
                             "visibility='public', inprocess=True, threads=1))>"},
        "check_median_s": check_med, "check_range_s": spread([r["wall_s"] for r in
                                                              runs["check"]]),
        "bare_median_s": bare_med, "bare_range_s": spread([r["wall_s"] for r in runs["bare"]]),
        "ratio": round(check_med / bare_med, 2) if bare_med else None,
        "difference_s": round(check_med - bare_med, 3),
        "runs": runs, **section_meta(started, load0),
    }


# -- 2. per-submission overhead of the boundary -----------------------------------------------
OVERHEAD_MODES: dict[str, dict[str, Any]] = {
    "bwrap": {"sandbox": "bwrap"},  # workers forked from the worker template (the default)
    "bwrap_fresh": {"sandbox": "bwrap", "worker_template": False},
    "none": {"sandbox": "none"},
    "inprocess": {"inprocess": True},
}


def bench_overhead(args: argparse.Namespace) -> dict[str, Any]:
    from torchgrade.assignment import load
    from torchgrade.isolation import bwrap_available

    started, load0 = time.perf_counter(), load_avg()
    assignment = load(ASSIGNMENT, ROOT)
    modes = [m for m in OVERHEAD_MODES if not m.startswith("bwrap") or bwrap_available()]
    # The worker runs torch with Options.threads=1; the in-process grader would use every
    # core. One intra-op thread everywhere, so only the boundary differs.
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    try:
        return _overhead(args, assignment, modes, started, load0)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _overhead(args: argparse.Namespace, assignment: Any, modes: list[str], started: float,
              load0: list[float]) -> dict[str, Any]:
    from torchgrade.runner import Options, grade_submission

    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    # The grader and worker templates start once per batch: one untimed public grading starts
    # both here, so that the timed ones see a batch's steady state.
    grade_submission(assignment, REFERENCE, "bench-warm-up",
                     Options(visibility="public", threads=1))
    for i in range(args.repeats):
        for mode in modes:
            la = load_avg()[0]
            opts = Options(visibility="all", threads=1, **OVERHEAD_MODES[mode])
            t0 = time.perf_counter()
            report = grade_submission(assignment, REFERENCE, f"bench-{mode}", opts)
            wall = time.perf_counter() - t0
            in_checks = sum(c.duration_s for c in report.checks)
            training = sum(c.duration_s for c in report.checks if c.kind == "training")
            runs[mode].append({
                "wall_s": round(wall, 3), "report_duration_s": report.duration_s,
                "checks_sum_s": round(in_checks, 3), "outside_checks_s": round(wall - in_checks,
                                                                               3),
                "training_checks_s": round(training, 3),
                "other_checks_s": round(in_checks - training, 3),
                "per_check": {c.name: [c.kind, c.status, c.duration_s] for c in report.checks},
                "checks": len(report.checks), "score": report.score,
                "max_score": report.max_score, "sandbox": report.sandbox,
                "worker_starts": report.extra.get("worker_starts"),
                "slowest_checks": sorted(((c.name, c.duration_s) for c in report.checks),
                                         key=lambda x: -x[1])[:3],
                "not_passed": [{"name": c.name, "status": c.status, "duration_s": c.duration_s,
                                "feedback": c.feedback[:300]}
                               for c in report.checks if c.status != "passed"],
                "load1": la})
            log(f"overhead {mode} #{i + 1}: {wall:.2f} s (checks {in_checks:.2f} s) "
                f"score {report.score:g}/{report.max_score:g} sandbox={report.sandbox}")
    summary = {}
    for mode in modes:
        rows = runs[mode]
        summary[mode] = {
            "wall_median_s": median([r["wall_s"] for r in rows]),
            "wall_range_s": spread([r["wall_s"] for r in rows]),
            "checks_sum_median_s": median([r["checks_sum_s"] for r in rows]),
            "outside_checks_median_s": median([r["outside_checks_s"] for r in rows]),
            "training_checks_median_s": median([r.get("training_checks_s", 0.0)
                                                for r in rows]),
            "other_checks_median_s": median([r.get("other_checks_s", 0.0) for r in rows]),
            "not_passed": sorted({f"{c['name']} {c['status']}" for r in rows
                                  for c in r["not_passed"]}),
            "sandbox": rows[0]["sandbox"], "score": rows[0]["score"],
            "max_score": rows[0]["max_score"]}
    base = summary["inprocess"]["wall_median_s"]
    diffs = {f"{m}_minus_inprocess_s": round(summary[m]["wall_median_s"] - base, 3)
             for m in modes if m != "inprocess"}
    if "bwrap" in summary:
        diffs["bwrap_minus_none_s"] = round(summary["bwrap"]["wall_median_s"]
                                            - summary["none"]["wall_median_s"], 3)
    return {"summary": summary, "differences": diffs, "runs": runs, "torch_threads": 1,
            **section_meta(started, load0)}


# -- 3. start-up of one worker ----------------------------------------------------------------
def _import_reference() -> Any:
    spec = importlib.util.spec_from_file_location("_bench_reference_nt_xent", REFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _call_times(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_startup(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from torchgrade.assignment import load
    from torchgrade.isolation import TEMPLATE_ENV, bwrap_available
    from torchgrade.isolation import template as worker_template
    from torchgrade.proxy import LocalStudent, StudentProxy, WorkerClient

    started, load0 = time.perf_counter(), load_avg()
    n = args.startup_repeats
    result: dict[str, Any] = {"repeats": n}
    for name, code in (("python_start", "pass"), ("import_torch", "import torch")):
        walls = []
        for _ in range(n):
            wall, proc = timed_run([sys.executable, "-I", "-c", code])
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr)
            walls.append(wall)
        result[name] = {"median_s": median(walls), "range_s": spread(walls),
                        "load1": load_avg()[0]}
        log(f"startup {name}: median {median(walls):.2f} s")

    assignment = load(ASSIGNMENT, ROOT)
    modes = ["template", "bwrap", "none"] if bwrap_available() else ["none"]
    z_i = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    z_j = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    calls = 50
    for mode in modes:
        launch, loaded, rtt, level = [], [], [], ""
        # "template": forked from the worker template (started once, before timing); "bwrap":
        # a fresh bubblewrap worker; "none": a fresh worker with rlimits only.
        os.environ.pop(TEMPLATE_ENV, None)
        if mode == "template":
            os.environ[TEMPLATE_ENV] = worker_template.socket_for(False,
                                                                        assignment.preload)
        for _ in range(n):
            client = WorkerClient(REFERENCE, assignment.module, limits=assignment.limits,
                                  mode="none" if mode == "none" else "bwrap", threads=1,
                                  import_timeout_s=assignment.import_timeout_s)
            try:
                t0 = time.perf_counter()
                client.start()
                t1 = time.perf_counter()
                client.ensure_loaded()
                t2 = time.perf_counter()
                launch.append(t1 - t0)
                loaded.append(t2 - t0)
                level = client.level
                proxy = StudentProxy(client)
                proxy.nt_xent_loss(z_i, z_j, 0.5)  # warm-up
                rtt += _call_times(lambda p=proxy: p.nt_xent_loss(z_i, z_j, 0.5), calls)
            finally:
                client.close()
        result[f"worker_{mode}"] = {
            "level": level, "start_returns_median_s": median(launch),
            "start_to_loaded_median_s": median(loaded), "start_to_loaded_range_s":
            spread(loaded), "call_round_trip_median_ms": round(statistics.median(rtt) * 1e3,
                                                                3),
            "load1": load_avg()[0]}
        log(f"startup worker {mode} ({level}): start->loaded median {median(loaded):.2f} s, "
            f"call {statistics.median(rtt) * 1e3:.2f} ms")
    os.environ.pop(TEMPLATE_ENV, None)
    local = LocalStudent(_import_reference())
    local.nt_xent_loss(z_i, z_j, 0.5)
    direct = _call_times(lambda: local.nt_xent_loss(z_i, z_j, 0.5), calls * n)
    result["direct_call_median_ms"] = round(statistics.median(direct) * 1e3, 3)
    result["call_shape"] = "nt_xent_loss(z_i, z_j, 0.5) with z_i, z_j float32 [8, 16]"
    result["torch_threads_here"] = torch.get_num_threads()
    return result | section_meta(started, load0)


# -- 4. batch throughput ----------------------------------------------------------------------
def batch_sources(tmp: Path) -> tuple[list[tuple[str, Path]], str]:
    examples = sorted(EXAMPLES.glob(f"*/{ASSIGNMENT}.py"))
    if examples:
        return [(p.parent.name, p) for p in examples], f"examples/{ASSIGNMENT}/*"
    if STUB.is_file():
        return [("reference", REFERENCE), ("stub", STUB)], "reference + stub"
    buggy = tmp / "buggy" / f"{ASSIGNMENT}.py"
    buggy.parent.mkdir(parents=True)
    buggy.write_text(REFERENCE.read_text(encoding="utf-8") + BUG, encoding="utf-8")
    return [("reference", REFERENCE), ("buggy", buggy)], "reference + reference*1.01 (bug)"


def bench_batch(args: argparse.Namespace) -> dict[str, Any]:
    from torchgrade.assignment import load
    from torchgrade.batch import grade_batch
    from torchgrade.runner import Options

    started, load0 = time.perf_counter(), load_avg()
    assignment = load(ASSIGNMENT, ROOT)
    batch_options = Options(visibility="all", skip_kinds=tuple(args.batch_skip_kind),
                            forkserver=not args.no_template,
                            worker_template=not args.no_worker_template)
    result: dict[str, Any] = {"batch_size": args.batch_size, "jobs": {},
                              "skip_kinds": args.batch_skip_kind,
                              "grader_template": not args.no_template,
                              "worker_template": not args.no_worker_template}
    walls: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="torchgrade-bench-") as tmp_s:
        tmp = Path(tmp_s)
        sources, described = batch_sources(tmp)
        subs = tmp / "submissions"
        for i in range(args.batch_size):
            kind, src = sources[i % len(sources)]
            folder = subs / f"s{i:03d}-{kind}"
            folder.mkdir(parents=True)
            shutil.copyfile(src, folder / f"{assignment.module}.py")
        result["sources"] = described
        PARTIAL["batch"] = result
        result["source_names"] = [k for k, _ in sources]
        for jobs in args.jobs:
            la = load_avg()
            out = tmp / f"reports-j{jobs}"
            log(f"batch: {args.batch_size} submissions, jobs={jobs} ...")
            t0 = time.perf_counter()
            res = grade_batch(assignment, subs, out, options=batch_options, jobs=jobs)
            wall = walls[jobs] = time.perf_counter() - t0
            per_kind: dict[str, Counter] = {}
            not_passed: Counter = Counter()
            for r in res.reports:
                kind = r.student.split("-", 1)[1]
                per_kind.setdefault(kind, Counter())[f"{r.score:g}/{r.max_score:g}"] += 1
                for c in r.checks:
                    if c.status != "passed":
                        not_passed[f"{kind}: {c.name} {c.status}"] += 1
            per_report = {r.student: {
                "score": r.score, "duration_s": r.duration_s,
                "training_s": round(sum(c.duration_s for c in r.checks
                                        if c.kind == "training"), 2),
                "other_checks_s": round(sum(c.duration_s for c in r.checks
                                            if c.kind != "training"), 2)}
                for r in res.reports}
            result["jobs"][str(jobs)] = {
                "total_s": round(wall, 2), "batch_duration_s": round(res.duration_s, 2),
                "per_submission_s": round(wall / args.batch_size, 2),
                "submissions_per_min": round(args.batch_size / wall * 60, 2),
                "per_submission_report_median_s": median([r.duration_s for r in res.reports]),
                "scores": {k: dict(v) for k, v in per_kind.items()},
                "not_passed": dict(not_passed),
                "training_share": round(
                    sum(v["training_s"] for v in per_report.values())
                    / max(sum(v["duration_s"] for v in per_report.values()), 1e-9), 3),
                "reports": per_report,
                "sandbox": sorted({r.sandbox for r in res.reports}),
                "submission_errors": sum(bool(r.submission_error) for r in res.reports),
                "load_before": la, "load_after": load_avg()}
            log(f"batch jobs={jobs}: {wall:.1f} s, {args.batch_size / wall * 60:.1f}/min")
            # The same batch again over the same reports: nothing changed, so every report is
            # reused (the cost of a cached re-run: hashing, reading and re-validating reports).
            t0 = time.perf_counter()
            again = grade_batch(assignment, subs, out, options=batch_options, jobs=jobs)
            result["jobs"][str(jobs)]["cached_rerun_s"] = round(time.perf_counter() - t0, 3)
            result["jobs"][str(jobs)]["cached_rerun_reused"] = sum(
                bool(r.extra.get("cached")) for r in again.reports)
    if 1 in walls and 2 in walls and walls[2] > 0:
        result["speedup_1_to_2"] = round(walls[1] / walls[2], 2)
    return result | section_meta(started, load0)


# -- output -----------------------------------------------------------------------------------
def table_rows(name: str, r: dict[str, Any]) -> list[tuple[str, str, str]]:
    la = f"{r['load_before'][0]:.2f}->{r['load_after'][0]:.2f}"
    if name == "latency":
        return [("latency", "torchgrade check (median)", f"{r['check_median_s']:.2f} s", la),
                ("latency", "bare in-process public checks (median)",
                 f"{r['bare_median_s']:.2f} s", la),
                ("latency", "ratio check / bare", f"{r['ratio']:.2f}x "
                 f"(+{r['difference_s']:.2f} s)", la)]
    if name == "overhead":
        rows = []
        for mode, s in r["summary"].items():
            rows.append(("overhead", f"full grading, {mode} ({s['sandbox']})",
                         f"{s['wall_median_s']:.1f} s = checks {s['checks_sum_median_s']:.1f}"
                         f" (training {s.get('training_checks_median_s', 0):.1f}, other "
                         f"{s.get('other_checks_median_s', 0):.1f}) + outside "
                         f"{s['outside_checks_median_s']:.1f}", la))
        rows += [("overhead", k.replace("_s", ""), f"{v:+.2f} s", la)
                 for k, v in r["differences"].items()]
        return rows
    if name == "startup":
        rows = [("startup", "python -I -c pass", f"{r['python_start']['median_s']:.2f} s",
                 f"{r['python_start']['load1']:.2f}"),
                ("startup", "python -I -c 'import torch'",
                 f"{r['import_torch']['median_s']:.2f} s", f"{r['import_torch']['load1']:.2f}")]
        for key in ("worker_bwrap", "worker_none"):
            if key in r:
                w = r[key]
                rows.append(("startup", f"WorkerClient.start -> ensure_loaded ({w['level']})",
                             f"{w['start_to_loaded_median_s']:.2f} s", f"{w['load1']:.2f}"))
                rows.append(("startup", f"one small call through the worker ({key[7:]})",
                             f"{w['call_round_trip_median_ms']:.2f} ms", f"{w['load1']:.2f}"))
        rows.append(("startup", "the same call, direct", f"{r['direct_call_median_ms']:.3f} ms",
                     la))
        return rows
    rows = []
    for jobs, j in r["jobs"].items():
        rows.append(("batch", f"{r['batch_size']} submissions, --jobs {jobs}",
                     f"{j['total_s']:.1f} s = {j['submissions_per_min']:.1f}/min",
                     f"{j['load_before'][0]:.2f}->{j['load_after'][0]:.2f}"))
        if "training_share" in j:
            rows.append(("batch", f"  share of check time in the training check (--jobs {jobs})",
                         f"{j['training_share'] * 100:.0f} %", ""))
    if "speedup_1_to_2" in r:
        rows.append(("batch", "speed-up 1 -> 2 jobs", f"{r['speedup_1_to_2']:.2f}x", la))
    return rows


def print_table(results: dict[str, Any]) -> None:
    rows = [("section", "measure", "value", "load 1m")]
    for name in SECTIONS:
        if name in results:
            rows += table_rows(name, results[name])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for k, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def machine() -> dict[str, Any]:
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--short", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.TimeoutExpired):
        commit, dirty = "", []
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "platform": platform.platform(), "git_head": commit,
            "git_modified": [line.strip() for line in dirty if line.strip()],
            "bwrap": shutil.which("bwrap") is not None}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure what torchgrade's trust boundary costs (latency of `check`, "
        "per-submission overhead, worker start-up, batch throughput). Prints a table and "
        "writes JSON. Results and their meaning: benchmarks/RESULTS.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--repeats", type=int, default=3,
                   help="runs per variant for latency and overhead (the median is reported)")
    p.add_argument("--startup-repeats", type=int, default=5,
                   help="runs per variant for startup")
    p.add_argument("--batch-size", type=int, default=50,
                   help="submissions in the batch measurement")
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2],
                   help="--jobs values to grade the batch with")
    p.add_argument("--batch-skip-kind", action="append", default=[], metavar="KIND",
                   help="leave checks of this kind out of the batch measurement (e.g. "
                   "training: 100 submissions with training take an hour per --jobs value)")
    p.add_argument("--no-template", action="store_true",
                   help="batch graders started afresh, not forked from the grader template")
    p.add_argument("--no-worker-template", action="store_true",
                   help="batch workers started afresh by bubblewrap, not forked from the "
                   "worker template")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                   help="measure only these sections")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON results (default: benchmarks/out/results.json); sections not "
                   "measured this time are kept from an existing file")
    args = p.parse_args(argv)
    args.out = (args.out.resolve() if args.out is not None
                else ROOT / "benchmarks" / "out" / "results.json")
    if args.repeats < 1 or args.startup_repeats < 1 or args.batch_size < 1 or \
            min(args.jobs) < 1:
        p.error("--repeats, --startup-repeats, --batch-size and --jobs must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    os.chdir(ROOT)
    # One snapshot of the engine for the in-process parts, even if its files change meanwhile.
    import torchgrade.batch  # noqa: F401
    import torchgrade.proxy  # noqa: F401
    import torchgrade.runner  # noqa: F401
    if not REFERENCE.is_file():
        print(f"run_all.py: the reference {REFERENCE} is missing", file=sys.stderr)
        return 2
    bench = {"latency": bench_latency, "overhead": bench_overhead, "startup": bench_startup,
             "batch": bench_batch}
    previous: dict[str, Any] = {}
    if args.out.is_file():
        try:
            previous = json.loads(args.out.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
    sections = dict(previous.get("sections", {}))
    fresh: dict[str, Any] = {}
    failed = []
    for name in SECTIONS:
        if name not in args.only:
            continue
        log(f"measuring {name}")
        try:
            fresh[name] = sections[name] = bench[name](args) | {"argv": sys.argv[1:]}
        except Exception as exc:  # noqa: BLE001 - keep the other sections' numbers
            failed.append(name)
            sections[name] = {"error": traceback.format_exc()[-4000:], "argv": sys.argv[1:],
                              "partial": PARTIAL.get(name), "load_after": load_avg(),
                              "measured_at": dt.datetime.now().astimezone().isoformat(
                                  timespec="seconds")}
            log(f"{name} failed:\n{sections[name]['error']}")
            if isinstance(exc, Terminated):
                save(args.out, {"machine": machine(), "sections": sections})
                print_table(fresh)
                return 143
        save(args.out, {"machine": machine(), "sections": sections})  # after every section
    print_table(fresh)
    print(f"\nJSON: {args.out}")
    if failed:
        print(f"failed: {', '.join(failed)} (traceback in the JSON)", file=sys.stderr)
    return 1 if failed else 0


def save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
