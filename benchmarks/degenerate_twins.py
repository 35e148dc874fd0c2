"""What do the degenerate twins of each stub score? (issue 15, "A non-answer earns nothing")

Generates the four twins of every assignment's stub (``torchgrade.twins``: every top-level
function returns None, a ``[2]`` NaN tensor, a 0-dim zero, or its first argument), grades
them exactly as students are graded (``grade_batch``, every check, the cpu profile) and prints
a markdown table: each twin's score and the checks that awarded it points, and the wall time
of each assignment's twins. ``--json`` also writes the raw numbers.

``--marginal`` measures instead what the twins add to CI's audit (tests/conftest.py): the audit
grades them in its first batch, beside the reference and the stub (every check; the twins fill
the second job while the reference trains), so that batch is timed without and with them,
back to back, and the difference is their cost.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/degenerate_twins.py --jobs 2
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/degenerate_twins.py nt_xent mae_masking

Never a timed assert: this only measures (see benchmarks/degenerate_twins.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from torchgrade.assignment import available, load
from torchgrade.batch import grade_batch
from torchgrade.runner import Options
from torchgrade.twins import generate_twins

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str, work: Path, jobs: int) -> dict:
    assignment = load(name, ROOT)
    twins = generate_twins(assignment.stub_file.read_text(encoding="utf-8"))
    staging = work / name / "submissions"
    for twin in twins:
        target = staging / twin.student / f"{assignment.module}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(twin.source, encoding="utf-8")
    started = time.monotonic()
    batch = grade_batch(assignment, staging, work / name / "reports", options=Options(),
                        jobs=jobs, students=[t.student for t in twins], use_cache=False)
    wall = time.monotonic() - started
    rows = {}
    for report in batch.reports:
        rows[report.student] = {
            "score": report.score, "max_score": report.max_score,
            "awarded": [f"{c.name} ({c.points:g})" for c in report.checks if c.points > 0],
            "statuses": {s: sum(c.status == s for c in report.checks)
                         for s in ("passed", "failed", "error", "timeout", "skipped")},
            "slowest": sorted(((round(c.duration_s, 1), c.name) for c in report.checks),
                              reverse=True)[:3],
            "duration_s": round(report.duration_s, 1),
        }
    return {"assignment": name, "grader_version": assignment.version,
            "wall_s": round(wall, 1), "twins": rows}


def marginal(name: str, work: Path, jobs: int) -> dict:
    """Wall time of the audit's first batch (reference, stub) without and with the twins."""
    assignment = load(name, ROOT)
    staging = work / name / "first"
    sources = {"reference": assignment.solution_file.read_text(encoding="utf-8"),
               "stub": assignment.stub_file.read_text(encoding="utf-8")}
    twins = generate_twins(sources["stub"])
    sources |= {t.student: t.source for t in twins}
    for student, source in sources.items():
        target = staging / student / f"{assignment.module}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    walls, reference = {}, {}
    for arm, students in (("without", ["reference", "stub"]),
                          ("with", ["reference", "stub", *(t.student for t in twins)])):
        started = time.monotonic()
        batch = grade_batch(assignment, staging, work / name / arm, options=Options(),
                            jobs=jobs, students=students, use_cache=False)
        walls[arm] = round(time.monotonic() - started, 1)
        ref = next(r for r in batch.reports if r.student == "reference")
        reference[arm] = (f"{ref.score:g}/{ref.max_score:g}, training "
                          + ", ".join(f"{c.duration_s:.1f} s {c.status}" for c in ref.checks
                                      if c.kind == "training"))
    return {"assignment": name, **walls, "added_s": round(walls["with"] - walls["without"], 1),
            "reference": reference["with"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--marginal", action="store_true", help="time the audit's first batch "
                        "without and with the twins instead")
    args = parser.parse_args(argv)
    names = args.assignments or available(ROOT)
    if args.marginal:
        return print_marginal(names, args.jobs)
    results = []
    with tempfile.TemporaryDirectory(prefix="twins-") as tmp:
        for name in names:
            print(f"grading the twins of {name} ...", file=sys.stderr, flush=True)
            results.append(measure(name, Path(tmp), args.jobs))
    print(f"load average after: {os.getloadavg()[0]:.1f}\n")
    print("| assignment (grader version) | twin | score | checks that awarded points |")
    print("|---|---|---|---|")
    for r in results:
        for student, row in sorted(r["twins"].items()):
            awarded = ", ".join(row["awarded"]) or "-"
            print(f"| {r['assignment']} ({r['grader_version']}) | {student} | "
                  f"{row['score']:g}/{row['max_score']:g} | {awarded} |")
    print("\n| assignment | twins' wall time (s, --jobs "
          f"{args.jobs}) | slowest check of any twin (s) |")
    print("|---|---|---|")
    for r in results:
        slowest = max((s for row in r["twins"].values() for s in row["slowest"]),
                      default=(0.0, "-"))
        print(f"| {r['assignment']} | {r['wall_s']:g} | {slowest[1]} ({slowest[0]:g}) |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def print_marginal(names: list[str], jobs: int) -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="twins-") as tmp:
        for name in names:
            print(f"timing the first audit batch of {name} ...", file=sys.stderr, flush=True)
            rows.append(marginal(name, Path(tmp), jobs))
    print(f"load average after: {os.getloadavg()[0]:.1f}\n")
    print("| assignment | reference + stub (s) | + 4 twins (s) | added (s) | reference (with) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['assignment']} | {r['without']:g} | {r['with']:g} | {r['added_s']:g} | "
              f"{r['reference']} |")
    total = sum(r["added_s"] for r in rows)
    print(f"| total | {sum(r['without'] for r in rows):g} | {sum(r['with'] for r in rows):g} "
          f"| {total:g} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
