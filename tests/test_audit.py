"""Does `torchgrade audit` tell a fair, sharp grader from one that is not?

The mutation generator and the judging rules are pinned with plain data (fast). One audit of
the toy course (tests/toy_course: reference, stub and its degenerate twins, two example
mistakes and one correct variant in examples/toy/) runs for real, sandboxed workers and all,
through the CLI; another, of a copy of the toy course with a check any constant passes, shows
that the twins catch it (and that nothing else does).
"""

from __future__ import annotations

import ast
import dataclasses
import html.parser
import json
import subprocess
import sys
from pathlib import Path

import pytest

from torchgrade.assignment import AssignmentError, load
from torchgrade.audit import (
    AuditOptions,
    _judge_determinism,
    _judge_example,
    _judge_reference,
    _judge_rules,
    _judge_stub,
    _judge_twin,
    examples_of,
    run_audit,
)
from torchgrade.contract import RuleRow
from torchgrade.mutate import OPERATORS, count_sites, generate_mutants
from torchgrade.report import CheckResult, Report
from torchgrade.twins import make_twin

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(__file__).resolve().parent / "toy_course"

SOURCE = '''"""Module docstring with 1 + 2 < 3 in it."""
from __future__ import annotations

import torch

LIMIT: int = 3


def f(x: torch.Tensor, k: int = 2) -> torch.Tensor:
    """Docstring: -1 and a * b are prose here."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k + 1}")
    y = torch.cat([x, -x], dim=1) * k + 1
    return torch.where(y > LIMIT, y - 1, y)


def g(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x, x
'''


# -- mutants ------------------------------------------------------------------------------------
def test_mutants_are_deterministic_distinct_and_compile():
    """Same source, budget and seed: the same mutants; each compiles and differs from the rest
    and from the original."""
    first = generate_mutants(SOURCE, 20, seed=3)
    assert first == generate_mutants(SOURCE, 20, seed=3)
    sources = [m.source for m in first]
    assert len(set(sources)) == len(sources)
    assert ast.unparse(ast.parse(SOURCE)) not in sources
    for m in first:
        compile(m.source, m.id, "exec")
    assert [m.id for m in first] == [f"m{i:02d}" for i in range(1, len(first) + 1)]
    assert generate_mutants(SOURCE, 20, seed=4) != first  # another draw order


def test_mutants_never_touch_docstrings_messages_or_annotations():
    """Are docstrings, raise statements (their f-string messages) and annotations left alone,
    so that no mutant is trivially equivalent?"""
    for m in generate_mutants(SOURCE, 100):
        tree = ast.parse(m.source)
        assert ast.get_docstring(tree) == "Module docstring with 1 + 2 < 3 in it."
        f = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "f")
        assert ast.get_docstring(f) == "Docstring: -1 and a * b are prose here."
        assert 'raise ValueError(f"k must be >= 0, got {k + 1}")' in m.source.replace("'", '"')
        assert "LIMIT: int = " in m.source and "(x: torch.Tensor, k: int=" in m.source
        assert "-> torch.Tensor:" in m.source


def test_each_operator_makes_the_edit_it_names():
    """Does every operator appear, and does its description match the edit?"""
    mutants = generate_mutants(SOURCE, 100)
    by_operator = {op: [m for m in mutants if m.operator == op] for op in OPERATORS}
    assert all(by_operator[op] for op in OPERATORS), {k: len(v) for k, v in by_operator.items()}
    descriptions = {m.description for m in mutants}
    assert "line 13 in f: `-x` -> `x`" in descriptions  # negate
    assert any("`k < 0`" in d and "`<=`" in d for d in descriptions)  # compare boundary
    assert any(d.startswith("line 13 in f: `1` -> `2`") for d in descriptions)  # off by one
    assert any("`torch.where(y > LIMIT, y - 1, y)` -> `torch.where(y - 1, y > LIMIT, y)`" in d
               for d in descriptions)  # swap_args
    detach = by_operator["detach"]
    assert [m.function for m in detach] == ["f"]  # g returns a tuple: no .detach() there
    assert "return torch.where(y > LIMIT, y - 1, y).detach()" in detach[0].source


def test_budget_round_robin_and_site_counts():
    """A small budget still spans operators; counts report every editable place."""
    counts = count_sites(SOURCE)
    assert counts["negate"] == 1 and counts["detach"] == 1
    few = generate_mutants(SOURCE, len(OPERATORS))
    assert len({m.operator for m in few}) == len(OPERATORS)
    assert generate_mutants(SOURCE, 0) == []
    with pytest.raises(ValueError, match="budget"):
        generate_mutants(SOURCE, -1)


# -- judging -----------------------------------------------------------------------------------
def _report(student: str, statuses: dict[str, str], feedback: str = "") -> Report:
    checks = tuple(CheckResult(name=n, status=s, points=5.0 if s == "passed" else 0.0,
                               max_points=5.0, visibility="hidden", kind="value",
                               feedback="" if s == "passed" else feedback)
                   for n, s in statuses.items())
    return Report(student=student, assignment="x", score=sum(c.points for c in checks),
                  max_score=5.0 * len(checks), profile="cpu", device="cpu", sandbox="none",
                  submission_sha256="", grader_version="1", duration_s=0.0, checks=checks,
                  created_at="", torchgrade_version="")


def test_reference_must_get_full_marks():
    assert _judge_reference(_report("reference", {"a": "passed", "b": "passed"})).verdict == "ok"
    bad = _judge_reference(_report("reference", {"a": "passed", "b": "timeout"}))
    assert bad.verdict == "problem" and "b" in bad.message


def test_stub_must_score_zero_and_fail_cleanly():
    """A stub that earns points, or on which the grader itself crashed, is a problem."""
    assert _judge_stub(_report("stub", {"a": "error", "b": "failed"},
                               "NotImplementedError")).verdict == "ok"
    earns = _judge_stub(_report("stub", {"a": "passed", "b": "failed"}))
    assert earns.verdict == "problem" and "a" in earns.message
    crash = _judge_stub(_report("stub", {"a": "error"},
                                "the grader could not evaluate this check: KeyError"))
    assert crash.verdict == "problem" and "crashed" in crash.message


def test_a_twin_that_earns_a_point_is_a_problem_naming_the_check():
    """Any point for a degenerate twin is a problem naming the checks that gave it; zero is
    ok, with a grader crash on the twin noted; a twin that was never graded is a problem."""
    twin = make_twin(SOURCE, "zero")
    zero = _judge_twin(twin, _report("twin-zero", {"a": "failed", "b": "error"}))
    assert zero.verdict == "ok" and zero.subject == "twin-zero"
    assert "torch.tensor(0.0) (f, g)" in zero.message and "crashed" not in zero.message
    earns = _judge_twin(twin, _report("twin-zero", {"a": "passed", "b": "failed"}))
    assert earns.verdict == "problem"
    assert earns.message.startswith("a non-answer earns 5/10") and "by a (5)" in earns.message
    crash = _judge_twin(twin, _report("twin-zero", {"a": "error"},
                                      "The grader could not evaluate your answer (KeyError)"))
    assert crash.verdict == "ok" and "the grader itself crashed in a" in crash.message
    nothing = _judge_twin(twin, _report("twin-zero", {}))
    assert nothing.verdict == "problem" and "could not be graded" in nothing.message


def test_example_must_lose_points_where_it_says():
    spec = {"expect": "partial", "description": "d", "must_fail": ["a"], "must_pass": ["b"]}
    assert _judge_example("m", spec, _report("e", {"a": "failed", "b": "passed"})).verdict == "ok"
    uncaught = _judge_example("m", spec, _report("e", {"a": "passed", "b": "failed"}))
    assert uncaught.verdict == "problem"
    assert "a should catch it but passes" in uncaught.message
    assert "b should not be affected but is failed" in uncaught.message
    typo = _judge_example("m", {**spec, "must_fail": ["nope"]},
                          _report("e", {"a": "failed", "b": "passed"}))
    assert "does not exist: nope" in typo.message
    full = _judge_example("m", {"expect": "full"}, _report("e", {"a": "failed", "b": "passed"}))
    assert full.verdict == "problem" and "full marks" in full.message


def test_an_untested_rule_is_a_problem_and_loose_checks_are_listed():
    """Does the audit fail on a rule no check pins, and name the checks that pin no rule?"""
    pinned = RuleRow("loss.no-removed", "a mask removing nothing raises", "handout",
                     ("test_loss_public",), True)
    hidden = RuleRow("loss.grad", "gradient reaches pred only", "handout", ("test_grad",), False)
    ok = _judge_rules((pinned, hidden), ())
    assert ok.verdict == "ok" and "2 rules" in ok.message and "1 by a public" in ok.message
    lonely = RuleRow("loss.dtype", "the promoted dtype", "stub", (), False)
    bad = _judge_rules((pinned, lonely), ("test_smoke",))
    assert bad.verdict == "problem" and "loss.dtype" in bad.message
    assert "loss.no-removed" not in bad.message and "test_smoke" in bad.message


def test_determinism_names_the_checks_that_differed():
    runs = [{"s": _report("s", {"a": "passed", "b": "failed"})},
            {"s": _report("s", {"a": "passed", "b": "passed"})}]
    (finding,) = _judge_determinism(runs)
    assert finding.verdict == "problem" and finding.message == "s: b differed between runs"
    same = _judge_determinism([runs[0], runs[0]])
    assert [f.verdict for f in same] == ["ok"]


def test_examples_with_a_bad_about_file_are_refused(tmp_path: Path):
    """A typo in an about.toml is an authoring error with the file named, not a silent pass."""
    course = tmp_path / "course"
    (course / "graders").mkdir(parents=True)
    for part in ("graders/toy", "solutions", "assignments"):
        src = TOY / part
        if src.is_dir():
            subprocess.run(["cp", "-r", str(src), str(course / Path(part).parent)], check=True)
    bad = course / "examples" / "toy" / "typo"
    bad.mkdir(parents=True)
    (bad / "toy.py").write_text("")
    (bad / "about.toml").write_text('expect = "partially"\n')
    with pytest.raises(AssignmentError, match="typo/about.toml: expect must be"):
        examples_of(load("toy", course))


# -- one real audit ------------------------------------------------------------------------------
class _Parser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.slow
def test_audit_of_the_toy_course(tmp_path: Path):
    """Through the CLI: the toy grader is fair; of its three mutants the two that change a
    value or cut the gradient are caught and the detached `scale` (no check looks at its
    gradient) survives and is named; the JSON and HTML audits are written."""
    out = tmp_path / "audit"
    proc = subprocess.run(
        [sys.executable, "-m", "torchgrade", "--root", str(TOY), "audit", "toy", "--mutants",
         "3", "--repeats", "2", "--jobs", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "toy: fair" in proc.stdout
    assert "survived m03 [detach] line 10 in scale" in proc.stdout
    data = json.loads((out / "audit.json").read_text())
    assert data["schema"] == "torchgrade.audit/1" and data["fair"] is True
    assert sorted(data) == ["assignment", "duration_s", "fair", "findings", "grader_version",
                            "max_score", "mutants", "mutation_score", "options", "rules",
                            "schema", "scores", "timings", "twins", "unpinned_checks"]
    assert data["rules"] == [] and data["unpinned_checks"] == []  # no handout source
    verdicts = {f["subject"]: f["verdict"] for f in data["findings"]}
    assert verdicts == {"reference": "ok", "stub": "ok", "example-correct": "ok",
                        "example-detached_total": "ok", "example-wrong_factor": "ok",
                        "twin-none": "ok", "twin-nan": "ok", "twin-zero": "ok",
                        "twin-identity": "ok", "determinism": "ok"}
    assert data["scores"]["reference"] == [10.0, 10.0]
    assert [(t["student"], t["score"], t["awarded"]) for t in data["twins"]] == [
        (f"twin-{kind}", 0.0, []) for kind in ("none", "nan", "zero", "identity")]
    assert data["scores"]["twin-identity"] == [0.0, 0.0]  # graded in every run
    assert "return x" in (out / "twins" / "identity.py").read_text()
    assert data["scores"]["example-wrong_factor"] == [4.0, 4.0]
    killed = {m["id"]: m["killed"] for m in data["mutants"]}
    assert killed == {"m01": True, "m02": True, "m03": False}
    assert data["mutation_score"] == pytest.approx(2 / 3)
    assert (out / "mutants" / "m03.py").read_text().count(".detach()") == 1
    assert {t["name"] for t in data["timings"]} == {
        "test_scale_public", "test_scale_hidden", "test_scale_linear",
        "test_scale_rejects_nan", "test_total_scalar"}
    page = (out / "audit.html").read_text()
    assert "Content-Security-Policy" in page and "<script" not in page
    parser = _Parser()
    parser.feed(page)
    text = " ".join(parser.text)
    assert "Fair: every statement below holds." in text and "survived" in text
    assert "Degenerate twins" in text and "twin-nan" in text


def test_checks_of_a_skipped_kind_are_noted_not_held_against_the_grader():
    """In a quick audit without training checks, an example caught only by the training check
    scores full marks on what ran: that is noted, not a problem."""
    spec = {"expect": "partial", "description": "no training", "must_fail": ["t"],
            "must_pass": ["a"]}
    report = _report("e", {"a": "passed"})
    quick = _judge_example("m", spec, report, ("training",))
    assert quick.verdict == "ok" and "not run here (kinds training skipped): t" in quick.message
    assert _judge_example("m", spec, report).verdict == "problem"  # a full audit holds it


@pytest.mark.slow
def test_examples_run_a_skipped_kind_only_where_they_claim_it(tmp_path: Path):
    """``example_skip_kinds``: the reference, the stub, an example expecting full marks and one
    whose about.toml names a check of that kind run it; the other examples are graded without
    it, and the audit judges them on what ran."""
    options = AuditOptions(mutants=0, repeats=1, jobs=2, example_skip_kinds=("robustness",))
    result = run_audit(load("toy", TOY), tmp_path / "audit", options)
    assert all(f.verdict == "ok" for f in result.findings), result.findings
    run1 = tmp_path / "audit" / "reports" / "run1"
    ran = {p.name: {c["name"] for c in json.loads((p / "toy.json").read_text())["checks"]}
           for p in run1.iterdir() if p.is_dir()}
    # wrong_factor names test_scale_rejects_nan (robustness) in must_pass, and correct expects
    # full marks (a claim about every check): both run it; detached_total names none; the
    # twins, like the stub, run every check
    for full in ("reference", "stub", "example-wrong_factor", "example-correct", "twin-none",
                 "twin-identity"):
        assert "test_scale_rejects_nan" in ran[full], full
    assert "test_scale_rejects_nan" not in ran["example-detached_total"]
    assert "test_scale_public" in ran["example-detached_total"]


def test_mutants_can_be_limited_to_named_functions():
    """[audit] mutate = [...] in the rubric: mutants come only from the named top-level
    functions; a name the reference lacks is an error that says so."""
    only_f = generate_mutants(SOURCE, 100, only=["f"])
    assert only_f and {m.function for m in only_f} == {"f"}
    assert all(9 <= m.line <= 14 for m in only_f)  # its default k = 2 included
    assert len(only_f) < len(generate_mutants(SOURCE, 100))  # LIMIT's 3 is left alone
    assert generate_mutants(SOURCE, 100, only=["g"]) == []  # nothing to edit in g
    with pytest.raises(ValueError, match="nothing named \\['h'\\]"):
        generate_mutants(SOURCE, 5, only=["h"])


def test_rubric_audit_table_is_validated(tmp_path: Path):
    course = tmp_path / "course"
    subprocess.run(["cp", "-r", str(TOY), str(course)], check=True)
    rubric = course / "graders" / "toy" / "rubric.toml"
    text = rubric.read_text()
    rubric.write_text(text + '\n[audit]\nmutate = ["scale"]\n')
    assert load("toy", course).audit_mutate == ("scale",)
    rubric.write_text(text + '\n[audit]\nmutate = "scale"\n')
    with pytest.raises(AssignmentError, match="mutate must be a list"):
        load("toy", course)
    rubric.write_text(text + '\n[audit]\nmutants = 3\n')
    with pytest.raises(AssignmentError, match="unknown \\[audit\\] keys"):
        load("toy", course)


WEAK_CHECK = '''

@check(points=2, kind="robustness", catches="scaling the input in place")
def test_scale_keeps_its_input(student):
    """scale leaves its input unchanged (and asks for nothing else: any non-answer passes)."""
    _, mutated = student.call("scale", torch.ones(3), 2.0, _check_inputs=True)
    if mutated:
        raise AssertionError("scale modified its input in place")
'''


@pytest.mark.slow
def test_twins_catch_a_check_that_any_non_answer_passes(tmp_path: Path):
    """A toy grader with one more check, "does not modify its input", that never asks for an
    answer: the reference, the stub and every example are judged as before, and only the
    degenerate twins show the hole, each named with the check that paid it; without twins
    the audit calls the grader fair."""
    course = tmp_path / "course"
    subprocess.run(["cp", "-r", str(TOY), str(course)], check=True)
    grader = course / "graders" / "toy" / "test_toy.py"
    grader.write_text(grader.read_text() + WEAK_CHECK)
    rubric = course / "graders" / "toy" / "rubric.toml"
    rubric.write_text(rubric.read_text().replace("total_points = 10", "total_points = 12"))
    toy = load("toy", course)
    options = AuditOptions(mutants=0, repeats=1, jobs=2)
    result = run_audit(toy, tmp_path / "audit", options)
    verdicts = {f.subject: f for f in result.findings}
    problems = sorted(s for s, f in verdicts.items() if f.verdict != "ok")
    assert problems == ["twin-identity", "twin-nan", "twin-none", "twin-zero"]
    for twin in result.twins:
        assert twin.awarded == ("test_scale_keeps_its_input",) and twin.score == 2.0
        assert "awarded by test_scale_keeps_its_input (2)" in verdicts[twin.student].message
    blind = run_audit(toy, tmp_path / "blind", dataclasses.replace(options, twins=False))
    assert blind.fair and blind.twins == ()
    assert not any(f.subject.startswith("twin-") for f in blind.findings)
