"""Is a grader fair and sharp? Grade the submissions whose right score is known, and see.

Before a grader is released, course staff need evidence, not hope:

- **fair**: the reference scores full marks; the untouched stub scores zero, every check
  failing cleanly on the stub (not crashing in the grader); every run gives the same score;
- **not fooled by a non-answer**: the stub's degenerate twins (``torchgrade.twins``: every
  top-level function returns None, a NaN tensor, a 0-dim zero or its first argument) score
  zero; a point for one is a check whose property any constant satisfies, passing without
  evidence of a real answer;
- **traceable**: every rule the handout states (``torchgrade.contract``: ``[area.what]`` ids)
  is pinned by a check naming it (``@check(rules=...)``); a rule no check names is a problem,
  and the checks that name no rule are listed;
- **sharp**: each known mistake in ``examples/<name>/`` (its ``about.toml`` says which checks
  must catch it and which must not be affected) loses points where it should, and mutants of the
  reference (``torchgrade.mutate``) are caught; the ones that survive are listed as possible
  gaps for a person to judge (a survivor can be equivalent to the reference).

Everything is graded exactly as students are (``grade_batch``: sandboxed workers, real
reports), from a staging folder of "students" named ``reference``, ``stub``,
``twin-<kind>``, ``example-<name>`` and ``mutant-<id>``. The result is a frozen
:class:`AuditResult`, written as ``audit.json`` (schema ``torchgrade.audit/1``) and
``audit.html`` next to the reports.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from torchgrade.assignment import Assignment, AssignmentError
from torchgrade.batch import grade_batch
from torchgrade.contract import RuleRow, rule_table
from torchgrade.mutate import Mutant, generate_mutants
from torchgrade.report import Report, atomic_write_text
from torchgrade.runner import Options
from torchgrade.twins import Twin, generate_twins

SCHEMA = "torchgrade.audit/1"
GRADER_CRASH = "grader could not evaluate"  # what a check says when the grader itself broke

Verdict = Literal["ok", "problem"]


@dataclasses.dataclass(frozen=True)
class AuditOptions:
    mutants: int = 8  # mutants of the reference to grade (0: none)
    repeats: int = 2  # runs of the reference, stub and examples compared for determinism
    jobs: int = 1
    seed: int = 0  # which mutants are drawn
    skip_kinds: tuple[str, ...] = ()  # check kinds left out of every run (a quicker audit)
    # Mutants are graded without these kinds by default: a training check costs a minute per
    # mutant; a mutant only a training check could catch then survives and is listed.
    mutant_skip_kinds: tuple[str, ...] = ("training",)
    # Mistake examples that name no check of these kinds (in must_fail / must_pass) are graded
    # without them: the reference, the stub and examples expecting full marks or zero always
    # run every check, and an example that claims a training check still runs it. () (the
    # default) grades every example with every check.
    example_skip_kinds: tuple[str, ...] = ()
    sandbox: str = "auto"
    # Grade the stub's four degenerate twins (torchgrade.twins) with every check, alongside the
    # reference and the stub, in every run; each must score 0. They fail fast (4-11 s each,
    # training checks included: benchmarks/degenerate_twins.md). False leaves them out.
    twins: bool = True


@dataclasses.dataclass(frozen=True)
class Finding:
    """One statement the audit verified, true or not."""

    subject: str  # "reference", "stub", "example-no_normalize", "determinism", ...
    verdict: Verdict
    message: str


@dataclasses.dataclass(frozen=True)
class MutantResult:
    id: str
    operator: str
    description: str
    killed: bool
    score: float
    max_score: float
    caught_by: tuple[str, ...]  # checks that did not pass


@dataclasses.dataclass(frozen=True)
class TwinResult:
    kind: str  # torchgrade.twins.KINDS
    student: str  # "twin-<kind>"
    description: str  # what every top-level function of this twin returns
    score: float  # of the first run
    max_score: float
    awarded: tuple[str, ...]  # checks that gave it points (empty: as it should be)


@dataclasses.dataclass(frozen=True)
class CheckTiming:
    name: str
    kind: str
    median_s: float
    max_s: float


@dataclasses.dataclass(frozen=True)
class AuditResult:
    assignment: str
    grader_version: str
    options: dict[str, Any]
    findings: tuple[Finding, ...]
    mutants: tuple[MutantResult, ...]
    timings: tuple[CheckTiming, ...]
    scores: dict[str, list[float]]  # "student" -> score of each run
    max_score: float
    duration_s: float
    twins: tuple[TwinResult, ...] = ()
    # The handout's rules and the checks that pin each (torchgrade.contract.rule_table), and
    # the checks that name no rule.
    rules: tuple[RuleRow, ...] = ()
    unpinned_checks: tuple[str, ...] = ()
    schema: str = SCHEMA

    @property
    def fair(self) -> bool:
        return all(f.verdict == "ok" for f in self.findings)

    @property
    def mutation_score(self) -> float | None:
        if not self.mutants:
            return None
        return sum(m.killed for m in self.mutants) / len(self.mutants)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["fair"] = self.fair
        data["mutation_score"] = self.mutation_score
        return data


# -- staging -----------------------------------------------------------------------------------
def examples_of(assignment: Assignment) -> dict[str, dict[str, Any]]:
    """``examples/<name>/<example>/about.toml`` of every example, by example name."""
    folder = assignment.root / "examples" / assignment.name
    found: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return found
    for about in sorted(folder.glob("*/about.toml")):
        try:
            spec = tomllib.loads(about.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise AssignmentError(f"{about}: invalid TOML: {exc}") from exc
        if spec.get("expect") not in ("full", "zero", "partial"):
            raise AssignmentError(f"{about}: expect must be \"full\", \"zero\" or \"partial\"")
        for key in ("must_fail", "must_pass"):
            if not isinstance(spec.get(key, []), list):
                raise AssignmentError(f"{about}: {key} must be a list of check names")
        if not (about.parent / f"{assignment.module}.py").is_file():
            raise AssignmentError(f"{about.parent} has no {assignment.module}.py")
        found[about.parent.name] = spec
    return found


def _stage(folder: Path, student: str, module: str, source: str) -> None:
    target = folder / student / f"{module}.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source, encoding="utf-8")


# -- judging -----------------------------------------------------------------------------------
def _not_passed(report: Report) -> list[str]:
    return [c.name for c in report.checks if c.status != "passed"]


def _judge_reference(report: Report) -> Finding:
    if report.unresolved:
        return Finding("reference", "problem", "not judged: the machine was too busy to grade "
                       f"{', '.join(report.unresolved)} (infrastructure); audit again")
    if report.max_score > 0 and report.score == report.max_score:
        return Finding("reference", "ok", f"full marks ({report.score:g}/{report.max_score:g})")
    failing = ", ".join(_not_passed(report)) or report.submission_error or "no checks ran"
    return Finding("reference", "problem",
                   f"{report.score:g}/{report.max_score:g}: the reference fails {failing}")


def _judge_budgets(report: Report) -> Finding | None:
    """The reference must use at most half of each training check's CPU budget, so that a
    slower machine, or a slower correct solution, still passes."""
    from torchgrade.budgets import MAX_REFERENCE_SHARE

    training = [c for c in report.checks if c.kind == "training" and c.status == "passed"
                and c.cpu_budget_s > 0]
    if not training:
        return None
    over = [c for c in training if c.cpu_s > MAX_REFERENCE_SHARE * c.cpu_budget_s]
    used = ", ".join(f"{c.name} {c.cpu_s:.1f}/{c.cpu_budget_s:g} CPU s" for c in training)
    if over:
        return Finding("budgets", "problem", f"the reference uses more than "
                       f"{MAX_REFERENCE_SHARE:.0%} of a training check's CPU budget ({used}): "
                       "raise the budget, or a slower correct solution will fail")
    return Finding("budgets", "ok", f"the reference uses at most {MAX_REFERENCE_SHARE:.0%} of "
                   f"each training check's CPU budget ({used})")


def _judge_stub(report: Report) -> Finding:
    crashes = [c.name for c in report.checks if GRADER_CRASH in c.feedback]
    if report.score != 0:
        passing = [c.name for c in report.checks if c.status == "passed"]
        return Finding("stub", "problem", f"the untouched stub earns {report.score:g} points "
                       f"({', '.join(passing)})")
    if crashes or not report.checks:
        return Finding("stub", "problem", "the grader crashed on the stub in: "
                       + (", ".join(crashes) or "every check (none ran)"))
    return Finding("stub", "ok", f"zero, every one of {len(report.checks)} checks fails cleanly")


def _judge_twin(twin: Twin, report: Report) -> Finding:
    """A degenerate twin must score zero: each point it earns is a check that passes on a
    non-answer. A grader crash on it is noted (its feedback to such a student is unclear)."""
    awarded = [f"{c.name} ({c.points:g})" for c in report.checks if c.points > 0]
    if report.score != 0 or awarded:
        return Finding(twin.student, "problem", f"a non-answer earns {report.score:g}/"
                       f"{report.max_score:g} ({twin.description}): awarded by "
                       f"{', '.join(awarded)}")
    if not report.checks:
        return Finding(twin.student, "problem", "the twin could not be graded: "
                       + (report.submission_error.strip().splitlines() or ["no checks ran"])[0])
    crashes = [c.name for c in report.checks if GRADER_CRASH in c.feedback]
    note = f"; the grader itself crashed in {', '.join(crashes)}" if crashes else ""
    return Finding(twin.student, "ok", f"zero ({twin.description}){note}")


def _twin_result(twin: Twin, report: Report) -> TwinResult:
    return TwinResult(twin.kind, twin.student, twin.description, report.score,
                      report.max_score, tuple(c.name for c in report.checks if c.points > 0))


def _judge_example(name: str, spec: dict[str, Any], report: Report,
                   skipped_kinds: tuple[str, ...] = ()) -> Finding:
    """``skipped_kinds``: check kinds left out of this audit; a check the example names that
    did not run is then noted, not held against the grader."""
    subject = f"example-{name}"
    status = {c.name: c.status for c in report.checks}
    named = [*spec.get("must_fail", []), *spec.get("must_pass", [])]
    unrun = [c for c in named if c not in status]
    if skipped_kinds:
        must_fail = [c for c in spec.get("must_fail", []) if c in status]
        must_pass = [c for c in spec.get("must_pass", []) if c in status]
    else:
        must_fail, must_pass = spec.get("must_fail", []), spec.get("must_pass", [])
    problems = []
    expect = spec["expect"]
    if expect == "full" and report.score != report.max_score:
        problems.append(f"should score full marks, fails {', '.join(_not_passed(report))}")
    if expect == "zero" and report.score != 0:
        problems.append(f"should score zero, earns {report.score:g}")
    if expect == "partial" and not 0 < report.score < report.max_score and (
            must_fail or not skipped_kinds):
        problems.append(f"should lose some points but not all, scores {report.score:g}")
    for check in must_fail:
        if check not in status:
            problems.append(f"names a check that does not exist: {check}")
        elif status[check] == "passed":
            problems.append(f"{check} should catch it but passes")
    for check in must_pass:
        if check not in status:
            problems.append(f"names a check that does not exist: {check}")
        elif status[check] != "passed":
            problems.append(f"{check} should not be affected but is {status[check]}")
    summary = f"{report.score:g}/{report.max_score:g} ({spec.get('description', '')})"
    if skipped_kinds and unrun:
        summary += f"; not run here (kinds {', '.join(skipped_kinds)} skipped): {', '.join(unrun)}"
    if problems:
        return Finding(subject, "problem", f"{summary}: " + "; ".join(problems))
    return Finding(subject, "ok", summary)


def _judge_rules(rows: tuple[RuleRow, ...], unpinned: tuple[str, ...]) -> Finding:
    """Every rule of the handout must be pinned by a check; checks pinning none are listed."""
    loose = f"; checks that name no rule: {', '.join(unpinned)}" if unpinned else ""
    untested = [r.id for r in rows if not r.checks]
    if untested:
        return Finding("rules", "problem", f"{len(untested)} of {len(rows)} rules are pinned by "
                       f"no check: {', '.join(untested)} (name them in a check's "
                       f"rules=...){loose}")
    local = sum(r.public for r in rows)
    return Finding("rules", "ok", f"each of {len(rows)} rules is pinned by a check ({local} by "
                   f"a public one){loose}")


def _rules_of(assignment: Assignment) -> tuple[tuple[RuleRow, ...], tuple[str, ...]]:
    """The rule table, or nothing for an assignment without a marked reference and handout
    source (its stub and handout are written by hand)."""
    from torchgrade.markers import has_markers

    handout = assignment.root / "solutions" / assignment.name / "handout.md"
    if not handout.is_file() or not has_markers(
            assignment.solution_file.read_text(encoding="utf-8")):
        return (), ()
    return rule_table(assignment)


def _judge_determinism(runs: list[dict[str, Report]]) -> list[Finding]:
    findings = []
    for student in sorted(runs[0]):
        seen = [{c.name: (c.status, c.points) for c in run[student].checks} for run in runs]
        differing = sorted({name for outcome in seen[1:] for name in set(outcome) | set(seen[0])
                            if outcome.get(name) != seen[0].get(name)})
        if differing:
            findings.append(Finding("determinism", "problem",
                                    f"{student}: {', '.join(differing)} differed between runs"))
    if not findings:
        findings.append(Finding("determinism", "ok", f"{len(runs)} runs of {len(runs[0])} "
                                "submissions gave identical statuses and points"))
    return findings


def _timings(runs: list[dict[str, Report]]) -> tuple[CheckTiming, ...]:
    """Median time of each check on the reference (a correct submission's cost) and the most
    it took on any submission."""
    on_reference: dict[str, list[float]] = {}
    worst: dict[str, float] = {}
    kinds: dict[str, str] = {}
    for run in runs:
        for student, report in run.items():
            for c in report.checks:
                if student == "reference":
                    on_reference.setdefault(c.name, []).append(c.duration_s)
                worst[c.name] = max(worst.get(c.name, 0.0), c.duration_s)
                kinds[c.name] = c.kind
    return tuple(CheckTiming(name, kinds[name],
                             round(statistics.median(on_reference.get(name, [0.0])), 3),
                             round(worst[name], 3)) for name in worst)


def _mutant_result(mutant: Mutant, report: Report) -> MutantResult:
    caught = tuple(_not_passed(report))
    return MutantResult(mutant.id, mutant.operator, mutant.description, bool(caught),
                        report.score, report.max_score, caught)


# -- the audit ---------------------------------------------------------------------------------
def run_audit(assignment: Assignment, out_dir: Path, options: AuditOptions = AuditOptions(),
              log: Callable[[str], None] = lambda _: None) -> AuditResult:
    """Grade reference, stub, examples and mutants of ``assignment``; write ``audit.json`` and
    ``audit.html`` into ``out_dir`` (its ``submissions/`` and ``reports/`` are replaced)."""
    if options.repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {options.repeats}")
    for path, what in ((assignment.solution_file, "reference"), (assignment.stub_file, "stub")):
        if not path.is_file():
            raise AssignmentError(f"the audit needs the {what}: {path} does not exist")
    started = time.monotonic()
    examples = examples_of(assignment)
    staging = out_dir / "submissions"
    shutil.rmtree(staging, ignore_errors=True)
    module = assignment.module
    _stage(staging, "reference", module, assignment.solution_file.read_text(encoding="utf-8"))
    _stage(staging, "stub", module, assignment.stub_file.read_text(encoding="utf-8"))
    twins = _twins_of(assignment) if options.twins else []
    for twin in twins:
        _stage(staging, twin.student, module, twin.source)
    for name in examples:
        source = assignment.root / "examples" / assignment.name / name / f"{module}.py"
        _stage(staging, f"example-{name}", module, source.read_text(encoding="utf-8"))
    known = sorted(p.name for p in staging.iterdir())

    grading = Options(sandbox=options.sandbox, skip_kinds=options.skip_kinds)
    runs: list[dict[str, Report]] = []
    for i in range(options.repeats):
        log(f"run {i + 1}/{options.repeats}: grading {len(known)} known submissions")
        runs.append(_grade_known(assignment, staging, out_dir / "reports" / f"run{i + 1}",
                                 known, examples, grading, options))

    try:
        mutants = generate_mutants(assignment.solution_file.read_text(encoding="utf-8"),
                                   options.mutants, options.seed, assignment.audit_mutate)
    except ValueError as exc:  # [audit] mutate names something the reference lacks
        raise AssignmentError(f"{assignment.grader_dir / 'rubric.toml'}: [audit] mutate: "
                              f"{exc}") from exc
    mutant_results: list[MutantResult] = []
    if mutants:
        for m in mutants:
            _stage(staging, f"mutant-{m.id}", module, m.source)
        log(f"grading {len(mutants)} mutants of the reference")
        skip = tuple(sorted(set(options.skip_kinds) | set(options.mutant_skip_kinds)))
        batch = grade_batch(assignment, staging, out_dir / "reports" / "mutants",
                            options=dataclasses.replace(grading, skip_kinds=skip),
                            jobs=options.jobs, students=[f"mutant-{m.id}" for m in mutants],
                            use_cache=False)
        by_student = {r.student: r for r in batch.reports}
        mutant_results = [_mutant_result(m, by_student[f"mutant-{m.id}"]) for m in mutants]

    first = runs[0]
    findings = [_judge_reference(first["reference"]), _judge_stub(first["stub"])]
    findings += [f for f in (_judge_budgets(first["reference"]),) if f is not None]
    findings += [_judge_twin(t, first[t.student]) for t in twins]
    findings += [_judge_example(n, spec, first[f"example-{n}"],
                                tuple(first[f"example-{n}"].extra.get("skipped_kinds", ())))
                 for n, spec in examples.items()]
    if not examples:
        findings.append(Finding("examples", "problem",
                                f"examples/{assignment.name}/ has no example mistakes"))
    findings += _judge_determinism(runs) if options.repeats > 1 else []
    rules, unpinned = _rules_of(assignment)
    if rules:
        findings.append(_judge_rules(rules, unpinned))
    result = AuditResult(
        assignment=assignment.name, grader_version=assignment.version,
        options=dataclasses.asdict(options) | {"mutants_generated": len(mutants),
                                               "mutated": list(assignment.audit_mutate)},
        findings=tuple(findings), mutants=tuple(mutant_results), timings=_timings(runs),
        scores={s: [run[s].score for run in runs] for s in known},
        max_score=first["reference"].max_score, duration_s=round(time.monotonic() - started, 1),
        twins=tuple(_twin_result(t, first[t.student]) for t in twins), rules=rules,
        unpinned_checks=unpinned)
    write_audit(result, out_dir, mutants, twins)
    return result


def _twins_of(assignment: Assignment) -> list[Twin]:
    try:
        return generate_twins(assignment.stub_file.read_text(encoding="utf-8"))
    except ValueError as exc:  # a stub that does not parse
        raise AssignmentError(f"{assignment.stub_file}: no degenerate twins: {exc}") from exc


def _grade_known(assignment: Assignment, staging: Path, out: Path, known: list[str],
                 examples: dict[str, dict[str, Any]], grading: Options,
                 options: AuditOptions) -> dict[str, Report]:
    """One run over the known submissions: all of them with every check, or, with
    ``example_skip_kinds``, the reference, the stub and its twins first (the reference's report
    says which check is of which kind; the twins, fast, fill the other jobs while the
    reference trains), then with every check the examples that expect full marks or zero (a
    claim about every check) or name a check of a skipped kind, and the others without those
    kinds."""
    def batch(students: list[str], opts: Options) -> dict[str, Report]:
        if not students:
            return {}
        graded = grade_batch(assignment, staging, out, options=opts, jobs=options.jobs,
                             students=students, use_cache=False)
        return {r.student: r for r in graded.reports}

    skip = tuple(k for k in options.example_skip_kinds if k not in grading.skip_kinds)
    if not skip:
        return batch(known, grading)
    first = [s for s in known if not s.startswith("example-")]
    reports = batch(first, grading)
    kinds = {c.name: c.kind for c in reports["reference"].checks}
    claimed = [f"example-{n}" for n, spec in examples.items()
               if spec["expect"] in ("full", "zero")  # a claim about every check
               or any(kinds.get(c) in skip
                      for c in [*spec.get("must_fail", []), *spec.get("must_pass", [])])]
    rest = [s for s in known if s not in first and s not in claimed]
    reports |= batch(claimed, grading)
    reports |= batch(rest, dataclasses.replace(
        grading, skip_kinds=tuple(sorted({*grading.skip_kinds, *skip}))))
    return reports


def write_audit(result: AuditResult, out_dir: Path, mutants: Sequence[Mutant],
                twins: Sequence[Twin] = ()) -> None:
    from torchgrade.render.html import render_audit_html

    atomic_write_text(out_dir / "audit.json",
                      json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
    for m in mutants:  # each mutant's source, to read a survivor's edit in context
        atomic_write_text(out_dir / "mutants" / f"{m.id}.py", m.source + "\n")
    for t in twins:  # each twin's source, to read what earned a point
        atomic_write_text(out_dir / "twins" / f"{t.kind}.py", t.source + "\n")
    atomic_write_text(out_dir / "audit.html", render_audit_html(result))
