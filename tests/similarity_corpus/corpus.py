"""The similarity test corpus: planted copies (must be flagged) and honest pairs (must not).

**Planted copies**: for every assignment, ``examples/<name>/correct`` under each disguise of
:mod:`disguises` (and all of them together), paired with that source.

**Honest pairs**: solutions of the same assignment written independently of each other. Not
every example qualifies: most of ``examples/<name>/<mistake>`` are one edit away from the
reference or from ``correct`` (near-copies: they *should* be flagged), and in ``nt_xent`` and
``video_action`` ``correct`` is the reference with one function rewritten. Measured by
``benchmarks/similarity_separation.py``; the independent ones are

- ``correct`` against the reference (``solutions/<name>``) in vit_attention, mae_masking,
  ddpm_sampler, wgan_gp and clip_search;
- ``examples/clip_search/course_text`` (the course text's own search engine) against both;
- ``tests/similarity_corpus/<name>/independent`` (written for these tests from the stub and
  the handout only, without reading the reference; it passes the public checks) against the
  reference and ``correct``, in nt_xent and mae_masking.

``variant_pairs`` adds, as a wider and correlated sample, every one-edit variant of one honest
solution against the other independent solutions of its assignment.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ASSIGNMENTS = ("nt_xent", "vit_attention", "mae_masking", "ddpm_sampler", "wgan_gp",
               "video_action", "clip_search")


def solution(assignment: str, which: str) -> Path:
    """``reference``, ``independent`` (ours) or an example's folder name."""
    if which == "reference":
        return ROOT / "solutions" / assignment / f"{assignment}.py"
    if which == "independent":
        return HERE / assignment / "independent" / f"{assignment}.py"
    return ROOT / "examples" / assignment / which / f"{assignment}.py"


# assignment -> the solutions written independently of each other
INDEPENDENT: dict[str, tuple[str, ...]] = {
    "nt_xent": ("reference", "independent"),
    "vit_attention": ("reference", "correct"),
    "mae_masking": ("reference", "correct", "independent"),
    "ddpm_sampler": ("reference", "correct"),
    "wgan_gp": ("reference", "correct"),
    "clip_search": ("reference", "correct", "course_text"),
}
# assignment -> which independent solution each one-edit example was made from
VARIANT_OF: dict[str, str] = {"vit_attention": "reference", "mae_masking": "correct",
                              "ddpm_sampler": "reference", "wgan_gp": "correct",
                              "clip_search": "correct"}


def honest_pairs() -> list[tuple[str, str, str]]:
    """(assignment, solution a, solution b) written independently of each other."""
    out = []
    for assignment, names in INDEPENDENT.items():
        for i, a in enumerate(names):
            out.extend((assignment, a, b) for b in names[i + 1:])
    out.append(("nt_xent", "independent", "correct"))  # correct: the reference, one rewrite
    return out


def variant_pairs() -> list[tuple[str, str, str]]:
    """(assignment, a one-edit variant, an independent solution it was not made from)."""
    out = []
    for assignment, base in VARIANT_OF.items():
        others = [s for s in INDEPENDENT[assignment] if s != base]
        for folder in sorted((ROOT / "examples" / assignment).iterdir()):
            if folder.name in ("correct", "stub", "course_text") or not folder.is_dir():
                continue
            out.extend((assignment, folder.name, other) for other in others)
    return out
