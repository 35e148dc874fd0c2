"""nbgrader autograde against torchgrade grade, on the same nt_xent notebooks, in one run.

Builds a temporary nbgrader course from the generated nt_xent source notebook
(notebooks/source/nt_xent/), runs ``nbgrader generate_assignment``, and lays out N collected
submissions (``submitted/<student>/nt_xent/nt_xent.ipynb``): the reference's code, the course
text's loss, and the untouched stub, in turn. Then it grades them both ways:

- ``nbgrader autograde nt_xent``: nbgrader runs every notebook in a Jupyter kernel; its test
  cells score the public checks (the setup cell runs ``torchgrade check`` once per notebook);
- ``torchgrade grade nt_xent submitted --visibility public``: the same public checks, each
  notebook's code run in the sandboxed worker (with ``--with-hidden`` also ``--visibility
  all``: public and hidden checks, training included).

and reports the wall time of each, the ratio, and whether the public totals agree
(``nbgrader export`` against torchgrade's class CSV).

    .venv/bin/python benchmarks/nbgrader_side_by_side.py --students 50

Nothing here is asserted by a test; results go to benchmarks/out/nbgrader_side_by_side.json.
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME = "nt_xent"


def nbgrader(course: Path, *argv: str) -> float:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "TORCHGRADE_ROOT": str(ROOT), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    done = subprocess.run([str(BIN / "nbgrader"), *argv], cwd=course, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"nbgrader {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - t0


def torchgrade(*argv: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([str(BIN / "torchgrade"), "--root", str(ROOT), *argv],
                          capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise SystemExit(f"torchgrade {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - t0


def _function(file: Path, name: str) -> str:
    text = file.read_text(encoding="utf-8")
    node = next(n for n in ast.parse(text).body
                if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(text, node) + "\n"


def submissions(course: Path, n: int) -> dict[str, str]:
    """N collected notebooks; returns student -> kind."""
    source = json.loads((ROOT / "notebooks" / "source" / NAME / f"{NAME}.ipynb").read_text())
    released = json.loads((course / "release" / NAME / f"{NAME}.ipynb").read_text())
    answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")}
    wrong = dict(answers, nt_xent_loss=_function(
        ROOT / "examples" / NAME / "course_text" / f"{NAME}.py", "nt_xent_loss"))
    kinds = {}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    for i in range(n):
        kind = ("reference", "course_text", "stub")[i % 3]
        student = f"s{i:03d}"
        nb = json.loads(json.dumps(released))
        fill = {"reference": answers, "course_text": wrong, "stub": {}}[kind]
        for c in nb["cells"]:
            grade_id = c["metadata"].get("nbgrader", {}).get("grade_id")
            if grade_id in fill:
                c["source"] = fill[grade_id]
        folder = course / "submitted" / student / NAME
        folder.mkdir(parents=True)
        (folder / f"{NAME}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
        (folder / "timestamp.txt").write_text(stamp, encoding="utf-8")
        kinds[student] = kind
    return kinds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=50)
    p.add_argument("--jobs", type=int, default=1, help="torchgrade's --jobs (nbgrader "
                   "autograde grades one notebook at a time; default 1, the same)")
    p.add_argument("--with-hidden", action="store_true", help="also time torchgrade with the "
                   "hidden checks (training included: minutes per notebook)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" /
                   "nbgrader_side_by_side.json")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="torchgrade-nbside-"))
    course = tmp / "course"
    (course / "source" / NAME).mkdir(parents=True)
    shutil.copyfile(ROOT / "notebooks" / "source" / NAME / f"{NAME}.ipynb",
                    course / "source" / NAME / f"{NAME}.ipynb")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'bench'\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.Execute.timeout = 900\n",
        encoding="utf-8")
    result: dict = {"students": args.students, "jobs": args.jobs, "cpus": os.cpu_count(),
                    "load_before": list(os.getloadavg())}
    result["generate_assignment_s"] = round(nbgrader(course, "generate_assignment", NAME,
                                                     "--force"), 2)
    kinds = submissions(course, args.students)
    print(f"{args.students} submissions in {course / 'submitted'}", flush=True)
    result["nbgrader_autograde_s"] = round(nbgrader(course, "autograde", NAME, "--force"), 2)
    print(f"nbgrader autograde: {result['nbgrader_autograde_s']} s", flush=True)
    nbgrader(course, "export", "--to", str(tmp / "nbgrader.csv"))
    for visibility in ("public", "all") if args.with_hidden else ("public",):
        out = tmp / f"reports-{visibility}"
        wall = torchgrade("grade", NAME, str(course / "submitted"), "--out", str(out),
                          "--visibility", visibility, "--jobs", str(args.jobs), "--no-cache")
        result[f"torchgrade_{visibility}_s"] = round(wall, 2)
        print(f"torchgrade grade --visibility {visibility}: {wall:.1f} s", flush=True)
    result["ratio_nbgrader_to_torchgrade_public"] = round(
        result["nbgrader_autograde_s"] / result["torchgrade_public_s"], 2)
    with open(tmp / "nbgrader.csv", newline="", encoding="utf-8") as fh:
        theirs = {r["student_id"]: float(r["score"]) for r in csv.DictReader(fh)}
    with open(tmp / "reports-public" / f"{NAME}.csv", newline="", encoding="utf-8") as fh:
        ours = {r["student"]: float(r["score"]) for r in csv.DictReader(fh)}
    result["public_totals_agree"] = theirs == ours
    result["scores_by_kind"] = {k: sorted({ours[s] for s, v in kinds.items() if v == k})
                                for k in ("reference", "course_text", "stub")}
    result["nbgrader_scores_by_kind"] = {
        k: sorted({theirs.get(s, -1.0) for s, v in kinds.items() if v == k})
        for k in ("reference", "course_text", "stub")}
    result["load_after"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
