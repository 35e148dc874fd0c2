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
  (renaming), drops comments and whitespace (recommenting), and fingerprints do not depend on
  where code sits (reordering). :mod:`torchgrade.similarity_prep` first blanks what copydetect
  alone does not see through: dead code, and the parentheses and trailing commas a formatter
  adds (and docstrings).

Each pair's shares are exactly copydetect's ``compare_files``, computed from sorted numpy
arrays of each file's fingerprints (0.4-0.7 ms a pair instead of 3.6: a class of 300 has
44 850 pairs).

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

# copydetect's noise threshold: the length, in tokenized characters (an identifier is one
# character, ``V``; about two lines of code), of the k-grams hashed; shorter matches never
# count. Measured on the corpus (benchmarks/RESULTS.md, "Similarity report"): at copydetect's
# default 25, independently written solutions of these prescriptive contracts score 0.38
# (median; at most 0.62), at 35 they score 0.21 (at most 0.53), while the lowest planted copy
# goes from 0.98 to 0.94.
NOISE_K = 35
# Winnowing window (copydetect's guarantee threshold - noise threshold + 1). 1 keeps every
# k-gram: at a few hundred lines per submission that is cheap, and no match is missed.
WINDOW = 1
# Flag a pair whose score reaches this. Measured (RESULTS.md): the independently written
# pairs score at most 0.53 (mae_masking, whose handout dictates much of the code), the planted
# copies at least 0.94; 0.7 sits in that gap, at least 0.17 from either side.
DEFAULT_THRESHOLD = 0.7
# The flagged pairs whose matching regions are found (for their side-by-side pages), highest
# scores first. A class with more flagged pairs has a threshold too low for its assignment
# (or an assignment that hands out most of the code); every flagged pair is still listed.
MAX_PAGES = 500
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
    # Only for the flagged pairs that get a page (compare's max_pages); empty otherwise.
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
def read_submission(assignment: Assignment, student: str, path: Path | None,
                    harness: dict[str, str] | None = None) -> Submission:
    """The code of one student's submission file (None: they submitted nothing). ``harness``:
    torchgrade's notebook cells (:func:`torchgrade.notebooks.harness_digests`), left out."""
    if path is None:
        return Submission(student, None, "", f"no {assignment.module}.py or "
                          f"{assignment.name}.ipynb in the student's folder")
    data = path.read_bytes()
    if path.suffix != ".ipynb":
        return Submission(student, path, data.decode("utf-8", errors="replace"))
    try:
        cells = nbcode.code_cells(data, path.name,
                                  _harness(assignment) if harness is None else harness)
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
    files = {s: find_submission(submissions / s, assignment) for s in roster}
    notebooks = any(p is not None and p.suffix == ".ipynb" for p in files.values())
    harness = _harness(assignment) if notebooks else {}
    return [read_submission(assignment, s, p, harness) for s, p in files.items()]


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
def _fingerprint(text: str, boiler: np.ndarray | None, window: int = WINDOW
                 ) -> CodeFingerprint:
    """copydetect's fingerprint of ``text`` as compared (already blanked: see ``blank``)."""
    from copydetect import CodeFingerprint

    fp = CodeFingerprint("submission.py", NOISE_K, window, boilerplate=boiler,
                         language="python", fp=io.StringIO(text))
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
    """Every k-gram of the boilerplate, blanked as submissions are, with its dead code kept
    (a handout snippet assigns names only the student's code reads: alone, it is all dead),
    and as it is (a submission that does not parse is compared unblanked)."""
    hashes: set[int] = set()
    for _, text in boilerplate(assignment):
        for variant in {blank(text, keep), blank(text, keep, dead_code=False), text}:
            hashes.update(_fingerprint(variant, None, window=1).hashes)
    return np.array(sorted(hashes), dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class _Doc:
    """A submission's copydetect fingerprint, with its fingerprints as sorted arrays so that
    each pair is compared in numpy (copydetect's ``compare_files`` builds an array per shared
    fingerprint: 3 ms a pair, 45 000 pairs in a class of 300)."""

    fp: CodeFingerprint
    hashes: np.ndarray  # the hash at each of ``positions``
    positions: np.ndarray  # every fingerprinted position (boilerplate removed), ascending
    unique: np.ndarray  # the distinct hashes, sorted
    first: np.ndarray  # the first position of each of ``unique``
    length: int  # characters of the submission's text

    @classmethod
    def of(cls, fp: CodeFingerprint, length: int) -> _Doc:
        lists = list(fp.hash_idx.items())
        hashes = np.array([h for h, idx in lists for _ in idx], dtype=np.int64)
        positions = np.array([i for _, idx in lists for i in idx], dtype=np.int64)
        order = np.lexsort((positions, hashes))
        unique, at = np.unique(hashes[order], return_index=True)
        by_position = np.argsort(positions, kind="stable")
        return cls(fp, hashes[by_position], positions[by_position], unique,
                   positions[order][at], length)

    def shared(self, other: _Doc) -> np.ndarray:
        """The positions of this document whose fingerprint the other one has too (what
        copydetect's ``find_fingerprint_overlap`` returns for this side), ascending."""
        if not len(other.unique):
            return self.positions[:0]
        at = np.minimum(np.searchsorted(other.unique, self.hashes), len(other.unique) - 1)
        return self.positions[other.unique[at] == self.hashes]

    def raw(self, slices: np.ndarray) -> np.ndarray:
        """Tokenized-text slices as character slices of the text (as ``compare_files``)."""
        offsets = self.fp.offsets
        if not len(offsets) or not slices.shape[1]:
            return slices
        rows = np.clip(np.searchsorted(offsets[:, 0], slices), 0, offsets.shape[0] - 1)
        return slices + offsets[:, 1][rows]


def _covered(positions: np.ndarray) -> int:
    """How many tokenized characters the k-grams at ``positions`` (ascending) cover: the
    total length of copydetect's ``get_copied_slices``, without building them."""
    if not len(positions):
        return 0
    return int(NOISE_K + np.minimum(np.diff(positions), NOISE_K).sum())


def _shares(da: _Doc, db: _Doc) -> tuple[float, float]:
    """copydetect's two similarities of a pair (``compare_files``: the tokens of each side
    covered by shared fingerprints, over the tokens its fingerprints cover), from sorted
    arrays."""
    covered_a, covered_b = _covered(da.shared(db)), _covered(db.shared(da))
    return (float(covered_a / da.fp.token_coverage),
            float(covered_b / db.fp.token_coverage))


def _slices(da: _Doc, db: _Doc) -> tuple[np.ndarray, np.ndarray]:
    """The stretches of each side's tokenized text covered by shared fingerprints
    (copydetect's ``get_copied_slices``: 2 x n arrays of starts and ends)."""
    from copydetect.utils import get_copied_slices

    return get_copied_slices(da.shared(db), NOISE_K), get_copied_slices(db.shared(da), NOISE_K)


def _regions(da: _Doc, db: _Doc) -> dict[str, tuple[Region, ...]]:
    """The matched stretches of both sides as character offsets into their texts, numbered so
    that a region of ``b`` carries the number of the region of ``a`` it shares most
    fingerprints with: ``regions_a`` and ``regions_b`` of a :class:`Pair`."""
    sa, sb = _slices(da, db)
    _, ia, ib = np.intersect1d(da.unique, db.unique, assume_unique=True, return_indices=True)
    ra = np.searchsorted(sa[0], da.first[ia], side="right") - 1
    rb = np.searchsorted(sb[0], db.first[ib], side="right") - 1
    keys, counts = np.unique(ra * (sb.shape[1] + 1) + rb, return_counts=True)
    partner: dict[int, int] = {}
    for key in keys[np.argsort(-counts, kind="stable")]:
        partner.setdefault(int(key % (sb.shape[1] + 1)), int(key // (sb.shape[1] + 1)))

    def side(doc: _Doc, slices: np.ndarray, number) -> tuple[Region, ...]:
        raw = doc.raw(slices)
        return tuple(Region(int(max(0, s)), int(min(e, doc.length)), number(i))
                     for i, (s, e) in enumerate(zip(raw[0], raw[1], strict=True)))

    return {"regions_a": side(da, sa, lambda i: i + 1),
            "regions_b": side(db, sb, lambda i: partner.get(i, -1) + 1)}


# -- the pass ----------------------------------------------------------------------------------
def compare(assignment: Assignment, submissions: Sequence[Submission],
            threshold: float = DEFAULT_THRESHOLD, *, min_tokens: int = MIN_TOKENS,
            max_pages: int = MAX_PAGES,
            progress: Callable[[int, int], None] | None = None) -> SimilarityResult:
    """Compare every pair of ``submissions`` (see the module docstring); the matching regions
    of the ``max_pages`` highest-scoring flagged pairs are found for their pages."""
    started = time.monotonic()
    keep = contract_names(assignment.stub_file.read_text("utf-8")
                          if assignment.stub_file.is_file() else "")
    boiler = boilerplate_hashes(assignment, keep)
    subs: list[Submission] = []
    docs: dict[str, _Doc] = {}
    for sub in sorted(submissions, key=lambda s: s.student):
        if not sub.skipped:
            fp = _fingerprint(blank(sub.text, keep), boiler)
            if fp.token_coverage == 0:
                sub = dataclasses.replace(sub, skipped="no code of its own: only what the "
                                          "stub and the handout give everyone")
            else:
                docs[sub.student] = _Doc.of(fp, len(sub.text))
        subs.append(sub)
    names = sorted(docs)
    total = len(names) * (len(names) - 1) // 2
    pairs: list[Pair] = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pairs.append(_pair(a, b, docs[a], docs[b], threshold, min_tokens))
        if progress is not None:
            progress(len(pairs), total)
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    paged = [i for i, p in enumerate(pairs) if p.flagged][:max_pages]
    for i in paged:
        pairs[i] = dataclasses.replace(pairs[i], **_regions(docs[pairs[i].a], docs[pairs[i].b]))
    return SimilarityResult(assignment.name, threshold, min_tokens, tuple(subs), tuple(pairs),
                            time.monotonic() - started)


def _pair(a: str, b: str, da: _Doc, db: _Doc, threshold: float, min_tokens: int) -> Pair:
    share_a, share_b = _shares(da, db)
    score = max(share_a, share_b)
    tokens_a, tokens_b = int(da.fp.token_coverage), int(db.fp.token_coverage)
    flagged = bool(score >= threshold and min(tokens_a, tokens_b) >= min_tokens)
    return Pair(a, b, round(score, 4), round(share_a, 4), round(share_b, 4), tokens_a,
                tokens_b, flagged)


def run(assignment: Assignment, submissions: Path, threshold: float = DEFAULT_THRESHOLD, *,
        students: Sequence[str] | None = None, min_tokens: int = MIN_TOKENS,
        max_pages: int = MAX_PAGES,
        progress: Callable[[int, int], None] | None = None) -> SimilarityResult:
    """Collect the submissions of ``submissions`` and compare every pair."""
    if not 0.0 < threshold <= 1.0:
        raise SimilarityError(f"the threshold is a share of code between 0 and 1 (e.g. "
                              f"{DEFAULT_THRESHOLD}), got {threshold}")
    return compare(assignment, collect(assignment, submissions, students), threshold,
                   min_tokens=min_tokens, max_pages=max_pages, progress=progress)
