"""How well does the similarity pass tell copies from honest solutions? (issue 19)

On the corpus of ``tests/similarity_corpus`` (see its ``corpus.py``):

- every disguise of ``tests/similarity_corpus/disguises.py`` applied to each assignment's
  ``examples/<name>/correct``, scored against its source: flagged or not, the score;
- the independently written honest pairs, and the wider (correlated) sample of one-edit
  variants of one honest solution against the others: their scores' distribution;
- the same with torchgrade's pre-normalisation switched off (``--raw``: copydetect on the text
  as it is), which shows what that step buys;
- ``--k 25 30 35 40`` repeats it for other k-gram lengths.

Prints markdown tables (benchmarks/RESULTS.md, "Similarity report"). Only measures: the tests
(tests/test_similarity.py) assert on the same corpus.

    .venv/bin/python benchmarks/similarity_separation.py
    .venv/bin/python benchmarks/similarity_separation.py --raw --k 25 35 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from similarity_corpus.corpus import (  # noqa: E402
    ASSIGNMENTS,
    honest_pairs,
    solution,
    variant_pairs,
)
from similarity_corpus.disguises import DISGUISES  # noqa: E402

from torchgrade import similarity  # noqa: E402
from torchgrade.assignment import load  # noqa: E402
from torchgrade.similarity_prep import contract_names  # noqa: E402


def score(assignment, texts: dict[str, str], threshold: float) -> dict[tuple[str, str], float]:
    subs = [similarity.Submission(name, None, text) for name, text in texts.items()]
    result = similarity.compare(assignment, subs, threshold)
    return {(p.a, p.b): p for p in result.pairs}


def measure(threshold: float) -> dict:
    disguised: dict[str, dict[str, object]] = {d: {} for d in DISGUISES}
    honest, variants = [], []
    for name in ASSIGNMENTS:
        a = load(name, ROOT)
        keep = contract_names(a.stub_file.read_text("utf-8"))
        base = solution(name, "correct").read_text("utf-8")
        texts = {"source": base, **{d: fn(base, keep) for d, fn in DISGUISES.items()}}
        pairs = score(a, texts, threshold)
        for d in DISGUISES:
            disguised[d][name] = pairs[tuple(sorted(("source", d)))]
        wanted = [p for p in honest_pairs() if p[0] == name]
        more = [p for p in variant_pairs() if p[0] == name]
        names = {x for _, *ab in wanted + more for x in ab}
        pairs = score(a, {n: solution(name, n).read_text("utf-8") for n in names}, threshold)
        honest += [(name, x, y, pairs[tuple(sorted((x, y)))]) for _, x, y in wanted]
        variants += [(name, x, y, pairs[tuple(sorted((x, y)))]) for _, x, y in more]
    return {"disguised": disguised, "honest": honest, "variants": variants}


def report(m: dict, label: str, threshold: float) -> None:
    print(f"\n### {label} (threshold {threshold})\n")
    print("| disguise | " + " | ".join(ASSIGNMENTS) + " | flagged |")
    print("|---" * (len(ASSIGNMENTS) + 2) + "|")
    for d, by in m["disguised"].items():
        cells = [f"{by[a].score:.2f}" + ("" if by[a].flagged else " (no)") for a in ASSIGNMENTS]
        print(f"| {d} | " + " | ".join(cells)
              + f" | {sum(p.flagged for p in by.values())}/{len(by)} |")
    print("\nhonest pairs (written independently):\n")
    print("| assignment | a | b | score | flagged |\n|---|---|---|---|---|")
    for a, x, y, p in sorted(m["honest"], key=lambda r: -r[3].score):
        print(f"| {a} | {x} | {y} | {p.score:.3f} | {'YES' if p.flagged else 'no'} |")
    for what, rows in (("independent", m["honest"]), ("one-edit variants", m["variants"])):
        scores = sorted(p.score for *_, p in rows)
        print(f"\n{what}: n={len(scores)} min={scores[0]:.3f} "
              f"median={statistics.median(scores):.3f} max={scores[-1]:.3f} "
              f"flagged={sum(p.flagged for *_, p in rows)}")
    lowest = min(p.score for by in m["disguised"].values() for p in by.values())
    highest = max(p.score for *_, p in m["honest"] + m["variants"])
    print(f"\nlowest planted copy {lowest:.3f}, highest honest pair {highest:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[similarity.NOISE_K])
    parser.add_argument("--raw", action="store_true", help="also without the pre-normalisation")
    parser.add_argument("--threshold", type=float, default=similarity.DEFAULT_THRESHOLD)
    args = parser.parse_args()
    blank = similarity.blank
    for k in args.k:
        similarity.NOISE_K = k
        for raw in ((False, True) if args.raw else (False,)):
            similarity.blank = (lambda text, keep=(), **_: text) if raw else blank
            label = f"k={k}, " + ("copydetect alone" if raw else "with torchgrade's blanking")
            report(measure(args.threshold), label, args.threshold)


if __name__ == "__main__":
    main()
