"""The ``torchgrade`` command line: a thin layer over the library's functions.

    torchgrade check NAME [FILE]            students: run the public checks on your file
    torchgrade grade NAME SUBMISSIONS ...   instructors: grade a folder of submissions
    torchgrade author fixtures NAME         staff: rebuild public fixtures from the reference
    torchgrade audit NAME                   staff: is this grader fair and sharp?
    torchgrade list                         the assignments this course directory has

Exit status: 0 success (for ``check``: every public check passed; for ``audit``: the grader
is fair), 1 checks failed (or the audit found a problem),
2 bad usage or input (with a message saying what to fix), 3 torchgrade itself failed on some
submission of a batch (their reports say why; the rest of the batch is graded).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from torchgrade import __version__
from torchgrade.assignment import AssignmentError, available, find_root, load
from torchgrade.report import KINDS, Report

SYMBOL = {"passed": "PASS", "failed": "FAIL", "error": "ERR ", "timeout": "TIME",
          "skipped": "SKIP"}


class UsageError(Exception):
    """Bad input from the user: printed as one clear message, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchgrade", description="Autograding for PyTorch coursework. Student code "
        "runs in a sandboxed process; graders only ever see plain data.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent("""\
            examples:
              torchgrade check nt_xent                      # your assignments/nt_xent/nt_xent.py
              torchgrade check nt_xent ~/hw/nt_xent.py      # any file
              torchgrade grade nt_xent submissions/ --out reports/ --jobs 2
              torchgrade author fixtures nt_xent            # after changing the reference
              torchgrade audit nt_xent --mutants 12 --jobs 2
            """))
    parser.add_argument("--version", action="version", version=f"torchgrade {__version__}")
    parser.add_argument("--root", type=Path, help="the course directory (holding graders/); "
                        "default: found from the current directory")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="run the public checks on your file",
                       description="Run an assignment's public checks against your file and "
                       "print each check with its points and, for failures, what was expected, "
                       "what came back and a hint. Exit status 0 only when all pass.")
    p.add_argument("assignment", help="assignment name, e.g. nt_xent")
    p.add_argument("file", nargs="?", type=Path, help="your module (default: ./NAME.py if it "
                   "exists, else assignments/NAME/NAME.py)")
    _common(p)

    g = sub.add_parser("grade", help="grade a folder of submissions into reports",
                       description="Grade SUBMISSIONS/<student>/<module>.py for every student "
                       "folder, with public and hidden checks, into REPORTS/<student>/"
                       "<assignment>.json (+ .html, results.json, .junit.xml) and a class CSV.")
    g.add_argument("assignment", help="assignment name, e.g. nt_xent")
    g.add_argument("submissions", type=Path, help="folder with one sub-folder per student")
    g.add_argument("--out", type=Path, required=True, help="where reports are written")
    g.add_argument("--jobs", "-j", type=int, default=1, help="submissions graded at once "
                   "(default 1; about one per CPU core)")
    g.add_argument("--visibility", choices=("public", "all"), default="all",
                   help="which checks run (default: all, public and hidden)")
    g.add_argument("--student", action="append", help="grade only this student (repeatable)")
    g.add_argument("--shard", metavar="I/N", help="grade only shard I of N (e.g. 2/4), for "
                   "splitting a roster across CI jobs: each student is in exactly one shard, "
                   "chosen by a hash of the folder name")
    g.add_argument("--no-cache", action="store_true", help="grade everyone again, even those "
                   "whose report was written for the same submission and grader (by default "
                   "they are reused, so an interrupted batch resumes where it stopped)")
    _common(g)

    a = sub.add_parser("author", help="course-staff tools")
    asub = a.add_subparsers(dest="author_command", required=True, metavar="TOOL")
    f = asub.add_parser("fixtures", help="rebuild graders/NAME/fixtures from the reference")
    f.add_argument("assignment")

    au = sub.add_parser(
        "audit", help="prove a grader fair and sharp before release",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            Is this grader fair and sharp? Grades, exactly as students are graded, the
            submissions whose right score is known:
              reference            must get full marks
              stub                 must get zero, every check failing cleanly
              examples/NAME/*      each must lose points on the checks its about.toml names
              mutants              small generated mistakes in the reference; survivors are
                                   listed as possible gaps (or edits equivalent to it)
            The known submissions are graded --repeats times and every check whose result
            differed is named. Writes OUT/audit.json and OUT/audit.html.
            Exit status 0 when the grader is fair, 1 when a finding is a problem."""),
        epilog=textwrap.dedent("""\
            examples:
              torchgrade audit nt_xent                               # 8 mutants, 2 runs
              torchgrade audit nt_xent --mutants 0 --repeats 3       # determinism only
              torchgrade audit nt_xent --skip-kind training --jobs 2  # quick, no training
            """))
    au.add_argument("assignment", help="assignment name, e.g. nt_xent")
    au.add_argument("--out", type=Path, help="where the audit is written (default: "
                    "audits/NAME in the current directory)")
    au.add_argument("--mutants", type=int, default=8, help="mutants of the reference to grade "
                    "(default 8; 0 for none)")
    au.add_argument("--repeats", type=int, default=2, help="runs of the known submissions "
                    "compared for determinism (default 2)")
    au.add_argument("--jobs", "-j", type=int, default=1, help="submissions graded at once")
    au.add_argument("--seed", type=int, default=0, help="which mutants are drawn (default 0)")
    au.add_argument("--skip-kind", action="append", default=[], metavar="KIND",
                    choices=KINDS,
                    help="leave checks of this kind out of every run (repeatable)")
    au.add_argument("--mutants-with-training", action="store_true", help="grade mutants with "
                    "the training checks too (a minute or more per mutant)")
    au.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                    help="worker isolation, as for grade")

    sub.add_parser("list", help="list the assignments of this course directory")
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=("cpu", "gpu"), default="cpu",
                   help="cpu (default) or gpu: the gpu profile runs the GPU checks and skips "
                   "them with a message where there is no CUDA")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                   help="worker isolation: auto (bubblewrap when it works here), bwrap "
                   "(required), none (rlimits only)")


def _root(args: argparse.Namespace) -> Path:
    if args.root is not None:
        if not (args.root / "graders").is_dir():
            raise UsageError(f"--root {args.root} has no graders/ folder")
        return args.root.resolve()
    return find_root()


def cmd_check(args: argparse.Namespace) -> int:
    from torchgrade.runner import Options, grade_submission

    assignment = load(args.assignment, _root(args))
    file = args.file
    if file is None:
        local = Path.cwd() / f"{assignment.module}.py"
        file = local if local.is_file() else assignment.stub_file
    if not file.is_file():
        raise UsageError(f"{file} does not exist: give the path to your {assignment.module}.py")
    if file.suffix != ".py":
        raise UsageError(f"{file} is not a Python file (.py)")
    print(f"torchgrade {__version__}: public checks of {assignment.name} on {file}",
          flush=True)
    opts = Options(profile=args.profile, visibility="public", sandbox=args.sandbox,
                   threads=max(1, os.cpu_count() or 1))
    report = grade_submission(assignment, file, "you", opts)
    print_report(report, verbose=True)
    return 0 if report.checks and all(c.status == "passed" for c in report.checks) else 1


def print_report(report: Report, verbose: bool) -> None:
    if report.submission_error:
        print(f"\n!! {report.submission_error}\n")
    width = max((len(c.name) for c in report.checks), default=10)
    for c in report.checks:
        print(f"  {SYMBOL[c.status]}  {c.points:>4g}/{c.max_points:<4g} {c.name:<{width}}  "
              f"{c.description}")
        if verbose and c.status != "passed" and c.feedback and c.feedback != \
                report.submission_error:
            print(textwrap.indent(c.feedback.rstrip(), "        "))
    print(f"\nscore: {report.score:g}/{report.max_score:g}   sandbox: {report.sandbox}   "
          f"time: {report.duration_s:.1f} s")


def cmd_grade(args: argparse.Namespace) -> int:
    from torchgrade.batch import (
        INTERNAL,
        discover,
        grade_batch,
        in_shard,
        parse_shard,
        plain_progress,
    )
    from torchgrade.runner import Options

    assignment = load(args.assignment, _root(args))
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    try:
        roster = discover(args.submissions)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if args.student:
        unknown = sorted(set(args.student) - set(roster))
        if unknown:
            raise UsageError(f"no submission folder for: {', '.join(unknown)}")
        roster = [s for s in roster if s in set(args.student)]
    if args.shard:
        try:
            shard = parse_shard(args.shard)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        roster = [s for s in roster if in_shard(s, shard)]
        if not roster:
            print(f"shard {args.shard} holds no student of {args.submissions}: nothing to do",
                  file=sys.stderr)
            return 0
    if not roster:
        raise UsageError(f"{args.submissions} has no student folders "
                         f"(expected {args.submissions}/<student>/{assignment.module}.py)")
    opts = Options(profile=args.profile, visibility=args.visibility, sandbox=args.sandbox)
    print(f"grading {len(roster)} submission(s) of {assignment.name} with {args.jobs} job(s)",
          file=sys.stderr, flush=True)
    result = grade_batch(assignment, args.submissions, args.out, options=opts, jobs=args.jobs,
                         students=roster, progress=plain_progress(),
                         use_cache=not args.no_cache)
    width = max(len(r.student) for r in result.reports)
    print(f"\n{'student':<{width}}  score    passed failed error timeout")
    for r in result.reports:
        counts = {s: sum(c.status == s for c in r.checks) for s in SYMBOL}
        print(f"{r.student:<{width}}  {r.score:>5g}/{r.max_score:<4g} {counts['passed']:>4} "
              f"{counts['failed']:>6} {counts['error']:>5} {counts['timeout']:>7}"
              + ("   (submission problem)" if r.submission_error else ""))
    print(f"\nreports: {result.out_dir}/<student>/{assignment.name}.json (.html for people)")
    print(f"class CSV: {result.csv_path}   ({result.duration_s:.1f} s)")
    if result.summary_path is not None:
        print(f"class summary: {result.summary_path}")
    broken = [r.student for r in result.reports if r.submission_error.startswith(INTERNAL)]
    if broken:
        print(f"torchgrade itself failed on {len(broken)} submission(s): {', '.join(broken)} "
              "(see their reports)", file=sys.stderr)
        return 3
    return 0


def cmd_author(args: argparse.Namespace) -> int:
    from torchgrade.fixtures import build_fixtures

    assignment = load(args.assignment, _root(args))
    path = build_fixtures(assignment)
    print(f"wrote {path}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from torchgrade.audit import AuditOptions, run_audit

    assignment = load(args.assignment, _root(args))
    for value, name, least in ((args.mutants, "--mutants", 0), (args.repeats, "--repeats", 1),
                               (args.jobs, "--jobs", 1)):
        if value < least:
            raise UsageError(f"{name} must be at least {least}, got {value}")
    out = args.out or Path("audits") / assignment.name
    options = AuditOptions(
        mutants=args.mutants, repeats=args.repeats, jobs=args.jobs, seed=args.seed,
        skip_kinds=tuple(args.skip_kind), sandbox=args.sandbox,
        mutant_skip_kinds=() if args.mutants_with_training else ("training",))
    print(f"auditing {assignment.name}: {args.repeats} run(s), {args.mutants} mutant(s), "
          f"{args.jobs} job(s)", file=sys.stderr, flush=True)
    result = run_audit(assignment, out, options,
                       log=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    width = max(len(f.subject) for f in result.findings)
    print()
    for f in result.findings:
        print(f"  {'ok ' if f.verdict == 'ok' else 'BAD'}  {f.subject:<{width}}  {f.message}")
    if result.mutants:
        killed = sum(m.killed for m in result.mutants)
        print(f"\nmutants caught: {killed}/{len(result.mutants)}"
              f" (mutation score {100 * (result.mutation_score or 0):.0f} %)")
        for m in result.mutants:
            if not m.killed:
                print(f"  survived {m.id} [{m.operator}] {m.description}")
    verdict = "fair" if result.fair else "NOT fair: see the findings marked BAD"
    print(f"\n{assignment.name}: {verdict}   ({result.duration_s:.0f} s)")
    print(f"audit: {out}/audit.html and {out}/audit.json")
    return 0 if result.fair else 1


def cmd_list(args: argparse.Namespace) -> int:
    root = _root(args)
    for name in available(root):
        a = load(name, root)
        print(f"{name:<16} {a.title}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"check": cmd_check, "grade": cmd_grade, "author": cmd_author,
               "audit": cmd_audit, "list": cmd_list}[args.command]
    try:
        return handler(args)
    except (UsageError, AssignmentError) as exc:
        print(f"torchgrade: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("torchgrade: interrupted; reports already written are complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
