"""The similarity report's files: a ranked page, a CSV of every pair, a page per flagged pair.

Made from a :class:`torchgrade.similarity.SimilarityResult` (see that module for how pairs are
compared). Student code is untrusted text: it is rendered by the same jinja2 environment as
every other page (autoescape on, control characters stripped, a Content-Security-Policy that
forbids scripts and remote loads), and the CSV's text cells are made safe for spreadsheets.
Every page is self-contained and works offline: nothing refers to anything outside the folder.

    OUT/<assignment>-similarity.html    every flagged pair, then the closest others (ranked),
                                        the distribution of all scores, what was left out
    OUT/<assignment>-similarity.csv     every pair compared, highest score first
    OUT/similarity/<a>/<b>.html         a flagged pair side by side, matching regions numbered
                                        (the MAX_PAGES highest-scoring ones)
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from torchgrade.render.csv_ import _safe
from torchgrade.render.html import _environment as environment
from torchgrade.render.summary import SimilaritySection
from torchgrade.report import atomic_write_text
from torchgrade.similarity import MAX_PAGES, Pair, Region, SimilarityResult

PAGES = "similarity"
SHOWN_UNFLAGGED = 50  # pairs below the threshold listed on the page (the CSV has them all)
BINS = 20  # of the histogram of all scores
CSV_COLUMNS = ("rank", "student_a", "student_b", "score", "share_a", "share_b", "tokens_a",
               "tokens_b", "flagged", "page")
# What the pass sees through, said on every page (measured: benchmarks/RESULTS.md).
METHOD = (
    "copydetect (MOSS's winnowing) on tokenized code: identifiers become one letter, comments "
    "and whitespace are dropped, fingerprints do not depend on where code sits. Before that, "
    "docstrings, dead code (unused assignments and functions, code after return, if False), "
    "grouping parentheses and trailing commas are blanked. The stub, the handout's code and "
    "torchgrade's notebook cells never count. Seen through: renamed variables and functions, "
    "reordered functions, changed comments and docstrings, reformatting, added dead code. Not "
    "seen through: dead code made to look live, statements reordered inside a function, code "
    "rewritten by hand.")


@dataclasses.dataclass(frozen=True)
class Segment:
    text: str
    number: int = 0  # the matching region's number; 0: not matched


@dataclasses.dataclass(frozen=True)
class Outputs:
    page: Path
    csv: Path
    pair_pages: tuple[Path, ...]


def pair_page(pair: Pair) -> str:
    """Where the page of a flagged pair is, relative to the output folder."""
    return f"{PAGES}/{pair.a}/{pair.b}.html"


def segments(text: str, regions: tuple[Region, ...]) -> list[Segment]:
    """``text`` cut into unmatched stretches and numbered matched ones."""
    out: list[Segment] = []
    at = 0
    for region in sorted(regions, key=lambda r: r.start):
        start, end = max(region.start, at), min(region.end, len(text))
        if end <= start:
            continue
        if start > at:
            out.append(Segment(text[at:start]))
        out.append(Segment(text[start:end], region.number))
        at = end
    if at < len(text):
        out.append(Segment(text[at:]))
    return out


def histogram(result: SimilarityResult) -> list[tuple[str, int, float]]:
    """(label, pairs, height 0..1) of the scores in BINS bins."""
    counts = [0] * BINS
    for p in result.pairs:
        counts[min(BINS - 1, int(p.score * BINS))] += 1
    top = max(counts) or 1
    return [(f"{i / BINS:.2f}-{(i + 1) / BINS:.2f}", c, c / top) for i, c in enumerate(counts)]


def render_index(result: SimilarityResult, max_pages: int = MAX_PAGES) -> str:
    flagged = result.flagged
    others = [p for p in result.pairs if not p.flagged][:SHOWN_UNFLAGGED]
    return environment().get_template("similarity.html.j2").render(
        r=result, flagged=flagged, others=others, page=pair_page, histogram=histogram(result),
        bins=BINS, method=METHOD, max_pages=max_pages)


def render_pair(result: SimilarityResult, pair: Pair) -> str:
    a, b = result.submission(pair.a), result.submission(pair.b)
    return environment().get_template("similarity_pair.html.j2").render(
        r=result, p=pair, a=a, b=b, left=segments(a.text, pair.regions_a),
        right=segments(b.text, pair.regions_b), method=METHOD)


def render_csv(result: SimilarityResult, max_pages: int = MAX_PAGES) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    paged = {(p.a, p.b) for p in result.flagged[:max_pages]}
    for rank, p in enumerate(result.pairs, start=1):
        writer.writerow([rank, _safe(p.a), _safe(p.b), f"{p.score:.4f}", f"{p.share_a:.4f}",
                         f"{p.share_b:.4f}", p.tokens_a, p.tokens_b, int(p.flagged),
                         pair_page(p) if (p.a, p.b) in paged else ""])
    return buffer.getvalue()


def summary_section(result: SimilarityResult, max_pages: int = MAX_PAGES) -> SimilaritySection:
    """The class summary's similarity section (its links relative to the output folder)."""
    return SimilaritySection(
        page=f"{result.assignment}-similarity.html", threshold=result.threshold,
        compared=len(result.compared), pairs=len(result.pairs),
        flagged=tuple((p.a, p.b, p.score, pair_page(p) if i < max_pages else "")
                      for i, p in enumerate(result.flagged)))


def write_similarity(result: SimilarityResult, out_dir: Path,
                     max_pages: int = MAX_PAGES) -> Outputs:
    """Write the page, the CSV and the page of each flagged pair (the ``max_pages`` highest
    scoring) under ``out_dir``."""
    out_dir = Path(out_dir)
    pages = []
    for pair in result.flagged[:max_pages]:
        path = out_dir / pair_page(pair)
        atomic_write_text(path, render_pair(result, pair))
        pages.append(path)
    csv_path = out_dir / f"{result.assignment}-similarity.csv"
    atomic_write_text(csv_path, render_csv(result, max_pages))
    page = out_dir / f"{result.assignment}-similarity.html"
    atomic_write_text(page, render_index(result, max_pages))
    return Outputs(page, csv_path, tuple(pages))
