"""Grading time and grade under load against quiet: does a busy machine change a grade?

For each assignment given (default: the training-heavy wgan_gp and vit_attention), its
``examples/<a>/correct`` submission (written independently of the reference) is graded with
every check, training included, by the real ``torchgrade grade`` command:

- ``quiet``: nothing else running;
- ``loaded``: ``--busy`` processes (default 4) spinning beside it on the machine's cores, the
  load the issue measured (4 busy processes on 2 cores: a one-thread worker's fair share is
  40 % of a core, so the fair slowdown is 2.5x).

Each run is printed and written to ``--out`` (JSON): the score, the wall time, the sum of the
checks' CPU seconds, the training checks' CPU against their budgets, the thread count, and the
load average. Never a timed assert: this measures (see benchmarks/RESULTS.md).

    .venv/bin/python benchmarks/fair_load.py
    .venv/bin/python benchmarks/fair_load.py --assignments nt_xent --busy 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from torchgrade.assignment import load  # noqa: E402
from torchgrade.report import read_report  # noqa: E402


def _spin() -> None:
    while True:
        pass


def grade(assignment: str, busy: int, work: Path) -> dict:
    a = load(assignment, ROOT)
    subs = work / f"{assignment}-{busy}" / "subs"
    out = work / f"{assignment}-{busy}" / "reports"
    (subs / "correct").mkdir(parents=True)
    shutil.copyfile(ROOT / "examples" / assignment / "correct" / f"{a.module}.py",
                    subs / "correct" / f"{a.module}.py")
    spinners = [mp.Process(target=_spin, daemon=True) for _ in range(busy)]
    for p in spinners:
        p.start()
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "torchgrade", "--root", str(ROOT), "grade",
                           assignment, str(subs), "--out", str(out), "--no-cache"],
                          capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.monotonic() - started
    load_avg = os.getloadavg()[0]
    for p in spinners:
        p.kill()
        p.join()
    report = read_report(out / "correct" / f"{assignment}.json")
    training = {c.name: {"status": c.status, "cpu_s": c.cpu_s, "budget_s": c.cpu_budget_s,
                         "wall_s": c.duration_s}
                for c in report.checks if c.kind == "training"}
    return {"assignment": assignment, "busy": busy, "exit": proc.returncode,
            "score": report.score, "max_score": report.max_score, "wall_s": round(wall, 1),
            "cpu_s": round(sum(c.cpu_s for c in report.checks), 1),
            "threads": report.extra.get("threads"), "unresolved": list(report.unresolved),
            "training": training, "load_avg_1min": load_avg}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignments", nargs="+", default=["wgan_gp", "vit_attention"])
    parser.add_argument("--busy", type=int, default=4, help="busy processes when loaded")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "fair_load.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="torchgrade-fair-") as tmp:
        for assignment in args.assignments:
            for busy in (0, args.busy):
                row = grade(assignment, busy, Path(tmp))
                rows.append(row)
                train = "; ".join(f"{n} {t['status']} {t['cpu_s']:.1f}/{t['budget_s']:g} CPU s "
                                  f"in {t['wall_s']:.0f} s" for n, t in row["training"].items())
                print(f"{assignment:<14} busy={busy}  {row['score']:g}/{row['max_score']:g}  "
                      f"wall {row['wall_s']:.1f} s  cpu {row['cpu_s']:.1f} s  threads "
                      f"{row['threads']}  load {row['load_avg_1min']:.1f}  {train}", flush=True)
    for assignment in args.assignments:
        quiet, loaded = (r for r in rows if r["assignment"] == assignment)
        print(f"{assignment}: loaded/quiet wall time {loaded['wall_s'] / quiet['wall_s']:.2f}x, "
              f"same score: {loaded['score'] == quiet['score']}")
    args.out.write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
