"""What the grader and worker templates save per submission.

Grades the same submission N times one after another, rotating three modes, and prints the
median wall time of each:

- ``both``: the grader forked from the grader template (torchgrade.forkserver) and its
  workers forked from the worker template (torchgrade.isolation.template), the default;
- ``grader``: the grader forked from its template, every worker a fresh bubblewrap process;
- ``fresh``: the grader started afresh (``python -m pytest``) and fresh workers.

    .venv/bin/python benchmarks/grader_template.py                      # nt_xent, public checks
    .venv/bin/python benchmarks/grader_template.py --assignment toy --root tests/toy_course
    .venv/bin/python benchmarks/grader_template.py --visibility all --skip-kind training

Nothing here is asserted by a test; results go to benchmarks/out/grader_template.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    from torchgrade.assignment import load
    from torchgrade.runner import Options, grade_submission

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assignment", default="nt_xent")
    p.add_argument("--root", type=Path, default=ROOT)
    p.add_argument("--repeats", type=int, default=5, help="gradings per mode (default 5)")
    p.add_argument("--visibility", choices=("public", "all"), default="public")
    p.add_argument("--skip-kind", action="append", default=[])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" /
                   "grader_template.json")
    args = p.parse_args()
    a = load(args.assignment, args.root)
    modes = ("both", "grader", "fresh")
    times: dict[str, list[float]] = {m: [] for m in modes}
    scores, levels = set(), {}
    # One grading first, so that the templates run (their start is paid once per batch).
    grade_submission(a, a.solution_file, "warm-up", Options(visibility=args.visibility))
    for i in range(args.repeats):
        for mode in modes[i % 3:] + modes[:i % 3]:
            opts = Options(visibility=args.visibility, skip_kinds=tuple(args.skip_kind),
                           forkserver=mode != "fresh", worker_template=mode == "both")
            t0 = time.perf_counter()
            report = grade_submission(a, a.solution_file, f"{mode}-{i}", opts)
            times[mode].append(time.perf_counter() - t0)
            scores.add(report.score)
            levels[mode] = report.sandbox
            print(f"{mode:8} {times[mode][-1]:6.2f} s  score {report.score:g}", flush=True)
    result = {
        "assignment": a.name, "visibility": args.visibility, "skip_kinds": args.skip_kind,
        "repeats": args.repeats, "scores": sorted(scores), "sandbox": levels,
        "median_s": {m: round(statistics.median(v), 2) for m, v in times.items()},
        "all_s": {m: [round(x, 2) for x in v] for m, v in times.items()},
        "load_after": list(os.getloadavg()), "cpus": os.cpu_count(),
    }
    med = result["median_s"]
    result["saved_per_submission_s"] = {
        "grader_template": round(med["fresh"] - med["grader"], 2),
        "worker_template": round(med["grader"] - med["both"], 2),
        "both": round(med["fresh"] - med["both"], 2)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("median_s", "saved_per_submission_s", "scores",
                                             "load_after")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
