"""Which submissions of a batch are too alike: every pair compared, offline, on this machine.

Course staff ask who copied from whom. okpy sends code to MOSS, an outside service; here
nothing leaves the machine. The comparison is ``copydetect``'s (MOSS's winnowing: fingerprints
are hashes of k-grams of the tokenized code, each document keeps the minimum hash of every
window, and two documents are compared on the fingerprints they share), with what the
assignment gives everyone taken out:

- **boilerplate never counts**: the stub ``assignments/<name>/<module>.py``, the code blocks
  of the handout ``assignments/<name>/README.md`` and, for notebooks, torchgrade's own setup
  and test cells are fingerprinted too, and their fingerprints are removed from every
  submission (copydetect's ``boilerplate``);
- **notebooks on their code cells only**: the cells the grader runs (``torchgrade.nbcode``,
  torchgrade's own cells left out), read as JSON here on the staff machine; nothing of a
  submission is ever run or imported;
- **disguises**: copydetect's pygments tokenizer turns every identifier into one letter
  (renaming), drops comments and whitespace (recommenting, reformatting), and winnowing does not
  depend on where code sits (reordering). :mod:`torchgrade.similarity_prep` first blanks
  docstrings and dead code, which copydetect alone does not see through.

The score of a pair is the larger of its two shares: the share of each submission's own code
(what is left after boilerplate) found in the other. A copy with added code still has the
source's code in full, so the source's share stays high. A pair is flagged when its score
reaches the threshold, measured on independently written solutions and planted copies
(``benchmarks/RESULTS.md``, "Similarity report"), and the smaller submission has at least
``MIN_TOKENS`` compared tokens of its own (two near-empty submissions are alike, not copied).

Results are typed and frozen; :mod:`torchgrade.render.similarity` writes the ranked table, the
CSV and the side-by-side page of every flagged pair.
"""

from __future__ import annotations

import dataclasses
import io
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from torchgrade import nbcode
from torchgrade.assignment import Assignment
from torchgrade.similarity_prep import blank, contract_names

if TYPE_CHECKING:  # copydetect imports matplotlib (half a second): only when comparing
    from copydetect import CodeFingerprint

SCHEMA = "torchgrade.similarity/1"
# copydetect's noise threshold: the length, in tokenized characters (an identifier is one
# character, ``V``; about two lines of code), of the k-grams hashed; shorter matches never
# count. Measured on the corpus (benchmarks/RESULTS.md, "Similarity report"): copydetect's
# default 25 makes honest solutions of these prescriptive contracts share a third of their
# code (median), 35 a fifth, and the planted copies lose little (lowest 0.96 -> 0.92).
NOISE_K = 35
# Winnowing window (copydetect's guarantee threshold - noise threshold + 1). 1 keeps every
# k-gram: at a few hundred lines per submission that is cheap, and no match is missed.
WINDOW = 1
# Flag a pair whose score reaches this. Measured (RESULTS.md): the independently written
# pairs score at most 0.53 (mae_masking, whose handout dictates much of the code), the planted
# copies at least 0.92; 0.7 sits in the middle of that gap.
DEFAULT_THRESHOLD = 0.7
# A pair is flagged only when both submissions have at least this many compared tokens of
# their own (tokenized characters: about 15 lines of code): two near-empty submissions (the
# stub and a line or two) are alike without anyone copying.
MIN_TOKENS = 300
_FENCE = re.compile(r"^```[ \t]*([\w+-]*)[^\n]*\n(.*?)^```", re.M | re.S)
_NOT_PYTHON = {"sh", "bash", "shell", "console", "text", "toml", "json", "yaml", "ini", "csv"}


class SimilarityError(ValueError):
    """Input the similarity pass cannot use (a missing folder): the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Submission:
    """One student's code as compared: a ``.py`` file as it is, a notebook's code cells."""

    student: str
    path: Path | None
    text: str  # what the pair pages show; positions in regions point into it
    skipped: str = ""  # why it is not compared ("" when it is)


@dataclasses.dataclass(frozen=True)
class Region:
    """A stretch of one submission's text found in the other one."""

    start: int  # character offsets into Submission.text
    end: int
    number: int  # regions of the two sides with the same number match each other


@dataclasses.dataclass(frozen=True)
class Pair:
    a: str  # student names, a < b
    b: str
    score: float  # max(share_a, share_b)
    share_a: float  # share of a's own code (boilerplate removed) found in b
    share_b: float
    tokens_a: int  # a's own compared tokens (tokenized characters)
    tokens_b: int
    flagged: bool
    # Only for flagged pairs (the pages show them); empty otherwise.
    regions_a: tuple[Region, ...] = ()
    regions_b: tuple[Region, ...] = ()


@dataclasses.dataclass(frozen=True)
class SimilarityResult:
    assignment: str
    threshold: float
    min_tokens: int
    submissions: tuple[Submission, ...]
    pairs: tuple[Pair, ...]  # every compared pair, highest score first
    duration_s: float

    @property
    def flagged(self) -> tuple[Pair, ...]:
        return tuple(p for p in self.pairs if p.flagged)

    @property
    def compared(self) -> tuple[Submission, ...]:
        return tuple(s for s in self.submissions if not s.skipped)

    def submission(self, student: str) -> Submission:
        return next(s for s in self.submissions if s.student == student)


# -- what is compared ------------------------------------------------------------------------
def read_submission(assignment: Assignment, student: str, path: Path | None) -> Submission:
    """The code of one student's submission file (None: they submitted nothing)."""
    if path is None:
        return Submission(student, None, "", f"no {assignment.module}.py or "
                          f"{assignment.name}.ipynb in the student's folder")
    data = path.read_bytes()
    if path.suffix != ".ipynb":
        return Submission(student, path, data.decode("utf-8", errors="replace"))
    try:
        cells = nbcode.code_cells(data, path.name, _harness(assignment))
    except nbcode.NotebookError as exc:
        return Submission(student, path, "", str(exc))
    text = "".join(f"# [cell {c.number}]\n{c.source.rstrip()}\n\n" for c in cells)
    return Submission(student, path, text)


def _harness(assignment: Assignment) -> dict[str, str]:
    from torchgrade.notebooks import harness_digests

    try:
        return harness_digests(assignment)
    except Exception:  # noqa: BLE001 - without them torchgrade's cells are boilerplate anyway
        return {}


def collect(assignment: Assignment, submissions: Path,
            students: Sequence[str] | None = None) -> list[Submission]:
    """Every student folder of ``submissions``, found as ``torchgrade grade`` finds them."""
    from torchgrade.batch import discover, find_submission

    if not submissions.is_dir():
        raise SimilarityError(f"submissions folder {submissions} does not exist: give the "
                              "folder holding one sub-folder per student (as for `grade`)")
    try:
        roster = discover(submissions)
    except ValueError as exc:
        raise SimilarityError(str(exc)) from exc
    if students is not None:
        unknown = sorted(set(students) - set(roster))
        if unknown:
            raise SimilarityError(f"no submission folder for: {', '.join(unknown)}")
        roster = [s for s in roster if s in set(students)]
    if not roster:
        raise SimilarityError(f"{submissions} has no student folders (expected "
                              f"{submissions}/<student>/{assignment.module}.py or "
                              f"<student>/{assignment.name}.ipynb)")
    return [read_submission(assignment, s, find_submission(submissions / s, assignment))
            for s in roster]


def boilerplate(assignment: Assignment) -> list[tuple[str, str]]:
    """(where, code) of everything the assignment gives every student: the stub, the
    handout's code blocks (shell and data blocks left out) and torchgrade's notebook cells."""
    out = []
    if assignment.stub_file.is_file():
        out.append((str(assignment.stub_file), assignment.stub_file.read_text("utf-8")))
    handout = assignment.stub_file.parent / "README.md"
    if handout.is_file():
        for i, m in enumerate(_FENCE.finditer(handout.read_text("utf-8")), start=1):
            if m[1].lower() not in _NOT_PYTHON:
                out.append((f"{handout} code block {i}", m[2]))
    try:
        from torchgrade.notebooks import harness_cells

        out.extend((f"notebook cell {gid}", text)
                   for gid, text in harness_cells(assignment).items())
    except Exception:  # noqa: BLE001 - an assignment without public checks has no such cells
        pass
    return out


# -- fingerprints ----------------------------------------------------------------------------
def _fingerprint(text: str, keep: frozenset[str], boiler: np.ndarray | None,
                 window: int = WINDOW) -> CodeFingerprint:
    from copydetect import CodeFingerprint

    fp = CodeFingerprint("submission.py", NOISE_K, window, boilerplate=boiler,
                         language="python", fp=io.StringIO(blank(text, keep)))
    fp.offsets = _repaired_offsets(fp.filtered_code, fp.offsets)
    return fp


def _repaired_offsets(filtered: str, offsets: np.ndarray) -> np.ndarray:
    """copydetect 0.5.0 records, for a class name, ``len(name) - 1`` where every other token
    records the characters removed before it, so a highlighted region starting at a class
    name would start near the top of the file. The right value is the next row's less
    ``len(name) - 1`` (nothing is removed between the two rows)."""
    if len(offsets) < 3:
        return offsets
    fixed = offsets.copy()
    for row in range(1, len(fixed) - 1):
        i = int(fixed[row, 0])
        if 0 <= i < len(filtered) and filtered[i] == "O" and fixed[row - 1, 0] != i:
            value = fixed[row + 1, 1] - fixed[row, 1]
            if fixed[row - 1, 1] <= value <= fixed[row + 1, 1]:
                fixed[row, 1] = value
    return fixed


def boilerplate_hashes(assignment: Assignment, keep: frozenset[str]) -> np.ndarray:
    hashes: set[int] = set()
    for _, text in boilerplate(assignment):
        hashes.update(_fingerprint(text, keep, None, window=1).hashes)
    return np.array(sorted(hashes), dtype=np.int64)


def _regions(fa: CodeFingerprint, fb: CodeFingerprint, raw: tuple[np.ndarray, np.ndarray],
             length: tuple[int, int]) -> tuple[tuple[Region, ...], tuple[Region, ...]]:
    """The matched stretches of both sides, numbered so that a region of ``a`` and the region
    of ``b`` sharing most fingerprints with it carry the same number."""
    from copydetect.utils import find_fingerprint_overlap, get_copied_slices

    idx_a, idx_b = find_fingerprint_overlap(fa.hashes, fb.hashes, fa.hash_idx, fb.hash_idx)
    flt_a, flt_b = get_copied_slices(idx_a, NOISE_K), get_copied_slices(idx_b, NOISE_K)
    votes: dict[tuple[int, int], int] = {}
    for h in fa.hashes & fb.hashes:
        for i in fa.hash_idx[h]:
            ra = int(np.searchsorted(flt_a[0], i, side="right")) - 1
            for j in fb.hash_idx[h]:
                rb = int(np.searchsorted(flt_b[0], j, side="right")) - 1
                votes[ra, rb] = votes.get((ra, rb), 0) + 1
    partner_a: dict[int, int] = {}
    partner_b: dict[int, int] = {}
    for (ra, rb), _n in sorted(votes.items(), key=lambda kv: -kv[1]):
        partner_a.setdefault(ra, rb)
        partner_b.setdefault(rb, ra)
    # Number the regions of a in order; a region of b takes its partner's number.
    number_a = {ra: n for n, ra in enumerate(range(raw[0].shape[1]), start=1)}
    side_a = tuple(Region(int(max(0, s)), int(min(e, length[0])), number_a[ra])
                   for ra, (s, e) in enumerate(zip(raw[0][0], raw[0][1], strict=True)))
    side_b = tuple(Region(int(max(0, s)), int(min(e, length[1])),
                          number_a.get(partner_b.get(rb, -1), 0))
                   for rb, (s, e) in enumerate(zip(raw[1][0], raw[1][1], strict=True)))
    return side_a, side_b


# -- the pass ----------------------------------------------------------------------------------
def compare(assignment: Assignment, submissions: Sequence[Submission],
            threshold: float = DEFAULT_THRESHOLD, *, min_tokens: int = MIN_TOKENS,
            progress: Callable[[int, int], None] | None = None) -> SimilarityResult:
    """Compare every pair of ``submissions`` (see the module docstring)."""
    started = time.monotonic()
    keep = contract_names(assignment.stub_file.read_text("utf-8")
                          if assignment.stub_file.is_file() else "")
    boiler = boilerplate_hashes(assignment, keep)
    subs: list[Submission] = []
    prints: dict[str, CodeFingerprint] = {}
    for sub in sorted(submissions, key=lambda s: s.student):
        if not sub.skipped:
            fp = _fingerprint(sub.text, keep, boiler)
            if fp.token_coverage == 0:
                sub = dataclasses.replace(sub, skipped="no code of its own: only what the "
                                          "stub and the handout give everyone")
            else:
                prints[sub.student] = fp
        subs.append(sub)
    names = sorted(prints)
    total = len(names) * (len(names) - 1) // 2
    pairs: list[Pair] = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pairs.append(_pair(a, b, prints, threshold, min_tokens, subs))
        if progress is not None:
            progress(len(pairs), total)
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return SimilarityResult(assignment.name, threshold, min_tokens, tuple(subs), tuple(pairs),
                            time.monotonic() - started)


def _pair(a: str, b: str, prints: dict[str, CodeFingerprint], threshold: float,
          min_tokens: int, subs: list[Submission]) -> Pair:
    from copydetect import compare_files

    fa, fb = prints[a], prints[b]
    _, (share_a, share_b), raw = compare_files(fa, fb)
    share_a, share_b = float(share_a), float(share_b)
    score = max(share_a, share_b)
    tokens_a, tokens_b = int(fa.token_coverage), int(fb.token_coverage)
    flagged = score >= threshold and min(tokens_a, tokens_b) >= min_tokens
    pair = Pair(a, b, round(score, 4), round(share_a, 4), round(share_b, 4), tokens_a,
                tokens_b, flagged)
    if not flagged:
        return pair
    text = {s.student: s.text for s in subs}
    regions_a, regions_b = _regions(fa, fb, raw, (len(text[a]), len(text[b])))
    return dataclasses.replace(pair, regions_a=regions_a, regions_b=regions_b)


def run(assignment: Assignment, submissions: Path, threshold: float = DEFAULT_THRESHOLD, *,
        students: Sequence[str] | None = None, min_tokens: int = MIN_TOKENS,
        progress: Callable[[int, int], None] | None = None) -> SimilarityResult:
    """Collect the submissions of ``submissions`` and compare every pair."""
    if not 0.0 < threshold <= 1.0:
        raise SimilarityError(f"the threshold is a share of code between 0 and 1 (e.g. "
                              f"{DEFAULT_THRESHOLD}), got {threshold}")
    return compare(assignment, collect(assignment, submissions, students), threshold,
                   min_tokens=min_tokens, progress=progress)
