"""Does every code snippet of every handout run, as written, against the reference?

A student copies the handout's snippets: each ```python block of ``assignments/<name>/README.md``
runs here, in order, in one namespace per handout (as doctest runs a file), with the reference
importable under the stub's module name and the course's real objects (the small CLIP and its
processor, shipped; nothing is downloaded: HF_HUB_OFFLINE=1). A block written as an
interactive session (``>>>`` lines) has its printed results compared, doctest-style.

Every fenced block says what it is: ``python`` (runs), ``sh`` (a command), ``text`` (a formula
or an output, not code). A ```python block that is deliberately a fragment (it names objects
the handout does not build) is preceded by the line ``<!-- torchgrade:fragment -->``
(``torchgrade.contract.FRAGMENT_MARKER``); at most two per handout.
"""

from __future__ import annotations

import doctest
import re
import sys
import warnings
from pathlib import Path

import pytest

from torchgrade.assignment import available, load
from torchgrade.contract import FRAGMENT_MARKER

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = {"python", "sh", "text"}
MAX_FRAGMENTS = 2


def blocks(markdown: str) -> list[tuple[int, str, str, bool]]:
    """``(line, language, code, fragment)`` of every fenced block."""
    out = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if m is None:
            i += 1
            continue
        start, language = i, m[1]
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith("```"):
            body.append(lines[i])
            i += 1
        before = next((s for s in reversed(lines[:start]) if s.strip()), "")
        out.append((start + 1, language, "\n".join(body) + "\n",
                    before.strip() == FRAGMENT_MARKER))
        i += 1
    return out


@pytest.mark.parametrize("name", available(ROOT))
def test_handout_snippets_run_against_the_reference(name: str, monkeypatch, tmp_path) -> None:
    a = load(name, ROOT)
    readme = ROOT / "assignments" / name / "README.md"
    found = blocks(readme.read_text(encoding="utf-8"))
    unlabelled = [line for line, lang, _, _ in found if lang not in LANGUAGES]
    assert not unlabelled, (f"{readme}: code blocks at lines {unlabelled} need a language: "
                            f"{', '.join(sorted(LANGUAGES))}")
    fragments = [line for line, lang, _, frag in found if frag]
    assert len(fragments) <= MAX_FRAGMENTS, f"{readme}: too many fragments {fragments}"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # a snippet that writes a file writes it here
    monkeypatch.syspath_prepend(str(a.solution_file.parent))
    sys.modules.pop(a.module, None)
    namespace: dict = {"__name__": f"handout_{name}"}
    for line, lang, code, fragment in found:
        if lang != "python" or fragment:
            continue
        where = f"{readme.relative_to(ROOT)}:{line}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if ">>> " in code:
                _doctest(code, namespace, where)
            else:
                exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the handout's code
    sys.modules.pop(a.module, None)


def _doctest(code: str, namespace: dict, where: str) -> None:
    test = doctest.DocTestParser().get_doctest(code, namespace, where, where, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    assert runner.failures == 0, "".join(report)


def test_blocks_are_found_with_their_language_and_fragment_marker() -> None:
    text = (f"intro\n```python\nx = 1\n```\n\n{FRAGMENT_MARKER}\n```python\ny(x)\n```\n"
            "```\nplain\n```\n")
    assert blocks(text) == [(2, "python", "x = 1\n", False), (7, "python", "y(x)\n", True),
                            (10, "", "plain\n", False)]

