"""What the grader template (torchgrade.forkserver) saves per submission.

Grades the same submission N times one after another, alternating a grader forked from the
template with a grader started afresh (``python -m pytest``), and prints the median wall time
of each and the saving. The worker is a fresh sandboxed process in both modes.

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
    times: dict[str, list[float]] = {"template": [], "fresh": []}
    scores = set()
    # One grading first, so that the template is running (its start is paid once per batch).
    grade_submission(a, a.solution_file, "warm-up", Options(visibility=args.visibility))
    for i in range(args.repeats):
        for mode in ("template", "fresh") if i % 2 == 0 else ("fresh", "template"):
            opts = Options(visibility=args.visibility, skip_kinds=tuple(args.skip_kind),
                           forkserver=mode == "template")
            t0 = time.perf_counter()
            report = grade_submission(a, a.solution_file, f"{mode}-{i}", opts)
            times[mode].append(time.perf_counter() - t0)
            scores.add(report.score)
            print(f"{mode:8} {times[mode][-1]:6.2f} s  score {report.score:g}", flush=True)
    result = {
        "assignment": a.name, "visibility": args.visibility, "skip_kinds": args.skip_kind,
        "repeats": args.repeats, "scores": sorted(scores),
        "median_s": {m: round(statistics.median(v), 2) for m, v in times.items()},
        "all_s": {m: [round(x, 2) for x in v] for m, v in times.items()},
        "load_after": list(os.getloadavg()), "cpus": os.cpu_count(),
    }
    saved = result["median_s"]["fresh"] - result["median_s"]["template"]
    result["saved_per_submission_s"] = round(saved, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("median_s", "saved_per_submission_s", "scores",
                                             "load_after")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
