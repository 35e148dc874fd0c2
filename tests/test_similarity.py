"""Does the similarity pass flag copies, however disguised, and leave honest solutions alone?

The corpus is ``tests/similarity_corpus`` (its ``corpus.py`` says which solutions were written
independently): every assignment's ``examples/<name>/correct`` under each disguise of
``disguises.py`` must be flagged against its source, and no pair of independently written
solutions may be. Then the command line on the bundled examples, notebooks on their code
cells only, the stub never counting, the pages escaping student code (in headless Chromium),
and ``grade --similarity`` adding its section to the class summary.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from similarity_corpus.corpus import ASSIGNMENTS, honest_pairs, solution
from similarity_corpus.disguises import DISGUISES, ruff

from torchgrade import cli, similarity
from torchgrade.assignment import load
from torchgrade.notebooks import harness_cells
from torchgrade.render.similarity import render_pair, segments, write_similarity
from torchgrade.similarity import DEFAULT_THRESHOLD, Submission, compare
from torchgrade.similarity_prep import contract_names

ROOT = Path(__file__).resolve().parents[1]
MARGIN = 0.1  # the threshold must sit at least this far from both sides of the corpus


def _compare(name: str, texts: dict[str, str]) -> dict[tuple[str, str], similarity.Pair]:
    result = compare(load(name, ROOT), [Submission(k, None, v) for k, v in texts.items()])
    return {(p.a, p.b): p for p in result.pairs}


@pytest.fixture(scope="module")
def planted() -> dict[str, dict[str, similarity.Pair]]:
    """assignment -> disguise -> the pair (correct, its disguised copy)."""
    if ruff() is None:
        pytest.skip("ruff (pinned in requirements-test.txt) is needed for the reformatted copies")
    out = {}
    for name in ASSIGNMENTS:
        keep = contract_names(load(name, ROOT).stub_file.read_text("utf-8"))
        base = solution(name, "correct").read_text("utf-8")
        pairs = _compare(name, {"source": base, **{d: fn(base, keep)
                                                   for d, fn in DISGUISES.items()}})
        out[name] = {d: pairs[tuple(sorted(("source", d)))] for d in DISGUISES}
    return out


@pytest.fixture(scope="module")
def honest() -> list[tuple[str, str, str, similarity.Pair]]:
    out = []
    for name in sorted({a for a, _, _ in honest_pairs()}):
        wanted = [(x, y) for a, x, y in honest_pairs() if a == name]
        texts = {s: solution(name, s).read_text("utf-8") for pair in wanted for s in pair}
        pairs = _compare(name, texts)
        out += [(name, x, y, pairs[tuple(sorted((x, y)))]) for x, y in wanted]
    return out


@pytest.mark.parametrize("disguise", list(DISGUISES))
def test_every_disguise_of_a_submission_is_flagged(planted, disguise):
    missed = {name: by[disguise].score for name, by in planted.items()
              if not by[disguise].flagged}
    assert not missed, f"{disguise} copies not flagged (scores): {missed}"


def test_independently_written_solutions_are_not_flagged(honest):
    flagged = [(a, x, y, p.score) for a, x, y, p in honest if p.flagged]
    assert not flagged, flagged
    assert len(honest) >= 10  # six assignments, three of them with three solutions


def test_the_threshold_sits_in_the_gap_between_honest_pairs_and_copies(planted, honest):
    lowest_copy = min(p.score for by in planted.values() for p in by.values())
    highest_honest = max(p.score for *_, p in honest)
    assert highest_honest + MARGIN <= DEFAULT_THRESHOLD <= lowest_copy - MARGIN, \
        (highest_honest, DEFAULT_THRESHOLD, lowest_copy)


def test_the_disguised_copies_are_still_python(planted):
    keep = contract_names(load("mae_masking", ROOT).stub_file.read_text("utf-8"))
    base = solution("mae_masking", "correct").read_text("utf-8")
    for name, fn in DISGUISES.items():
        compile(fn(base, keep), name, "exec")


# -- what is compared ------------------------------------------------------------------------
def test_the_stub_and_the_handouts_code_never_count():
    """An untouched stub has nothing to compare; two students who only pasted the handout's
    code into the stub are not flagged: what is left of theirs is only the k-grams where the
    pasted pieces join (more of them the more snippets the handout has), far below the
    threshold."""
    a = load("mae_masking", ROOT)
    stub = a.stub_file.read_text("utf-8")
    blocks = [m[2] for m in similarity._FENCE.finditer(
        (a.stub_file.parent / "README.md").read_text("utf-8"))]
    result = compare(a, [Submission("untouched", None, stub),
                         Submission("pasted", None, stub + "\n".join(blocks)),
                         Submission("pasted_too", None, stub + "\n".join(blocks[::-1])),
                         Submission("real", None, solution("mae_masking", "correct")
                                    .read_text("utf-8"))])
    skipped = {s.student: s.skipped for s in result.submissions if s.skipped}
    assert list(skipped) == ["untouched"] and "no code of its own" in skipped["untouched"]
    assert not result.flagged
    pasted = next(p for p in result.pairs if (p.a, p.b) == ("pasted", "pasted_too"))
    assert not pasted.flagged and pasted.score < similarity.DEFAULT_THRESHOLD - 0.2, pasted


def _notebook_of(module: str, harness: dict[str, str]) -> str:
    """The module as a student's notebook: a cell per top-level block, prose between them,
    torchgrade's own cells at the end."""
    blocks = re.split(r"\n(?=def |class |@)", module)
    cells = []
    for i, block in enumerate(blocks):
        cells.append({"cell_type": "markdown", "metadata": {},
                      "source": f"## Part {i}\nA long explanation that nobody else wrote. " * 30})
        cells.append({"cell_type": "code", "execution_count": None, "metadata": {},
                      "outputs": [], "source": block.splitlines(True)})
    for gid, text in harness.items():
        cells.append({"cell_type": "code", "execution_count": None, "outputs": [],
                      "metadata": {"nbgrader": {"grade_id": gid, "grade": True}},
                      "source": text.splitlines(True)})
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_notebooks_are_compared_on_their_code_cells_only(tmp_path):
    a = load("wgan_gp", ROOT)
    module = solution("wgan_gp", "correct").read_text("utf-8")
    subs = tmp_path / "subs"
    (subs / "as_py").mkdir(parents=True)
    (subs / "as_py" / "wgan_gp.py").write_text(module)
    (subs / "as_notebook").mkdir()
    (subs / "as_notebook" / "wgan_gp.ipynb").write_text(_notebook_of(module,
                                                                     harness_cells(a)))
    (subs / "broken_notebook").mkdir()
    (subs / "broken_notebook" / "wgan_gp.ipynb").write_text("{not json")
    result = similarity.run(a, subs)
    nb = result.submission("as_notebook")
    assert "explanation" not in nb.text and "torchgrade_results" not in nb.text
    assert "# [cell 2]" in nb.text  # cells are named as Jupyter numbers them
    (pair,) = result.pairs
    assert pair.flagged and pair.score > 0.95, pair
    assert "JSON is broken" in result.submission("broken_notebook").skipped


def test_regions_point_at_the_same_code_on_both_sides():
    """Each numbered region of a renamed copy covers code that tokenizes alike on both sides,
    including regions that start at a class name (copydetect 0.5.0 misplaces those)."""
    from copydetect.utils import filter_code

    a = load("wgan_gp", ROOT)
    base = solution("wgan_gp", "correct").read_text("utf-8")
    copy = DISGUISES["renamed"](base, contract_names(a.stub_file.read_text("utf-8")))
    result = compare(a, [Submission("a", None, base), Submission("b", None, copy)])
    (pair,) = result.pairs
    right = {r.number: r for r in pair.regions_b}
    same = 0
    for region in pair.regions_a:
        other = right.get(region.number)
        if other is None:
            continue
        one = filter_code(base[region.start:region.end], "a.py", "python")[0]
        two = filter_code(copy[other.start:other.end], "b.py", "python")[0]
        same += one == two
    assert same >= 0.8 * len(pair.regions_a), (same, len(pair.regions_a))
    starts = [base[r.start:].lstrip()[:6] for r in pair.regions_a]
    assert not any(s.startswith(("lass ", "ass ")) for s in starts), starts


def test_segments_cut_the_text_at_the_regions():
    regions = (similarity.Region(2, 4, 1), similarity.Region(6, 20, 2))
    segs = segments("abcdefghij", regions)
    assert [(s.text, s.number) for s in segs] == [("ab", 0), ("cd", 1), ("ef", 0),
                                                  ("ghij", 2)]


# -- pages -----------------------------------------------------------------------------------
EVIL = '''

def _evil_helper():
    """</pre></div><script>document.title = 'pwned'</script>"""
    payload = "</script><script>document.title = 'pwned'</script><img src=x onerror=alert(1)>"
    # </textarea><h1 id="owned">owned</h1>
    return payload, "<style>body { display: none }</style>"
'''


@pytest.fixture(scope="module")
def evil_pages(tmp_path_factory) -> Path:
    a = load("wgan_gp", ROOT)
    code = solution("wgan_gp", "correct").read_text("utf-8") + EVIL
    out = tmp_path_factory.mktemp("evil")
    result = compare(a, [Submission("mallory", None, code),
                         Submission("trudy", None, code.replace("payload", "stuff"))])
    assert result.flagged
    write_similarity(result, out)
    return out


def test_pages_escape_student_code(evil_pages):
    page = (evil_pages / "similarity" / "mallory" / "trudy.html").read_text("utf-8")
    assert "<script" not in page and "<img" not in page and 'id="owned"' not in page
    assert "&lt;/script&gt;&lt;script&gt;" in page
    assert "default-src 'none'" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (make installs it: "
                    "apt-get install chromium)")
def test_pair_page_renders_student_code_inert_in_chromium(evil_pages, tmp_path):
    """In a real browser: the student's markup is text, no script ran, both sides show their
    numbered matching regions."""
    page = evil_pages / "similarity" / "mallory" / "trudy.html"
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert "<mark" in dom, proc.stderr[-2000:]
    parser = _Tags()
    parser.feed(dom)
    assert parser.title == "wgan_gp · mallory and trudy · similarity · torchgrade"
    assert parser.tags <= {"html", "head", "meta", "title", "style", "body", "p", "a", "h1",
                           "h2", "div", "pre", "mark", "sup", "code", "footer"}, parser.tags
    assert parser.count["style"] == 1 and parser.count["h1"] == 1 and "owned" not in parser.ids
    assert "</script><script>document.title" in parser.text  # shown, as text
    sides = dom.split('id="side-')
    assert len(sides) == 3 and all("<mark" in side for side in sides[1:])


class _Tags(HTMLParser):
    """The elements a browser built (from its --dump-dom), and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.count: Counter[str] = Counter()
        self.ids: set[str] = set()
        self.text = ""
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.count[tag] += 1
        self.ids.update(v for k, v in attrs if k == "id" and v)
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        self.text += data
        if self._in_title:
            self.title += data


# -- the command line ------------------------------------------------------------------------
def test_similarity_command_on_the_bundled_examples(tmp_path, capsys):
    """clip_search's examples: the one-edit variants of correct are flagged with each other,
    the course text's independent version with none, the untouched stub not compared."""
    out = tmp_path / "out"
    assert cli.main(["similarity", "clip_search", str(ROOT / "examples" / "clip_search"),
                     "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "not compared: stub" in printed.err
    with (out / "clip_search-similarity.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    n = len([p for p in (ROOT / "examples" / "clip_search").iterdir() if p.is_dir()]) - 1
    assert len(rows) == n * (n - 1) // 2
    assert [float(r["score"]) for r in rows] == sorted((float(r["score"]) for r in rows),
                                                       reverse=True)
    flagged = [r for r in rows if r["flagged"] == "1"]
    assert flagged and not [r for r in flagged if "course_text" in (r["student_a"],
                                                                    r["student_b"])]
    for r in flagged:
        assert (out / r["page"]).is_file()
    page = (out / "clip_search-similarity.html").read_text("utf-8")
    assert f'id="flagged-count">{len(flagged)}<' in page


@pytest.mark.parametrize(("args", "says"), [
    (["similarity", "nt_xent", "/nonexistent/subs", "--out", "OUT"], "does not exist"),
    (["similarity", "nt_xent", "EMPTY", "--out", "OUT"], "no student folders"),
    (["similarity", "nt_xent", "examples/nt_xent", "--out", "OUT", "--threshold", "0"],
     "between 0 and 1"),
    (["similarity", "nt_xent", "examples/nt_xent", "--out", "OUT", "--student", "nobody",
      "--student", "correct"], "no submission folder for: nobody"),
])
def test_similarity_command_says_what_to_fix(tmp_path, capsys, monkeypatch, args, says):
    (tmp_path / "EMPTY").mkdir()
    monkeypatch.chdir(tmp_path)
    args = [str(ROOT / a) if a.startswith("examples/") else a for a in args]
    assert cli.main(["--root", str(ROOT), *args]) == 2
    assert says in capsys.readouterr().err


def test_grade_with_similarity_adds_the_flagged_pairs_to_the_class_summary(
        tmp_path, monkeypatch):
    """The wiring of `grade --similarity`, with grading itself replaced by fixed reports (the
    grading is tested elsewhere): the pages are written beside the reports and the class
    summary gets its similarity section."""
    import torchgrade.batch as batch
    from torchgrade.render.summary import write_class_summary
    from torchgrade.report import Report

    def fake_grade_batch(assignment, submissions, out_dir, *, students, **_):
        reports = [Report(student=s, assignment=assignment.name, score=0.0, max_score=0.0,
                          profile="cpu", device="cpu", sandbox="none", submission_sha256="",
                          grader_version="1", duration_s=1.0, checks=(), created_at="",
                          torchgrade_version="") for s in students]
        summary = write_class_summary(reports, out_dir / f"{assignment.name}-summary.html")
        return batch.BatchResult(tuple(reports), out_dir / "x.csv", out_dir, 1.0, summary)

    monkeypatch.setattr(batch, "grade_batch", fake_grade_batch)
    subs = tmp_path / "subs"
    for name in ("correct", "no_generator", "course_text_gan"):
        shutil.copytree(ROOT / "examples" / "wgan_gp" / name, subs / name)
    out = tmp_path / "out"
    assert cli.main(["--root", str(ROOT), "grade", "wgan_gp", str(subs), "--out", str(out),
                     "--jobs", "1", "--similarity"]) == 0
    summary = (out / "wgan_gp-summary.html").read_text("utf-8")
    assert 'id="similarity"' in summary and "wgan_gp-similarity.html" in summary
    assert 'href="similarity/correct/no_generator.html"' in summary
    assert (out / "similarity" / "correct" / "no_generator.html").is_file()


def test_grade_without_similarity_leaves_the_summary_as_it_was():
    from torchgrade.render.summary import render_class_summary
    from torchgrade.report import Report

    report = Report(student="a", assignment="x", score=0.0, max_score=1.0, profile="cpu",
                    device="cpu", sandbox="none", submission_sha256="", grader_version="1",
                    duration_s=1.0, checks=(), created_at="", torchgrade_version="")
    assert 'id="similarity"' not in render_class_summary([report])


def test_pair_page_names_both_students_and_the_score():
    a = load("wgan_gp", ROOT)
    base = solution("wgan_gp", "correct").read_text("utf-8")
    result = compare(a, [Submission("ann", None, base), Submission("bo", None, base)])
    page = render_pair(result, result.pairs[0])
    assert "ann and bo: score 1.00" in page


def test_shares_are_copydetects_own():
    """The pairs are compared with sorted arrays instead of copydetect's compare_files (3 ms a
    pair): the shares and the matched stretches must be exactly its."""
    from copydetect import compare_files

    a = load("nt_xent", ROOT)
    texts = [solution("nt_xent", s).read_text("utf-8")
             for s in ("reference", "independent", "no_normalize")]
    keep = contract_names(a.stub_file.read_text("utf-8"))
    boiler = similarity.boilerplate_hashes(a, keep)
    docs = [similarity._Doc.of(similarity._fingerprint(similarity.blank(t, keep), boiler),
                               len(t)) for t in texts]
    for i in range(3):
        for j in range(i + 1, 3):
            _, (sim_a, sim_b), (raw_a, raw_b) = compare_files(docs[i].fp, docs[j].fp)
            share_a, share_b = similarity._shares(docs[i], docs[j])
            sa, sb = similarity._slices(docs[i], docs[j])
            assert (share_a, share_b) == pytest.approx((sim_a, sim_b), abs=1e-12)
            assert (docs[i].raw(sa) == raw_a).all() and (docs[j].raw(sb) == raw_b).all()


def test_pages_stop_at_max_pages_and_say_so(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["similarity", "nt_xent", str(ROOT / "examples" / "nt_xent"), "--out",
                     str(out), "--max-pages", "2"]) == 0
    assert "(no page)" in capsys.readouterr().out
    assert len(list((out / "similarity").rglob("*.html"))) == 2
    page = (out / "nt_xent-similarity.html").read_text("utf-8")
    assert 'id="too-many"' in page and page.count("side by side</a>") == 2
    with (out / "nt_xent-similarity.csv").open(newline="") as fh:
        assert sum(bool(r["page"]) for r in csv.DictReader(fh)) == 2


def test_similarity_help_teaches_the_command(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["similarity", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for word in ("--threshold", "--out", "--max-pages", "examples:", "stub", "dead code"):
        assert word in out


def test_a_region_starting_at_a_class_name_starts_there():
    """copydetect 0.5.0 records a class name's offset as len(name) - 1: repaired, every
    tokenized position maps back to where its token starts in the text."""
    code = "import os\n\n\nclass FooBarBaz(Base):\n    value = 1\n"
    fp = similarity._fingerprint(code, None)
    for i, removed in fp.offsets[1:]:
        if fp.filtered_code[i] == "O":
            assert code[i + removed:].startswith("FooBarBaz")
