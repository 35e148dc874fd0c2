"""How long does `torchgrade similarity` take for a class of 300? (issue 19)

Builds a class of ``--students`` (300) clip_search submissions in a temporary folder: each
student's file takes every function and class of the contract from one of the three
independently written solutions (the reference, ``examples/clip_search/correct`` and
``examples/clip_search/course_text``, which has no ``create_app``), drawn at random (seeded),
with the helpers it calls; one in ten is handed in as a notebook. Then ``--copies`` (10)
students hand in a disguised copy of another student's file (a random disguise of
``tests/similarity_corpus/disguises.py``). Then it times

- ``torchgrade similarity mae_masking CLASS --out OUT`` end to end, as a subprocess (Python
  start-up, reading, fingerprinting, every pair, every page and the CSV), ``--repeats`` times;
- the phases in-process: reading the class, fingerprinting and comparing, writing the files;

and says how many pairs were flagged: the planted copies (all must be) and pairs that drew the
same solution for every function (identical code: rightly flagged too).

    .venv/bin/python benchmarks/similarity_scale.py
    .venv/bin/python benchmarks/similarity_scale.py --students 100 --repeats 1

Never a timed assert: this only measures (benchmarks/RESULTS.md, "Similarity report").
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from similarity_corpus.corpus import solution  # noqa: E402
from similarity_corpus.disguises import DISGUISES  # noqa: E402

from torchgrade import similarity  # noqa: E402
from torchgrade.assignment import load  # noqa: E402
from torchgrade.render.similarity import write_similarity  # noqa: E402
from torchgrade.similarity_prep import contract_names  # noqa: E402

ASSIGNMENT = "clip_search"
SOURCES = ("reference", "correct", "course_text")


def pieces(text: str) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """(module header: imports and constants, contract name -> its code, helper -> its code)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    header, helpers, contract = [], {}, {}
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        code = "".join(lines[first - 1:node.end_lineno])
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name.startswith("_"):
            helpers[node.name] = code
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            contract[node.name] = code
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            header.append(code)
    return header, contract, helpers


def needed(code: str, helpers: dict[str, str]) -> list[str]:
    """The helpers ``code`` calls, and those they call, in the source's order."""
    todo, seen = [code], set()
    while todo:
        names = {n.id for n in ast.walk(ast.parse(todo.pop())) if isinstance(n, ast.Name)}
        for name in sorted(names & set(helpers) - seen):
            seen.add(name)
            todo.append(helpers[name])
    return [h for h in helpers if h in seen]


def build_class(folder: Path, students: int, copies: int, seed: int) -> dict:
    rng = random.Random(seed)
    a = load(ASSIGNMENT, ROOT)
    keep = contract_names(a.stub_file.read_text("utf-8"))
    parsed = {s: pieces(solution(ASSIGNMENT, s).read_text("utf-8")) for s in SOURCES}
    names = list(parsed["reference"][1])
    choices, texts = {}, {}
    for i in range(students):
        pick = tuple(rng.choice([j for j, src in enumerate(SOURCES) if n in parsed[src][1]])
                     for n in names)
        used = sorted(set(pick))
        header = {line: None for s in used for line in parsed[SOURCES[s]][0]}
        body = [parsed[SOURCES[s]][1][n] for n, s in zip(names, pick, strict=True)]
        helpers = {parsed[SOURCES[s]][2][h]: None for n, s in zip(names, pick, strict=True)
                   for h in needed(parsed[SOURCES[s]][1][n], parsed[SOURCES[s]][2])}
        student = f"s{i:03d}"
        choices[student] = pick
        texts[student] = "".join(header) + "\n\n" + "\n\n".join([*helpers, *body]) + "\n"
    planted = []
    for student in rng.sample(sorted(texts), copies):
        source = rng.choice([s for s in texts if s != student])
        disguise = rng.choice(list(DISGUISES))
        texts[student] = DISGUISES[disguise](texts[source], keep)
        choices[student] = ("copy", source)
        planted.append((student, source, disguise))
    for i, (student, text) in enumerate(sorted(texts.items())):
        (folder / student).mkdir(parents=True)
        if i % 10 == 9:  # a notebook: one code cell per block, as a student would split it
            cells = [{"cell_type": "code", "metadata": {}, "outputs": [],
                      "execution_count": None, "source": block.splitlines(True)}
                     for block in text.split("\n\n\n") if block.strip()]
            (folder / student / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(
                {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        else:
            (folder / student / f"{ASSIGNMENT}.py").write_text(text)
    return {"choices": choices, "planted": planted, "pieces": len(names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="similarity-scale-") as tmp:
        klass = Path(tmp) / "class"
        made = build_class(klass, args.students, args.copies, args.seed)
        exe = Path(sys.executable).parent / "torchgrade"
        cli = [str(exe)] if exe.is_file() else [sys.executable, "-m", "torchgrade"]
        walls = []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            proc = subprocess.run([*cli, "--root", str(ROOT), "similarity", ASSIGNMENT,
                                   str(klass), "--out", str(Path(tmp) / f"out{i}")],
                                  capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                sys.exit(proc.stderr)
        a = load(ASSIGNMENT, ROOT)
        t0 = time.perf_counter()
        subs = similarity.collect(a, klass)
        t1 = time.perf_counter()
        result = similarity.compare(a, subs)
        t2 = time.perf_counter()
        outputs = write_similarity(result, Path(tmp) / "out-inprocess")
        t3 = time.perf_counter()
    flagged = {(p.a, p.b) for p in result.flagged}
    planted = {tuple(sorted((s, src))) for s, src, _ in made["planted"]}
    choices = made["choices"]
    def same(p) -> int:  # functions drawn from the same solution by both students
        x, y = choices[p.a], choices[p.b]
        return -1 if "copy" in (x[0], y[0]) else sum(i == j for i, j in zip(x, y, strict=True))

    alike = {(p.a, p.b): same(p) for p in result.pairs}
    identical = {k for k, n in alike.items() if n == made["pieces"]}
    print(f"## {args.students} {ASSIGNMENT} submissions ({args.copies} planted copies, one in "
          f"ten a notebook), {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}\n")
    print(f"- `torchgrade similarity` end to end: median {statistics.median(walls):.1f} s "
          f"(runs: {', '.join(f'{w:.1f}' for w in walls)})")
    print(f"- in-process: reading {t1 - t0:.1f} s, fingerprinting and comparing "
          f"{len(result.pairs)} pairs {t2 - t1:.1f} s ({result.duration_s:.1f} s in compare), "
          f"writing {len(outputs.pair_pages)} pair pages, the page and the CSV {t3 - t2:.1f} s")
    print(f"- flagged: {len(flagged)} pairs; planted copies flagged {len(planted & flagged)}/"
          f"{len(planted)}; pairs with identical code (every function from the same source) "
          f"{len(identical)}, flagged {len(identical & flagged)}; other pairs flagged "
          f"{len(flagged - planted - identical)}")
    by_same = {}
    for key, n in alike.items():
        if n >= 0:
            by_same.setdefault(n, [0, 0])[0] += 1
            by_same[n][1] += key in flagged
    print(f"- pairs by how many of the {made['pieces']} pieces both drew from the same solution "
          "(shared: flagged/pairs): " + ", ".join(f"{n}: {f}/{t}" for n, (t, f)
                                                   in sorted(by_same.items())))
    for student, source, disguise in made["planted"]:
        pair = next(p for p in result.pairs if (p.a, p.b) == tuple(sorted((student, source))))
        print(f"  - {student} copies {source} ({disguise}): {pair.score:.2f}")


if __name__ == "__main__":
    main()
