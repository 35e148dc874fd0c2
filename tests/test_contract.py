"""Do the handout, the stub and the public checks state one contract (``torchgrade.contract``)?

Pinned with small texts (rule ids, rules without one, ``Raises:`` sections, signatures quoted in
a handout's table, the generated API reference), with a scaffolded course whose handout and
stub are made to disagree (``author build --check`` lists each disagreement), and on every
shipped assignment: no contract problem, and every rule pinned by a check (what ``torchgrade
audit`` requires, here without grading anything).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from torchgrade import cli, contract
from torchgrade.assignment import available, load
from torchgrade.audit import AuditResult
from torchgrade.checks import GraderConfigError, check
from torchgrade.render.html import render_audit_html
from torchgrade.scaffold import scaffold

ROOT = Path(__file__).resolve().parents[1]

STUB = '''"""A stub [conv.names-argument]."""

LIMIT = 3  # the most there is


def f(x: int, kind: str = "a", *, n: int = 1e-4) -> int:
    """Add ``n`` to ``x`` [f.add].

    Raises:
        ValueError: ``x`` < 0 [f.negative]; ``kind`` is unknown
            [f.kind].
        RuntimeError: nothing is loaded [f.empty].
    """
    raise NotImplementedError("f")


class Box:
    """A box."""

    def __init__(self, size: int) -> None:
        raise NotImplementedError("Box")

    def open(self) -> None:
        """Open it [box.open]."""
        raise NotImplementedError("Box.open")
'''


# -- the shipped assignments -----------------------------------------------------------------------
@pytest.mark.parametrize("name", available(ROOT))
def test_shipped_handout_stub_and_checks_agree(name: str) -> None:
    """No contract problem (what `author build --check` reports), and every rule is pinned by
    a check (what `torchgrade audit` requires), with a public check for each rule's function
    where the rule table says so."""
    a = load(name, ROOT)
    assert contract.problems(a) == []
    rows, _ = contract.rule_table(a)
    assert rows, "the handout states no rule"
    assert [r.id for r in rows if not r.checks] == []
    assert any(r.public for r in rows)


# -- rule ids in prose -----------------------------------------------------------------------------
def test_rules_are_found_with_the_words_they_close() -> None:
    text = ("# T\n\nThe loss is a mean over all anchors [loss.mean], and its gradient stays "
            "finite everywhere [loss.grad].\n\nIds look like `[area.what]` (quoted: no rule)."
            "\n\n```python\nx = 1  # [not.a]\n```\n")
    assert contract._rules_in(text) == [
        ("loss.mean", "The loss is a mean over all anchors"),
        ("loss.grad", "its gradient stays finite everywhere")]


def test_a_rule_without_an_id_is_found() -> None:
    """Is a sentence saying must/raises/SomeError without an id reported, and a bullet of a
    conventions section without one?"""
    text = ("# A\n\nIt must be fast.\n\nNaN raises `ValueError` [x.nan]. Inputs are kept.\n\n"
            "## Conventions\n\n- results on the input's device\n- float64 stays [x.dtype]\n"
            "\nA wrong rank gives a ValueError.\n")
    found = contract._untagged(text, "handout")
    assert len(found) == 3, found
    assert any("It must be fast" in f for f in found)
    assert any("convention" in f and "input's device" in f for f in found)
    assert any("wrong rank" in f for f in found)


def test_raises_sections_are_parsed_and_malformed_ones_reported() -> None:
    api = contract.stub_api(STUB)
    f = next(d for d in api.defs if d.name == "f")
    assert [r.exception for r in f.raises] == ["ValueError", "RuntimeError"]
    assert "[f.kind]" in f.raises[0].text and "[f.negative]" in f.raises[0].text
    assert contract._malformed_raises("Doc.\n\nRaises:\n    ValueError naming x if bad.\n") \
        == ["ValueError naming x if bad."]
    assert contract._malformed_raises("Doc.\n\nRaises:\n    ValueError: x [a.b].\n") == []


def test_the_api_reference_lists_signatures_constants_methods_and_errors(tmp_path) -> None:
    api = contract.stub_api(STUB)
    assert [(d.name, d.written) for d in api.defs] == [("f", True), ("Box", True),
                                                       ("Box.open", True)]
    text = contract.api_reference(_Named("m"), api)
    for part in ("`LIMIT = 3`: the most there is",
                 '`f(x: int, kind: str = "a", *, n: int = 1e-4) -> int`',
                 "Raises `RuntimeError`: nothing is loaded [f.empty].", "### `Box` (class)",
                 "`Box(size: int)`", "- `open() -> None`: Open it [box.open]."):
        assert part in text, (part, text)


def test_a_signature_in_a_handout_table_must_be_the_stubs() -> None:
    api = contract.stub_api(STUB)
    table = ("| name | what |\n|---|---|\n| `f(T, kind=\"b\")` | adds |\n"
             "| `f(x, kind=\"a\", n=...)` | adds |\n| `class Box(object)` | a box |\n")
    found = contract._signature_drift(table, api)
    assert len(found) == 2, found
    assert "'T'" in found[0] and "x, kind, n" in found[0]
    assert 'default "b"' in found[1] and "'a'" in found[1]


# -- a course whose handout and stub disagree ------------------------------------------------------
@pytest.fixture
def course(tmp_path: Path) -> Path:
    (tmp_path / "graders").mkdir()
    scaffold(tmp_path, "scale_it")
    return tmp_path


def test_the_scaffold_states_one_contract(course: Path) -> None:
    a = load("scale_it", course)
    assert contract.problems(a) == []
    rows, unpinned = contract.rule_table(a)
    assert [r.id for r in rows] == ["scale.value", "scale.no-inplace", "scale.bad-factor"]
    assert all(r.checks for r in rows) and unpinned == ()


def test_build_check_lists_each_disagreement(course: Path, capsys) -> None:
    """A rule only in the handout, one only in the stub, a check naming an unknown rule and a
    function with no public check each make `author build --check` fail, saying which."""
    handout = course / "solutions" / "scale_it" / "handout.md"
    handout.write_text(handout.read_text().replace(
        "Hidden checks\nalso grade", "Results are finite [scale.finite]. Hidden checks\n"
        "also grade"), encoding="utf-8")
    solution = course / "solutions" / "scale_it" / "scale_it.py"
    solution.write_text(solution.read_text().replace(
        "not changed [scale.no-inplace].", "not changed [scale.no-inplace] [scale.copy].")
        + '\n\ndef double(x: Tensor) -> Tensor:\n    """``2 * x`` [scale.value]."""\n'
        "    # STUB: raise NotImplementedError(\"double\")\n    return 2 * x\n",
        encoding="utf-8")
    grader = course / "graders" / "scale_it" / "test_scale_it.py"
    grader.write_text(grader.read_text().replace('rules=("scale.bad-factor",)',
                                                 'rules=("scale.bad-factr",)'), encoding="utf-8")
    assert cli.main(["--root", str(course), "author", "build", "--check"]) == 1
    out = capsys.readouterr().out
    for part in ("rule [scale.finite] is stated in the handout but not in the stub",
                 "rule [scale.copy] is stated in the stub (scale) but not in the handout",
                 "test_bad_factor names rule [scale.bad-factr]",
                 "no public check calls double"):
        assert part in out, (part, out)
    assert out.count("stale: contract: ") == 4


def test_a_check_declares_its_rules() -> None:
    marker = check(points=1, kind="value", rules=("loss.mean", "loss.grad"))
    assert marker.kwargs["rules"] == ("loss.mean", "loss.grad")
    for bad in ("loss.mean", ("Loss.Mean",), ("nodot",)):
        with pytest.raises(GraderConfigError, match="rule ids"):
            check(points=1, kind="value", rules=bad)


def test_the_audit_page_shows_the_rule_table() -> None:
    rows = (contract.RuleRow("loss.mean", "the loss is a mean", "handout", ("test_a",), True),
            contract.RuleRow("loss.grad", "the gradient is finite", "stub", (), False))
    options = {"repeats": 1, "mutants_generated": 0, "skip_kinds": (), "mutated": [],
               "mutant_skip_kinds": ("training",)}
    result = AuditResult(assignment="x", grader_version="1", options=options, findings=(),
                         mutants=(), timings=(),
                         scores={}, max_score=1.0, duration_s=0.0, rules=rows,
                         unpinned_checks=("test_b",))
    page = render_audit_html(result)
    for part in ("Rules and the checks that pin them", "loss.mean", "test_a", "no check",
                 "Checks that name no rule", "test_b"):
        assert part in page, part


class _Named:
    def __init__(self, module: str) -> None:
        self.module = module


def test_handouts_keep_their_generated_reference_out_of_the_source() -> None:
    """The handout sources hold the marker, the READMEs the reference (never hand-edited)."""
    for name in available(ROOT):
        source = (ROOT / "solutions" / name / "handout.md").read_text(encoding="utf-8")
        readme = (ROOT / "assignments" / name / "README.md").read_text(encoding="utf-8")
        assert contract.API_MARKER in source and "## API reference" not in source
        assert "## API reference" in readme and contract.API_MARKER not in readme
