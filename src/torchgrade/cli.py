"""The ``torchgrade`` command line: a thin layer over the library's functions.

    torchgrade check NAME [FILE]            students: run the public checks on your file
    torchgrade grade NAME SUBMISSIONS ...   instructors: grade a folder of submissions
    torchgrade author fixtures NAME         staff: rebuild public fixtures from the reference
    torchgrade author build [--check]       staff: regenerate stubs, handouts, student_template/
    torchgrade author new NAME              staff: scaffold a new assignment
    torchgrade audit NAME                   staff: is this grader fair and sharp?
    torchgrade list                         the assignments this course directory has
    torchgrade docker build-image|check     the worker image for --sandbox docker; engine check
    torchgrade nbgrader release NAME ...    staff: grades and feedback into an nbgrader course
    torchgrade similarity NAME SUBMISSIONS  staff: which submissions are too alike (offline)
    torchgrade export NAME --reports R ...  staff: grades into Canvas's or Moodle's gradebook
    torchgrade gpu-check [--smoke]          staff: prove the GPU checks on a machine with CUDA

Exit status: 0 success (for ``check``: every public check passed; for ``audit``: the grader
is fair), 1 checks failed (or the audit found a problem),
2 bad usage or input (with a message saying what to fix), 3 torchgrade itself failed on some
submission of a batch (their reports say why; the rest of the batch is graded), 4 (``grade``)
some checks could not be graded because the machine was overloaded, even when graded again
alone (those checks give and take no points; run the command again to grade them).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import textwrap
from pathlib import Path

from torchgrade import __version__, isolation, nbcode
from torchgrade.assignment import AssignmentError, available, find_root, load
from torchgrade.isolation import docker
from torchgrade.profiles import PROFILES
from torchgrade.report import KINDS, Report

SYMBOL = {"passed": "PASS", "failed": "FAIL", "error": "ERR ", "timeout": "TIME",
          "skipped": "SKIP", "infrastructure": "BUSY"}


def default_jobs(assignment, profile: str) -> int:
    """What this machine can run side by side: one grading per GPU under the gpu profile,
    else its cores divided by the rubric's torch threads per worker."""
    if profile == "gpu":
        from torchgrade.batch import visible_gpus

        return max(1, len(visible_gpus()))
    return max(1, (os.cpu_count() or 1) // assignment.threads(profile))


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
              torchgrade author build                       # stubs, handouts, student_template/
              torchgrade audit nt_xent --mutants 12 --jobs 2
              torchgrade nbgrader release nt_xent --course-dir notebooks --reports reports/
              torchgrade similarity nt_xent submissions/ --out reports/   # who copied?
              torchgrade export nt_xent --reports reports/ --to canvas    # or moodle, csv
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
    p.add_argument("file", nargs="?", type=Path, help="your module or your notebook (.ipynb: "
                   "its code cells are run, torchgrade's test cells left out; default: ./NAME.py "
                   "or ./NAME.ipynb if one exists, else assignments/NAME/NAME.py)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON "
                   "to PATH (the schema of `grade`'s per-student reports; the notebooks' test "
                   "cells read it)")
    p.add_argument("--training", action="store_true", help="also run the training checks "
                   "(minutes, not seconds) where this copy of the course has them, and print "
                   "the CPU seconds your code used in each against its budget; budgets are "
                   "CPU time with one torch thread, the same as when you are graded (the "
                   "handout's table lists them)")
    _common(p)

    g = sub.add_parser("grade", help="grade a folder of submissions into reports",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=textwrap.dedent("""\
            Grade every student folder of SUBMISSIONS, with public and hidden checks, into
            OUT/<student>/<assignment>.json (+ .html, results.json, .junit.xml), a class
            CSV and a summary page. In each student folder the first of these is graded:
              <module>.py                    a Python file
              <assignment>.ipynb             a notebook (its code cells run in the sandbox;
                                             torchgrade's test cells, however edited, never do)
              <assignment>/<assignment>.ipynb  nbgrader's layout: give its submitted/ folder,
                                             e.g. torchgrade grade nt_xent course/submitted
            A student folder with none of them gets a report saying so (zero points)."""))
    g.add_argument("assignment", help="assignment name, e.g. nt_xent")
    g.add_argument("submissions", type=Path, help="folder with one sub-folder per student "
                   "(nbgrader's submitted/ folder works as is)")
    g.add_argument("--out", type=Path, required=True, help="where reports are written")
    g.add_argument("--jobs", "-j", type=int, default=None, help="submissions graded at once "
                   "(default: what the machine runs side by side, its CPU cores divided by "
                   "the rubric's torch threads per worker; under --profile gpu one per GPU, "
                   "each grading then getting a GPU of its own). Grades never depend on it: "
                   "threads are fixed by the rubric and budgets are CPU time")
    g.add_argument("--visibility", choices=("public", "all"), default="all",
                   help="which checks run (default: all, public and hidden)")
    g.add_argument("--student", action="append", help="grade only this student (repeatable)")
    g.add_argument("--shard", metavar="I/N", help="grade only shard I of N (e.g. 2/4), for "
                   "splitting a roster across CI jobs: each student is in exactly one shard, "
                   "chosen by a hash of the folder name")
    g.add_argument("--executor", choices=("local", "docker", "ray"), default="local",
                   help="where gradings run: local (default; worker processes in bubblewrap, "
                   "--jobs at once), docker (the same, each worker in a container: "
                   "--sandbox docker), ray (each submission a task on a Ray cluster, one CPU "
                   "or, with --profile gpu, one GPU per task; see --ray-address)")
    g.add_argument("--ray-address", metavar="HOST:PORT", help="the Ray cluster to use with "
                   "--executor ray (`ray start --head` prints it); default: start a local "
                   "cluster for this batch. Every node needs the course at $TORCHGRADE_ROOT "
                   "(the ci/ runner image has it)")
    g.add_argument("--skip-kind", action="append", default=[], metavar="KIND", choices=KINDS,
                   help="leave checks of this kind out (repeatable), e.g. training for a quick "
                   "first pass: they are reported as skipped, worth no points")
    g.add_argument("--no-cache", action="store_true", help="grade everyone again, even those "
                   "whose report was written for the same submission and grader (by default "
                   "they are reused, so an interrupted batch resumes where it stopped)")
    g.add_argument("--leaderboard-names", action="store_true", help="show students' folder "
                   "names on the leaderboard (OUT/NAME-leaderboard.html and .csv; by default "
                   "each student appears under the pseudonym in their folder's pseudonym.txt, "
                   "else under a stable anonymous name)")
    g.add_argument("--similarity", action="store_true", help="after grading, compare every "
                   "pair of the graded submissions and add the pairs flagged to the class "
                   "summary (as `torchgrade similarity`; its pages go to OUT too)")
    _common(g)

    a = sub.add_parser("author", help="course-staff tools")
    asub = a.add_subparsers(dest="author_command", required=True, metavar="TOOL")
    f = asub.add_parser("fixtures", help="rebuild graders/NAME/fixtures from the reference")
    f.add_argument("assignment")
    b = asub.add_parser(
        "build", help="regenerate what students get from solutions/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            Regenerate, from each marked reference solutions/NAME/NAME.py and its handout
            source solutions/NAME/handout.md:
              assignments/NAME/NAME.py, README.md   the stub and the handout
              examples/NAME/stub/NAME.py            the stub, graded by the tests
              graders/NAME/fixtures/                the public fixtures (from the reference)
              student_template/                     the repository students clone: stubs,
                                                    handouts, public checks and fixtures only,
                                                    pyproject.toml, README, CI workflow
              notebooks/source/NAME/NAME.ipynb      the nbgrader source notebook: locked
                                                    handout cells, solution cells, one graded
                                                    test cell per public check
            Solution markers (comment lines, so the reference runs unchanged):
              # BEGIN SOLUTION ... # END SOLUTION   left out of the stub
              # BEGIN STUB ... # END STUB           commented lines the stub has uncommented
              # STUB: <code>                        one line of the stub
            An assignment whose reference has no markers is skipped with a note.
            With --check nothing is written: exit status 1 and the list of stale files
            when anything generated differs from what its sources give now."""),
        epilog=textwrap.dedent("""\
            examples:
              torchgrade author build                  # after editing a reference or a grader
              torchgrade author build --check          # CI: is everything generated up to date?
              torchgrade author build --skip-fixtures  # quick: fixtures left as they are
            """))
    b.add_argument("--check", action="store_true", help="write nothing; exit 1 and list the "
                   "stale files when anything generated is out of date (fixtures excepted: "
                   "tests/test_fixtures.py checks them against the reference)")
    b.add_argument("--skip-fixtures", action="store_true", help="do not rebuild the public "
                   "fixtures (the template gets the ones already built)")
    m = asub.add_parser(
        "measure", help="record what the reference uses of each training check's CPU budget",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            Grade the reference's CPU training checks for real (one torch thread, as students
            are graded) and record the CPU seconds each used, with this machine and the date,
            in solutions/NAME/reference_cpu.toml. `author build` turns that record and the
            grader's budgets into the table of training-check budgets in the handout;
            `author build --check` fails when a budget changed since it was measured, and
            `torchgrade audit` when the reference uses more than half of a budget."""),
        epilog=textwrap.dedent("""\
            examples:
              torchgrade author measure wgan_gp   # after changing a training check or budget
              torchgrade author build             # then: the handout's budget table
            """))
    m.add_argument("assignment")
    n = asub.add_parser(
        "new", help="scaffold a new assignment",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            Scaffold assignment NAME as a small working example to replace: a marked
            reference and its handout source (solutions/NAME/), a grader with one public and
            two hidden checks, its rubric and fixture builder (graders/NAME/), and the
            examples' correct and stub folders. Then run `torchgrade author build` and read
            docs/writing-a-grader.md. Refuses a name that exists or is not an identifier."""),
        epilog=textwrap.dedent("""\
            examples:
              torchgrade author new simclr_loss
              torchgrade --root ~/course author new simclr_loss
            """))
    n.add_argument("name", help="the assignment's name, a lower-case identifier")

    au = sub.add_parser(
        "audit", help="prove a grader fair and sharp before release",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            Is this grader fair and sharp? Grades, exactly as students are graded, the
            submissions whose right score is known:
              reference            must get full marks
              stub                 must get zero, every check failing cleanly
              twins                the stub with every top-level function returning None,
                                   a NaN tensor, a 0-dim zero or its first argument: each
                                   must get zero (a non-answer earns nothing)
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
    au.add_argument("--jobs", "-j", type=int, default=None, help="submissions graded at once "
                    "(default: CPU cores divided by the rubric's torch threads per worker)")
    au.add_argument("--seed", type=int, default=0, help="which mutants are drawn (default 0)")
    au.add_argument("--skip-kind", action="append", default=[], metavar="KIND",
                    choices=KINDS,
                    help="leave checks of this kind out of every run (repeatable)")
    au.add_argument("--example-skip-kind", action="append", default=[], metavar="KIND",
                    choices=KINDS,
                    help="leave checks of this kind out for the examples whose about.toml "
                    "names none of them (the reference, the stub and examples expecting full "
                    "marks or zero still run every check; repeatable), e.g. training, for a "
                    "quicker audit that still trains where an example claims it matters")
    au.add_argument("--mutants-with-training", action="store_true", help="grade mutants with "
                    "the training checks too (a minute or more per mutant)")
    au.add_argument("--no-twins", action="store_true", help="do not grade the stub's four "
                    "degenerate twins (every top-level function returning None, a NaN "
                    "tensor, a 0-dim zero or its first argument; by default each must score "
                    "zero, with every check, in every run)")
    au.add_argument("--sandbox", choices=("auto", "bwrap", "docker", "none"), default="auto",
                    help="worker isolation, as for grade")

    sub.add_parser("list", help="list the assignments of this course directory")

    dk = sub.add_parser(
        "docker", help="the Docker executor (--sandbox docker): engine check, worker image",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            With --sandbox docker each student worker runs in its own container (no network,
            memory and pid limits, read-only root, uid nobody, --gpus all under the gpu
            profile where the engine has an NVIDIA runtime); the grader stays on this host.
            The engine is the docker CLI's (DOCKER_HOST, DOCKER_CONTEXT); the image is
            $TORCHGRADE_DOCKER_IMAGE or --docker-image, default torchgrade-runner:local.
            Two images are built here from local files, nothing pulled:
              torchgrade-runner:local   an almost empty root; this host's Python and engine
                                        are mounted read-only into each worker (seconds)
              torchgrade-runner:self    (--self-contained) its own Debian, Python, the
                                        pinned requirements-runner.txt (CUDA torch included)
                                        and the engine: debootstrap + pip with this host's
                                        wheels, then docker import; minutes the first time,
                                        reused while the requirements are the same"""),
        epilog=textwrap.dedent("""\
            examples:
              torchgrade docker build-image      # once per host: needs no registry
              torchgrade docker build-image --self-contained   # needs root and debootstrap
              torchgrade docker check
              torchgrade grade nt_xent submissions/ --out reports/ --sandbox docker
              torchgrade grade nt_xent submissions/ --out reports/ --sandbox docker \\
                  --docker-image torchgrade-runner:self
            """))
    dsub = dk.add_subparsers(dest="docker_command", required=True, metavar="TOOL")
    bi = dsub.add_parser("build-image", help="build the worker image from local files: "
                         "torchgrade-runner:local (this host's Python mounted at run time), "
                         "or with --self-contained torchgrade-runner:self (its own Python)")
    bi.add_argument("--self-contained", action="store_true", help="build an image that "
                    "carries its own Debian, Python, pinned requirements and the engine "
                    "(root, debootstrap and bubblewrap needed; reused when unchanged)")
    dsub.add_parser("check", help="say whether an engine answers and has the worker image")

    nbg = sub.add_parser("nbgrader", help="release grades and feedback through nbgrader")
    nsub = nbg.add_subparsers(dest="nbgrader_command", required=True, metavar="TOOL")
    rel = nsub.add_parser(
        "release", help="grades into the gradebook, feedback pages, release_feedback",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            Release the reports REPORTS/<student>/NAME.json (from `torchgrade grade`) through
            the nbgrader course directory --course-dir (its nbgrader_config.py is read):
              gradebook    the assignment, a notebook NAME with one grade cell per check
                           (max score = its points; generate_assignment's test cell
                           torchgrade_<check> where there is one, the other checks then in
                           a notebook NAME_torchgrade), the students, and each
                           check's points with its feedback as the comment; created where
                           missing, updated where present, in one transaction
              late         submission times from submitted/<student>/NAME/timestamp.txt,
                           penalties from nbgrader's LateSubmissionPlugin (or the configured
                           AssignLatePenalties.plugin_class) against the assignment's duedate
              feedback     feedback/<student>/NAME/<notebook>.html: public checks with their
                           feedback, hidden checks summarised (counts and points only)
              exchange     nbgrader's release_feedback, for the students who submitted
                           through nbgrader; they run `nbgrader fetch_feedback NAME`
            Safe to run again: rows are updated, never duplicated. `nbgrader export` then gives
            the totals of REPORTS/NAME.csv (less any late penalty).
            A report that cannot be read, or is for another assignment, is skipped with a
            message (exit status 1); nothing is written unless every other report is sound."""),
        epilog=textwrap.dedent("""\
            examples:
              torchgrade grade nt_xent submissions/ --out reports/ --jobs 2
              torchgrade nbgrader release nt_xent --course-dir notebooks --reports reports
              torchgrade nbgrader release nt_xent --course-dir ~/course --reports reports \\
                  --duedate "2026-12-01 17:00:00 UTC"
              nbgrader export          # in the course directory: the same totals
            """))
    rel.add_argument("assignment", help="assignment name, e.g. nt_xent (nbgrader's too)")
    rel.add_argument("--course-dir", type=Path, default=Path("."), help="the nbgrader course "
                     "directory (default: the current directory)")
    rel.add_argument("--reports", type=Path, required=True, help="the --out folder of "
                     "`torchgrade grade`")
    rel.add_argument("--notebook", help="the gradebook notebook for the checks (default: "
                     "NAME, as notebooks/source/NAME/NAME.ipynb)")
    rel.add_argument("--duedate", help="set the assignment's due date in the gradebook, e.g. "
                     "\"2026-12-01 17:00:00 UTC\" (default: keep nbgrader's)")
    rel.add_argument("--no-exchange", action="store_true", help="write the gradebook and the "
                     "feedback pages, but do not run release_feedback")
    _similarity_parser(sub)
    _export_parser(sub)
    _gpu_check_parser(sub)
    return parser


def _gpu_check_parser(sub: argparse._SubParsersAction) -> None:
    gc = sub.add_parser(
        "gpu-check", help="prove the GPU checks on a machine with CUDA (or --smoke on a CPU)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            On a machine with CUDA, grade under --profile gpu, as students are graded, each
            assignment's GPU checks (those declared for the gpu profile alone) on:
              reference        must pass them
              stub             must fail them
              wrong example    the rubric's [profiles.gpu] check_example: must fail them
            Prints per check the metric, its threshold, the wall-clock and CPU seconds, and
            writes them to benchmarks/gpu-<date>.json (--out). Without CUDA it says so and
            exits 2 having graded nothing. --smoke grades the same under gpu_smoke (the GPU
            checks on the CPU at the rubric's tiny sizes, as CI does). --seeds calibrates:
            each offset shifts every seed of the gpu tables and grades the reference and the
            wrong example again. Exit status 0 when every verdict holds, 1 otherwise.
            Requirements and timings: benchmarks/gpu_check.md."""),
        epilog=textwrap.dedent("""\
            examples:
              torchgrade gpu-check                         # on a GPU machine: all assignments
              make gpu-check                               # the same, installing torchgrade first
              torchgrade gpu-check --smoke --jobs 2        # anywhere: the same path on the CPU
              torchgrade gpu-check --assignment vit_attention --seeds 0 1 2   # calibrate
            """))
    gc.add_argument("--smoke", action="store_true", help="grade under gpu_smoke (on the CPU, "
                    "the rubrics' [profiles.gpu_smoke] sizes) instead of gpu")
    gc.add_argument("--assignment", action="append", default=[], metavar="NAME",
                    help="only this assignment (repeatable; default: every assignment with "
                    "GPU checks)")
    gc.add_argument("--jobs", "-j", type=int, default=None, help="gradings at once (default: "
                    "3 on a GPU, all sharing it; the CPU cores with --smoke)")
    gc.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="OFFSET",
                    help="seed offsets to grade (default 0: the rubrics' own seeds); more "
                    "than one calibrates (the stub is graded at the first only)")
    gc.add_argument("--all-checks", action="store_true", help="grade every check of the "
                    "profile, not only the GPU checks (a whole grading per submission)")
    gc.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                    help="worker isolation, as for grade (auto: bubblewrap where it works, "
                    "else rlimits only, as the reports then say)")
    gc.add_argument("--out", type=Path, help="the JSON written (default: "
                    "benchmarks/gpu-<date>.json, gpu_smoke-<date>.json with --smoke)")


def _similarity_parser(sub: argparse._SubParsersAction) -> None:
    from torchgrade.similarity import DEFAULT_THRESHOLD, MAX_PAGES

    sim = sub.add_parser(
        "similarity", help="which submissions are too alike: every pair compared, offline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(f"""\
            Compare every pair of submissions of SUBMISSIONS (found as `grade` finds them;
            notebooks on their code cells only) with copydetect's winnowing, on this machine:
            nothing is sent anywhere and nothing of a submission is run. The stub, the
            handout's code blocks and torchgrade's notebook cells never count. Renamed
            variables and functions, reordered functions, changed comments and docstrings,
            reformatting and added dead code are seen through.
            A pair's score is the larger of its two shares (how much of each one's own code
            is found in the other); it is flagged at --threshold (default {DEFAULT_THRESHOLD},
            measured on independently written solutions and planted copies: see
            benchmarks/RESULTS.md). Writes
              OUT/NAME-similarity.html   the flagged pairs, then the closest others, ranked
              OUT/NAME-similarity.csv    every pair, highest score first
              OUT/similarity/A/B.html    each flagged pair side by side, matches numbered
            Exit status 0 whether or not pairs are flagged (read the pages: a high score
            says the code is alike, not who wrote it)."""),
        epilog=textwrap.dedent("""\
            examples:
              torchgrade similarity nt_xent submissions/ --out similarity/
              torchgrade similarity nt_xent course/submitted --out reports/ --threshold 0.8
              torchgrade grade nt_xent submissions/ --out reports/ --similarity  # both
            """))
    sim.add_argument("assignment", help="assignment name, e.g. nt_xent")
    sim.add_argument("submissions", type=Path, help="folder with one sub-folder per student, "
                     "as for `grade` (nbgrader's submitted/ folder works as is)")
    sim.add_argument("--out", type=Path, required=True, help="where the pages and the CSV "
                     "are written (the --out of `grade` is fine: the names do not collide)")
    sim.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="flag pairs "
                     f"scoring at least this, between 0 and 1 (default {DEFAULT_THRESHOLD})")
    sim.add_argument("--student", action="append", help="compare only these students "
                     "(repeatable; at least two)")
    sim.add_argument("--max-pages", type=int, default=MAX_PAGES, metavar="N",
                     help="side-by-side "
                     f"pages for the N highest-scoring flagged pairs (default {MAX_PAGES}; every "
                     "flagged pair is in the table and the CSV)")


def _export_parser(sub: argparse._SubParsersAction) -> None:
    from torchgrade.lms_export import CANVAS_COLUMNS, FORMATS, MOODLE_COLUMNS

    ex = sub.add_parser(
        "export", help="grades into a gradebook: Canvas's or Moodle's CSV import, or CSV",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(f"""\
            Write the scores of the reports REPORTS/<student>/NAME.json (from `grade`) as the
            CSV file a gradebook imports:
              canvas   {", ".join(CANVAS_COLUMNS)}, then the assignment's
                       column (--column; "Name (1234)" with the Canvas assignment id updates
                       that assignment), and a "Points Possible" row. Import it in Canvas:
                       Grades > Import.
              moodle   {", ".join(MOODLE_COLUMNS)}, the
                       grade and its feedback. Import it in Moodle: Grades > Import > CSV file,
                       then map the identity column you filled to the user, the grade column
                       to a grade item (or a new one) and the feedback to its feedback.
              csv      folder, score, points_possible, percent, checks passed, status.
            --roster maps folder names to gradebook identities when they differ: a CSV with
            a "folder" column and the format's identity columns named as above (a Canvas
            gradebook export with a "folder" column added works as is). Without it the folder
            name is the Canvas "SIS Login ID" or the Moodle "Username".
            Reports that cannot be read are skipped with a message (exit status 1)."""),
        epilog=textwrap.dedent("""\
            examples:
              torchgrade export nt_xent --reports reports/ --to canvas
              torchgrade export nt_xent --reports reports/ --to canvas --roster roster.csv \\
                  --column "NT-Xent (48213)"
              torchgrade export nt_xent --reports reports/ --to moodle --out grades.csv
            """))
    ex.add_argument("assignment", help="assignment name, e.g. nt_xent")
    ex.add_argument("--reports", type=Path, required=True, help="the --out folder of `grade`")
    ex.add_argument("--to", choices=FORMATS, required=True, help="the gradebook's format")
    ex.add_argument("--out", type=Path, help="the file written (default: "
                    "REPORTS/NAME-<format>.csv)")
    ex.add_argument("--roster", type=Path, help="CSV mapping each student folder ('folder' "
                    "column) to its gradebook identity")
    ex.add_argument("--column", help="the gradebook column (default: the assignment's name)")
    ex.add_argument("--points", type=float, help="points possible (default: the rubric's "
                    "total_points, else the largest max_score of the reports)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default="cpu",
                   help="cpu (default) or gpu: the gpu profile runs the GPU checks and skips "
                   "them with a message where there is no CUDA; gpu_smoke runs the GPU checks "
                   "on the CPU at the rubric's tiny [profiles.gpu_smoke] sizes (what CI runs)")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "docker", "none"), default="auto",
                   help="worker isolation: auto (bubblewrap when it works here), bwrap "
                   "(required), docker (each worker in a container: see `torchgrade docker "
                   "--help`), none (rlimits only)")
    p.add_argument("--fresh-workers", action="store_true", help="start every student worker "
                   "afresh under bubblewrap instead of forking it from the worker template "
                   "(which imported torch once; see README, Start-up); slower, for comparison")
    p.add_argument("--docker-image", metavar="IMAGE", help="worker image for --sandbox docker "
                   "(default: $TORCHGRADE_DOCKER_IMAGE, else torchgrade-runner:local)")


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
        local = [Path.cwd() / f"{assignment.module}.py", Path.cwd() / f"{assignment.name}.ipynb"]
        file = next((p for p in local if p.is_file()), assignment.stub_file)
    if not file.is_file():
        raise UsageError(f"{file} does not exist: give the path to your {assignment.module}.py "
                         f"(or your notebook, {assignment.name}.ipynb)")
    if file.suffix not in (".py", ".ipynb"):
        raise UsageError(f"{file} is neither a Python file (.py) nor a notebook (.ipynb)")
    print(f"torchgrade {__version__}: public checks of {assignment.name} on {file}",
          flush=True)
    print(isolation.describe(args.sandbox), flush=True)  # once: the checks are the same anyway
    opts = Options(profile=args.profile, visibility="public", sandbox=args.sandbox,
                   worker_template=not args.fresh_workers)
    report = grade_submission(assignment, file, "you", opts)
    if args.json is not None:
        from torchgrade.report import write_report

        write_report(report, args.json)
    print_report(report, verbose=True)
    passed = bool(report.checks) and all(c.status == "passed" for c in report.checks)
    if args.training:
        passed = _check_training(assignment, file, opts) and passed
    return 0 if passed else 1


def _check_training(assignment, file: Path, opts) -> bool:
    """The training checks on the student's file (all of them, hidden or not, where this copy
    of the course has them), each with the CPU seconds it used against its budget."""
    from torchgrade.runner import grade_submission

    skip = tuple(k for k in KINDS if k != "training")
    print(f"\ntraining checks of {assignment.name} (minutes; budgets are CPU seconds):",
          flush=True)
    report = grade_submission(assignment, file, "you", dataclasses.replace(
        opts, visibility="all", skip_kinds=skip))
    if not report.checks:
        print("  this copy of the course has no training checks for it: they run when you "
              "are graded (their budgets are in the handout)")
        return True
    print_report(report, verbose=True)
    return all(c.status == "passed" for c in report.checks)


def print_report(report: Report, verbose: bool) -> None:
    if report.submission_error:
        print(f"\n!! {report.submission_error}\n")
    for line in nbcode.summary_lines(report.extra.get("notebook")):  # which cells ran
        print(f"notebook: {line}")
    width = max((len(c.name) for c in report.checks), default=10)
    for c in report.checks:
        print(f"  {SYMBOL[c.status]}  {c.points:>4g}/{c.max_points:<4g} {c.name:<{width}}  "
              f"{c.description}")
        if verbose and c.kind == "training" and c.cpu_budget_s:
            print(f"        CPU: your code used {c.cpu_s:.1f} of this check's "
                  f"{c.cpu_budget_s:g} CPU seconds")
        if verbose and c.status != "passed" and c.feedback and c.feedback != \
                report.submission_error:
            print(textwrap.indent(c.feedback.rstrip(), "        "))
    threads = report.extra.get("threads")
    print(f"\nscore: {report.score:g}/{report.max_score:g}   sandbox: {report.sandbox}   "
          f"time: {report.duration_s:.1f} s" + (f"   torch threads: {threads}" if threads
                                                  else ""))
    if report.unresolved:
        print(f"!! {len(report.unresolved)} check(s) could not be graded: this machine was too "
              "busy (see BUSY above). They count neither for nor against you: run again when "
              "it is quieter.")


def cmd_grade(args: argparse.Namespace) -> int:
    from torchgrade.batch import (
        INTERNAL,
        discover,
        grade_batch,
        in_shard,
        parse_shard,
        progress_for,
    )
    from torchgrade.runner import Options

    assignment = load(args.assignment, _root(args))
    if args.jobs is None:
        args.jobs = default_jobs(assignment, args.profile)
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
                         f"(expected {args.submissions}/<student>/{assignment.module}.py "
                         f"or <student>/{assignment.name}.ipynb)")
    if args.executor == "docker":
        if args.sandbox not in ("auto", "docker"):
            raise UsageError(f"--executor docker runs every worker in a container; it cannot "
                             f"be combined with --sandbox {args.sandbox}")
        args.sandbox = "docker"
    if args.ray_address and args.executor != "ray":
        raise UsageError("--ray-address is for --executor ray")
    opts = Options(profile=args.profile, visibility=args.visibility, sandbox=args.sandbox,
                   skip_kinds=tuple(args.skip_kind), worker_template=not args.fresh_workers)
    grade, jobs, ray = None, args.jobs, None
    if args.executor == "ray":
        from torchgrade.ray_exec import RayExecutor, RayUnavailable

        try:
            ray = RayExecutor(args.ray_address, gpu=args.profile == "gpu",
                              local_cpus=None if args.ray_address else args.jobs)
        except RayUnavailable as exc:
            raise UsageError(str(exc)) from exc
        grade = ray.grade
        slots = ray.cluster().get("GPU" if args.profile == "gpu" else "CPU", 1)
        jobs = max(args.jobs, int(slots)) if args.ray_address else args.jobs
        print(f"Ray cluster: {ray.cluster()}", file=sys.stderr, flush=True)
    print(f"grading {len(roster)} submission(s) of {assignment.name} with {jobs} job(s)"
          + (" on Ray" if ray else ""), file=sys.stderr, flush=True)
    try:
        result = grade_batch(assignment, args.submissions, args.out, options=opts, jobs=jobs,
                             students=roster, progress=progress_for(),
                             use_cache=not args.no_cache,
                             leaderboard_names=args.leaderboard_names,
                             **({"grade": grade} if grade else {}))
    finally:
        if ray is not None:
            ray.close()
    width = max(len(r.student) for r in result.reports)
    print(f"\n{'student':<{width}}  score    passed failed error timeout")
    for r in result.reports:
        counts = {s: sum(c.status == s for c in r.checks) for s in SYMBOL}
        print(f"{r.student:<{width}}  {r.score:>5g}/{r.max_score:<4g} {counts['passed']:>4} "
              f"{counts['failed']:>6} {counts['error']:>5} {counts['timeout']:>7}"
              + ("   (submission problem)" if r.submission_error else "")
              + (f"   ({len(r.unresolved)} check(s) not graded: machine overloaded)"
                 if r.unresolved else ""))
    print(f"\nreports: {result.out_dir}/<student>/{assignment.name}.json (.html for people)")
    print(f"class CSV: {result.csv_path}   ({result.duration_s:.1f} s)")
    if result.summary_path is not None:
        print(f"class summary: {result.summary_path}")
    if result.leaderboard_path is not None:
        print(f"leaderboard: {result.leaderboard_path} (and .csv; shareable: "
              f"{'folder names' if args.leaderboard_names else 'pseudonyms only'})")
    if result.unresolved:
        print(f"\n{len(result.unresolved)} submission(s) still have checks the machine was too "
              f"busy to grade, even alone: {', '.join(result.unresolved)}. Their scores leave "
              "those checks out; run the same command again (with fewer --jobs, or on a "
              "quieter machine) to grade them.", file=sys.stderr)
    if args.similarity:
        _similarity_after_grade(assignment, args, roster, result)
    broken = [r.student for r in result.reports if r.submission_error.startswith(INTERNAL)]
    if broken:
        print(f"torchgrade itself failed on {len(broken)} submission(s): {', '.join(broken)} "
              "(see their reports)", file=sys.stderr)
        return 3
    return 4 if result.unresolved else 0


def _similarity_after_grade(assignment, args: argparse.Namespace, roster: list[str],
                            result) -> None:
    """``grade --similarity``: the similarity pass over the students just graded, its pages in
    OUT, and its section in the class summary."""
    from torchgrade.render.similarity import summary_section, write_similarity
    from torchgrade.render.summary import write_class_summary
    from torchgrade.similarity import run

    print(f"comparing {len(roster)} submission(s) for similarity...", file=sys.stderr,
          flush=True)
    found = run(assignment, args.submissions, students=roster)
    outputs = write_similarity(found, args.out)
    if result.summary_path is not None:
        write_class_summary(result.reports, result.summary_path, summary_section(found))
    print(f"similarity: {len(found.flagged)} pair(s) flagged of {len(found.pairs)}: "
          f"{outputs.page}")


def cmd_similarity(args: argparse.Namespace) -> int:
    from torchgrade.render.similarity import pair_page, write_similarity
    from torchgrade.similarity import SimilarityError, run

    assignment = load(args.assignment, _root(args))
    if args.student is not None and len(set(args.student)) < 2:
        raise UsageError("--student: name at least two students to compare")
    if args.max_pages < 0:
        raise UsageError(f"--max-pages must be 0 or more, got {args.max_pages}")
    try:
        result = run(assignment, args.submissions, args.threshold, students=args.student,
                     max_pages=args.max_pages)
    except SimilarityError as exc:
        raise UsageError(str(exc)) from exc
    outputs = write_similarity(result, args.out, args.max_pages)
    for s in result.submissions:
        if s.skipped:
            print(f"not compared: {s.student}: {s.skipped}", file=sys.stderr)
    width = max((len(p.a) + len(p.b) for p in result.flagged), default=0) + 5
    for i, p in enumerate(result.flagged):
        where = f"{outputs.page.parent}/{pair_page(p)}" if i < args.max_pages else "(no page)"
        print(f"  FLAG  {p.a + ' and ' + p.b:<{width}} {p.score:.2f}   {where}")
    print(f"\n{assignment.name}: {len(result.compared)} submission(s) compared, "
          f"{len(result.pairs)} pair(s), {len(result.flagged)} flagged at "
          f"{result.threshold:.2f} ({result.duration_s:.1f} s)")
    print(f"page: {outputs.page}\nCSV: {outputs.csv}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from torchgrade.lms_export import ExportError, export

    points = args.points
    if points is None:
        try:
            points = load(args.assignment, _root(args)).total_points
        except AssignmentError:
            points = None  # a reports folder away from the course: the reports' max_score
    elif points <= 0:
        raise UsageError(f"--points must be a number > 0, got {points:g}")
    out = args.out or args.reports / f"{args.assignment}-{args.to}.csv"
    try:
        result = export(args.assignment, args.reports, args.to, out, roster=args.roster,
                        column=args.column, points_possible=points)
    except ExportError as exc:
        raise UsageError(str(exc)) from exc
    for message in result.skipped:
        print(message, file=sys.stderr)
    if result.without_report:
        print(f"roster entries with no report, not exported: "
              f"{', '.join(result.without_report)}", file=sys.stderr)
    if result.incomplete:
        print(f"graded on fewer than {result.points_possible:g} points (checks skipped or not "
              f"graded; their score counts them as 0): {', '.join(result.incomplete)}",
              file=sys.stderr)
    print(f"{len(result.students)} student(s) of {args.assignment}, out of "
          f"{result.points_possible:g} points, written for {args.to}: {result.path}")
    return 1 if result.skipped else 0


def cmd_author(args: argparse.Namespace) -> int:
    from torchgrade.fixtures import build_fixtures

    if args.author_command == "build":
        return cmd_author_build(args)
    if args.author_command == "new":
        return cmd_author_new(args)
    if args.author_command == "measure":
        from torchgrade import budgets

        assignment = load(args.assignment, _root(args))
        if not budgets.training_checks(assignment):
            raise UsageError(f"{assignment.name} has no training checks to measure")
        print(f"grading the reference of {assignment.name}, training checks only...",
              file=sys.stderr, flush=True)
        path = budgets.measure(assignment)
        for name, m in budgets.recorded(assignment).items():
            print(f"  {name}: {m.cpu_s:.1f} of {m.budget_s:g} CPU seconds")
        print(f"recorded in {path}; run `torchgrade author build` to update the handout")
        return 0
    assignment = load(args.assignment, _root(args))
    path = build_fixtures(assignment)
    print(f"wrote {path}")
    return 0


def cmd_author_build(args: argparse.Namespace) -> int:
    from torchgrade import author
    from torchgrade.markers import MarkerError
    from torchgrade.public_grader import GraderSplitError

    root = _root(args)
    try:
        if args.check:
            the_plan = author.plan(root)
            for note in the_plan.notes:
                print(f"note: {note}", file=sys.stderr)
            stale = author.stale(root, the_plan)
            for line in stale:
                print(f"stale: {line}")
            if stale:
                print(f"{len(stale)} generated file(s) out of date: run `torchgrade author "
                      "build`", file=sys.stderr)
                return 1
            print(f"up to date: {len(the_plan.files)} generated files of "
                  f"{', '.join(the_plan.assignments) or 'no assignment'}")
            return 0
        result = author.build(root, fixtures=not args.skip_fixtures, log=print)
    except (MarkerError, GraderSplitError) as exc:
        raise UsageError(str(exc)) from exc
    for note in result.plan.notes:
        print(f"note: {note}", file=sys.stderr)
    for rel in result.written:
        print(f"wrote {rel}")
    for rel in result.removed:
        print(f"removed {rel} (nothing generates it)")
    print(f"{len(result.written)} file(s) written, {len(result.plan.files) - len(result.written)}"
          f" already up to date ({', '.join(result.plan.assignments) or 'no assignment'})")
    for problem in result.plan.problems:  # handout, stub and public checks disagree
        print(f"contract: {problem}", file=sys.stderr)
    if result.plan.problems:
        print(f"{len(result.plan.problems)} contract problem(s): handout, stub and public checks "
              "must state one contract (torchgrade.contract)", file=sys.stderr)
        return 1
    return 0


def cmd_author_new(args: argparse.Namespace) -> int:
    from torchgrade.scaffold import GUIDE, ScaffoldError, scaffold

    root = args.root.resolve() if args.root is not None else find_root()
    if not root.is_dir():
        raise UsageError(f"--root {args.root} is not a directory")
    try:
        written = scaffold(root, args.name)
    except ScaffoldError as exc:
        raise UsageError(str(exc)) from exc
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    print(f"\nnext: `torchgrade author build` writes the stub, handout, fixtures and template;"
          f"\n      `torchgrade grade {args.name} examples/{args.name} --out /tmp/{args.name}` "
          f"grades the examples;\n      {GUIDE} explains checks, fixtures, examples and the "
          "audit.")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from torchgrade.audit import AuditOptions, run_audit

    assignment = load(args.assignment, _root(args))
    if args.jobs is None:
        args.jobs = default_jobs(assignment, "cpu")
    for value, name, least in ((args.mutants, "--mutants", 0), (args.repeats, "--repeats", 1),
                               (args.jobs, "--jobs", 1)):
        if value < least:
            raise UsageError(f"{name} must be at least {least}, got {value}")
    out = args.out or Path("audits") / assignment.name
    options = AuditOptions(
        mutants=args.mutants, repeats=args.repeats, jobs=args.jobs, seed=args.seed,
        skip_kinds=tuple(args.skip_kind), sandbox=args.sandbox,
        example_skip_kinds=tuple(args.example_skip_kind),
        mutant_skip_kinds=() if args.mutants_with_training else ("training",),
        twins=not args.no_twins)
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


def cmd_gpu_check(args: argparse.Namespace) -> int:
    from torchgrade import gpu_check

    root = _root(args)
    missing = gpu_check.missing_modules()
    if missing:
        raise UsageError(f"gpu-check needs {', '.join(missing)}, not installed for "
                         f"{sys.executable} (benchmarks/gpu_check.md)")
    jobs = args.jobs or (max(1, os.cpu_count() or 1) if args.smoke else 3)
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    try:
        result = gpu_check.run(root, smoke=args.smoke, names=args.assignment, jobs=jobs,
                               seeds=args.seeds, sandbox=args.sandbox,
                               all_checks=args.all_checks,
                               log=lambda line: print(line, flush=True))
    except gpu_check.NoCuda as exc:
        print(f"torchgrade gpu-check: no CUDA here: {exc}.\nNothing was graded. Run it on a "
              "machine with an NVIDIA GPU (benchmarks/gpu_check.md), or `torchgrade gpu-check "
              "--smoke` for the same gradings on the CPU at smoke sizes.", file=sys.stderr)
        return 2
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print()
    for line in gpu_check.table_lines(result):
        print(line)
    for name, why in result.skipped:
        print(f"note: {name}: {why}")
    out = args.out or gpu_check.default_path(root, result.profile)
    gpu_check.write_json(result, out)
    bad = sum(r.verdict != "ok" for r in result.rows)
    verdict = ("all verdicts hold" if result.ok else f"{bad} verdict(s) do not hold" if bad
               else "nothing was graded")
    print(f"\n{verdict}: "
          f"{len(result.rows)} row(s), {result.duration_s:.0f} s on "
          f"{result.environment['device']}\nwritten: {out}")
    return 0 if result.ok else 1


def cmd_list(args: argparse.Namespace) -> int:
    root = _root(args)
    for name in available(root):
        a = load(name, root)
        print(f"{name:<16} {a.title}")
    return 0


def cmd_nbgrader(args: argparse.Namespace) -> int:
    from torchgrade.nbgrader_release import ReleaseError, release

    try:
        result = release(args.assignment, args.course_dir, args.reports,
                         notebook=args.notebook, duedate=args.duedate,
                         exchange=not args.no_exchange,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    except ReleaseError as exc:
        raise UsageError(str(exc)) from exc
    print(f"{result.assignment}: {len(result.students)} student(s) in the gradebook"
          + (f" ({len(result.created_students)} added)" if result.created_students else "")
          + (", assignment added" if result.created_assignment else "")
          + f"; notebook(s) {', '.join(result.notebooks)}")
    for student, penalty in sorted(result.late_penalties.items()):
        print(f"  late: {student}, penalty {penalty:g}")
    print(f"feedback pages: {len(result.feedback)} under {args.course_dir}/feedback/")
    if not args.no_exchange:
        print(f"released to the exchange: {len(result.released)} student(s)")
    if result.not_released and not args.no_exchange:
        print(f"not released (no nbgrader submission with timestamp and secret): "
              f"{', '.join(result.not_released)}")
    if result.skipped:
        print(f"{len(result.skipped)} report(s) skipped (see above)", file=sys.stderr)
    print(f"({result.duration_s:.1f} s)")
    return 1 if result.skipped else 0


def cmd_docker(args: argparse.Namespace) -> int:
    if args.docker_command == "build-image" and args.self_contained:
        from torchgrade.isolation import runner_image

        built = runner_image.build(_root(args), log=lambda line: print(line, file=sys.stderr,
                                                                        flush=True))
        print(f"{built.tag} ({built.image_id[:19]}, {built.size_bytes / 2**30:.1f} GiB, base "
              f"{built.base} {'built' if built.base_built else 'reused'}, "
              f"{built.seconds:.0f} s); grade with --sandbox docker --docker-image {built.tag}")
        print(docker.preflight(built.tag))
        return 0
    if args.docker_command == "build-image":
        image_id = docker.build_image()
        print(f"built {docker.DEFAULT_IMAGE} ({image_id[:19]})")
    print(docker.preflight())
    return 0


def _docker_ready(args: argparse.Namespace) -> None:
    """--sandbox docker: fail now, saying how to start an engine, rather than per student."""
    if getattr(args, "docker_image", None):
        os.environ[docker.IMAGE_ENV] = args.docker_image  # the graders inherit it
    if getattr(args, "sandbox", None) == "docker":
        docker.preflight()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"check": cmd_check, "grade": cmd_grade, "author": cmd_author,
               "audit": cmd_audit, "list": cmd_list, "docker": cmd_docker,
               "nbgrader": cmd_nbgrader, "similarity": cmd_similarity,
               "export": cmd_export, "gpu-check": cmd_gpu_check}[args.command]
    try:
        _docker_ready(args)
        return handler(args)
    except docker.DockerUnavailable as exc:
        print(f"torchgrade: error: docker: {exc}", file=sys.stderr)
        return 2
    except (UsageError, AssignmentError) as exc:
        print(f"torchgrade: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("torchgrade: interrupted; reports already written are complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
