"""Tests for ``torchgrade author build`` and ``author new``: markers, the public-only grader,
staleness of everything generated, the student template's leak scan, and the scaffold.

The shipped course is checked as it is (are the generated files up to date, is the template
free of leaks?); everything that writes works in a temporary course.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from torchgrade import cli
from torchgrade.assignment import available, load
from torchgrade.author import TEMPLATE, marked, plan, stale
from torchgrade.leaks import scan
from torchgrade.markers import MarkerError, split_solution
from torchgrade.public_grader import GraderSplitError, split_grader
from torchgrade.runner import Options, grade_submission

REPO = Path(__file__).resolve().parents[1]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# -- solution markers ---------------------------------------------------------------------------
MARKED = dedent('''
    # BEGIN SOLUTION
    """Reference: hidden."""
    # END SOLUTION
    # BEGIN STUB
    # """Assignment: fill in f."""
    # END STUB

    from __future__ import annotations

    import math
    import os  # noqa: F401 - kept for students

    import torch
    from torch import Tensor, nn


    # BEGIN SOLUTION
    def _helper(x):
        return math.sqrt(x)
    # END SOLUTION


    def f(x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        """Reference docstring."""
        return torch.relu(x) * _helper(4.0)
        # END SOLUTION
        # BEGIN STUB
        # """Student docstring.
        #
        # Two paragraphs.
        # """
        # END STUB
        # STUB: raise NotImplementedError("f: write it")
''')

STUB = dedent('''
    """Assignment: fill in f."""

    from __future__ import annotations

    import os  # noqa: F401 - kept for students

    from torch import Tensor


    def f(x: Tensor) -> Tensor:
        """Student docstring.

        Two paragraphs.
        """
        raise NotImplementedError("f: write it")
''')


def test_markers_give_the_stub_and_the_secret_lines():
    """Are solution regions replaced by the stub's text, helpers and unused imports dropped?"""
    split = split_solution(MARKED, "ref.py")
    assert split.stub == STUB
    secret = {s.text: s.line for s in split.secret}
    assert secret["return torch.relu(x) * _helper(4.0)"] == 26
    assert "def _helper(x):" in secret and '"""Reference: hidden."""' in secret
    assert not any("Student" in s for s in secret)


def test_markers_leave_the_reference_unchanged():
    """Is a marked reference the same program as the unmarked one (markers are comments)?"""
    import ast

    unmarked = "\n".join(line for line in MARKED.splitlines()
                         if not line.strip().startswith(("# BEGIN", "# END", "# STUB")))
    assert ast.dump(ast.parse(MARKED)) == ast.dump(ast.parse(unmarked))


@pytest.mark.parametrize(("source", "line", "message"), [
    ("# BEGIN SOLUTION\nx = 1\n", 1, "never closed"),
    ("x = 1\n# END SOLUTION\n", 2, "without a '# BEGIN SOLUTION'"),
    ("# BEGIN SOLUTION\n# BEGIN STUB\n# END STUB\n# END SOLUTION\n", 2, "do not nest"),
    ("# BEGIN SOLUTION\nx = 1\n# END STUB\n", 3, "closes the SOLUTION block"),
    ("def f():\n    # BEGIN SOLUTION\n    x = 1\n# END SOLUTION\n", 4, "not indented like"),
    ("# BEGIN SOLUTIONS\nx = 1\n", 1, "malformed marker"),
    ("#END  STUBB\n", 1, "malformed marker"),
    ("# STUB raise NotImplementedError\n", 1, "malformed marker"),
    ("# STUB:\n", 1, "needs the code"),
    ("# BEGIN STUB\nx = 1\n# END STUB\n", 2, "must be a comment"),
    ("# BEGIN STUB\n#x = 1\n# END STUB\n", 2, "one space after"),
    ("# BEGIN SOLUTION\n# STUB: pass\n# END SOLUTION\n", 2, "inside the SOLUTION block"),
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", 0, "not valid Python"),
], ids=["unclosed", "unopened", "nested", "wrong-end", "indent", "typo", "typo-end",
        "stub-colon", "empty-stub", "stub-code", "stub-space", "stub-in-solution", "empty-body"])
def test_malformed_markers_are_refused_with_file_and_line(source, line, message):
    with pytest.raises(MarkerError, match=message) as info:
        split_solution(source, "solutions/x/x.py")
    assert str(info.value).startswith(f"solutions/x/x.py:{line}:" if line else
                                      "solutions/x/x.py:")


def test_prose_that_mentions_a_marker_word_is_not_a_marker():
    """Is a comment like '# End of the loop' left alone?"""
    source = "# Begin with the loss\n# STUBS are generated\nx = 1  # END\n"
    assert split_solution(source).stub == source


# -- the public-only grader ---------------------------------------------------------------------
GRADER = dedent('''
    """Grader docstring: mentions hidden things."""

    from __future__ import annotations

    import math
    import os

    import torch

    from torchgrade.checks import check, expect_close

    HINT = "a hint"
    SECRET_SIZES = (3, 5, 7)


    def _shared(n):
        return torch.ones(n) * math.pi


    def _hidden_helper():
        return os.getcwd()


    @check(points=2, kind="value", visibility="public", catches=HINT)
    def test_public(student):
        """Public."""
        expect_close(student.f(_shared(2)).sum(), 2 * math.pi, what="f")


    @check(points=3, kind="value", catches=HINT)
    def test_hidden(student, reference):
        """Hidden."""
        for n in SECRET_SIZES:
            _hidden_helper()
''')


def test_public_grader_keeps_public_checks_and_what_they_use():
    split = split_grader(GRADER, "graders/x/test_x.py", "x")
    assert [c.name for c in split.public] == ["test_public"]
    assert [c.name for c in split.hidden] == ["test_hidden"]
    for kept in ("def test_public", "def _shared", 'HINT = "a hint"', "import math",
                 "import torch", "from torchgrade.checks import check, expect_close"):
        assert kept in split.source
    for dropped in ("test_hidden", "_hidden_helper", "SECRET_SIZES", "import os",
                    "mentions hidden"):
        assert dropped not in split.source
    compile(split.source, "public", "exec")


def test_public_check_calling_a_hidden_check_is_refused():
    source = GRADER.replace("expect_close(student", "test_hidden(student, None)\n    "
                            "expect_close(student")
    with pytest.raises(GraderSplitError, match="'test_hidden', which is a hidden check"):
        split_grader(source, "graders/x/test_x.py")


def test_module_level_code_the_split_cannot_judge_is_refused():
    with pytest.raises(GraderSplitError, match="test_x.py:2: a module-level If"):
        split_grader("import os\nif os.environ:\n    pass\n", "graders/x/test_x.py")


# -- the shipped course -------------------------------------------------------------------------
def test_generated_files_are_up_to_date():
    """Does every generated file match what its source gives now (`author build --check`)?"""
    out_of_date = stale(REPO)
    assert not out_of_date, ("run `torchgrade author build` (edit the sources, not the "
                             "generated files):\n" + "\n".join(out_of_date))


def test_every_marked_assignment_is_in_the_template():
    assignments, _ = marked(REPO)
    assert {a.name for a in assignments} == set(available(REPO))  # none left unconverted
    for a in assignments:
        assert (REPO / TEMPLATE / "assignments" / a.name / f"{a.module}.py").is_file()
        assert (REPO / TEMPLATE / "graders" / a.name / "fixtures" /
                "public.safetensors").is_file()


def test_student_template_has_no_leaks():
    """No solution line, hidden check, unused fixture case or odd file in the template."""
    leaks = scan(REPO / TEMPLATE, REPO)
    assert not leaks, "\n".join(map(str, leaks))


def test_template_graders_hold_exactly_the_public_checks():
    for a in marked(REPO)[0]:
        for grader in a.grader_dir.glob("test_*.py"):
            shipped = REPO / TEMPLATE / "graders" / a.name / grader.name
            full = split_grader(grader.read_text(encoding="utf-8"))
            public = split_grader(shipped.read_text(encoding="utf-8"))
            assert [c.name for c in public.public] == [c.name for c in full.public]
            assert not public.hidden


def test_leak_scanner_finds_planted_leaks(tmp_path):
    """Can the scanner fail? Plant one leak of each kind in a copy of the template."""
    from torchgrade.fixtures import load_cases, save_cases

    tree = tmp_path / "template"
    shutil.copytree(REPO / TEMPLATE, tree)
    reference = REPO / "solutions" / "nt_xent" / "nt_xent.py"
    secret_line = "logits = logits.masked_fill(self_mask, float(\"-inf\"))"
    assert secret_line in reference.read_text(encoding="utf-8")
    stub = tree / "assignments" / "nt_xent" / "nt_xent.py"
    stub.write_text(stub.read_text(encoding="utf-8") + f"    {secret_line}\n", encoding="utf-8")
    stub_lines = len(stub.read_text(encoding="utf-8").splitlines())
    grader = tree / "graders" / "nt_xent" / "test_nt_xent.py"
    grader.write_text(grader.read_text(encoding="utf-8") +
                      "\n\ndef test_orthogonal_closed_form(student):\n    pass\n",
                      encoding="utf-8")
    (tree / "notes.pkl").write_bytes(b"\x80\x04")
    shutil.copy(reference, tree / "assignments" / "nt_xent" / "answer.py")
    shutil.copy(REPO / "graders" / "nt_xent" / "fixture_cases.py", tree / "fixture_cases.py")
    fixtures = tree / "graders" / "nt_xent" / "fixtures" / "public.safetensors"
    cases = load_cases(fixtures)
    cases["hidden_sizes"] = {"n": 33}
    save_cases(fixtures, cases)

    found = {str(leak) for leak in scan(tree, REPO)}
    expected = [
        f"assignments/nt_xent/nt_xent.py:{stub_lines}: solution line "
        "(solutions/nt_xent/nt_xent.py:",
        "graders/nt_xent/test_nt_xent.py:",  # the hidden check's name
        "notes.pkl: file type not allowed",
        "assignments/nt_xent/answer.py: a copy of solutions/nt_xent/nt_xent.py",
        "fixture_cases.py: the fixture builder",
        "graders/nt_xent/fixtures/public.safetensors: fixture case 'hidden_sizes'",
    ]
    for prefix in expected:
        assert any(f.startswith(prefix) for f in found), (prefix, sorted(found))
    assert any("hidden check test_orthogonal_closed_form" in f for f in found)
    assert not any(f.startswith("assignments/nt_xent/README.md") for f in found)


# -- author new + author build in a temporary course ---------------------------------------------
@pytest.fixture(scope="module")
def new_course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("course")
    (root / "graders").mkdir()
    assert cli.main(["--root", str(root), "author", "new", "scale_it"]) == 0
    assert cli.main(["--root", str(root), "author", "build"]) == 0
    return root


def test_author_new_refuses_existing_and_bad_names(new_course, capsys):
    assert cli.main(["--root", str(new_course), "author", "new", "scale_it"]) == 2
    assert "already exists" in capsys.readouterr().err
    for bad in ("9lives", "has-dash", "class", "Upper", "_private"):
        assert cli.main(["--root", str(new_course), "author", "new", bad]) == 2
        assert "cannot name an assignment" in capsys.readouterr().err


def test_build_check_lists_stale_files(new_course, tmp_path, capsys):
    root = tmp_path / "course"
    shutil.copytree(new_course, root)
    assert cli.main(["--root", str(root), "author", "build", "--check"]) == 0
    handout = root / "solutions" / "scale_it" / "handout.md"
    handout.write_text(handout.read_text(encoding="utf-8") + "\nOne more line.\n",
                       encoding="utf-8")
    (root / TEMPLATE / "old.md").write_text("left over\n", encoding="utf-8")
    (root / "examples" / "scale_it" / "stub" / "scale_it.py").unlink()
    assert cli.main(["--root", str(root), "author", "build", "--check"]) == 1
    out = capsys.readouterr().out
    for rel in ("assignments/scale_it/README.md: differs",
                f"{TEMPLATE}/assignments/scale_it/README.md: differs",
                "examples/scale_it/stub/scale_it.py: missing",
                f"{TEMPLATE}/old.md: not generated"):
        assert f"stale: {rel}" in out, out
    assert not (root / "examples" / "scale_it" / "stub" / "scale_it.py").exists()  # no writes
    assert cli.main(["--root", str(root), "author", "build", "--skip-fixtures"]) == 0
    assert stale(root) == []
    assert not (root / TEMPLATE / "old.md").exists()


def test_assignment_without_markers_is_skipped_with_a_note(new_course, tmp_path):
    root = tmp_path / "course"
    shutil.copytree(new_course, root)
    solution = root / "solutions" / "scale_it" / "scale_it.py"
    solution.write_text("def scale(x, factor):\n    return x * factor\n", encoding="utf-8")
    the_plan = plan(root)
    assert the_plan.assignments == ()
    assert any("scale_it: skipped" in n and "no solution markers" in n for n in the_plan.notes)


def test_scaffold_is_leak_free_and_grades_stub_zero_solution_full(new_course):
    """Is the scaffold a runnable example: stub 0, solution full, in the course and in the
    student template (public checks only)?"""
    assert scan(new_course / TEMPLATE, new_course) == []
    course = load("scale_it", new_course)
    opts = Options(sandbox="auto")
    stub = grade_submission(course, new_course / "examples/scale_it/stub/scale_it.py", "stub",
                            opts)
    assert stub.score == 0 and stub.checks
    assert all(c.status in ("failed", "error") for c in stub.checks)
    assert all("NotImplementedError" in c.feedback for c in stub.checks if c.status == "error")
    full = grade_submission(course, new_course / "solutions/scale_it/scale_it.py", "ref", opts)
    assert full.score == full.max_score == 10, [(c.name, c.feedback) for c in full.checks]


def test_leak_scanner_finds_hidden_only_constants_and_decorators(new_course, tmp_path):
    """Module-level constants and strategies that only hidden checks use, and the decorator
    lines of hidden checks, are secrets too; the public checks' constants are not."""
    root = tmp_path / "course"
    shutil.copytree(new_course, root)
    grader = root / "graders" / "scale_it" / "test_scale_it.py"
    shown_line = 'PUBLIC_HINT = "multiply every entry by factor"'
    constant_line = 'SECRET_FACTORS = (-0.75, 3.5, 1e-3)  # the hidden inputs'
    strategy_line = "FACTOR_STRATEGY = st.floats(-8.0, 8.0, allow_nan=False)"
    decorator_line = '@check(points=1, kind="value", catches=f"{PUBLIC_HINT}; hidden factors")'
    imports = "from torchgrade.checks import check, expect_raises, expect_tensor\n"
    source = grader.read_text(encoding="utf-8").replace(
        imports, f"{imports}\n{shown_line}\n{constant_line}\n{strategy_line}\n").replace(
        "import torch\n", "import torch\nfrom hypothesis import strategies as st\n").replace(
        'catches="multiplying by something else")', "catches=PUBLIC_HINT)")
    grader.write_text(f"{source}\n\n{decorator_line}\ndef test_secret_factors(student, "
                      "reference):\n    assert FACTOR_STRATEGY and SECRET_FACTORS\n",
                      encoding="utf-8")
    assert cli.main(["--root", str(root), "author", "build", "--skip-fixtures"]) == 0
    public_grader = root / TEMPLATE / "graders" / "scale_it" / "test_scale_it.py"
    assert shown_line in public_grader.read_text(encoding="utf-8")
    assert scan(root / TEMPLATE, root) == []
    notes = root / TEMPLATE / "assignments" / "scale_it" / "notes.md"
    notes.write_text(f"{constant_line}\n{strategy_line}\n{decorator_line}\n", encoding="utf-8")
    found = {(leak.path, leak.line) for leak in scan(root / TEMPLATE, root)
             if leak.what.startswith("hidden grader line")}
    assert found == {("assignments/scale_it/notes.md", n) for n in (1, 2, 3)}


def test_student_in_the_template_runs_the_public_checks(new_course, tmp_path):
    template = load("scale_it", new_course / TEMPLATE)
    public = Options(visibility="public")
    stub = grade_submission(template, template.stub_file, "you", public)
    assert stub.score == 0 and [c.name for c in stub.checks] == ["test_scale_public"]
    mine = tmp_path / "scale_it.py"
    shutil.copy(new_course / "solutions" / "scale_it" / "scale_it.py", mine)
    passed = grade_submission(template, mine, "you", public)
    assert passed.score == passed.max_score == 4


@pytest.mark.slow
def test_shipped_template_public_checks_pass_the_reference(tmp_path):
    """In the shipped template, does nt_xent's stub fail every public check cleanly and the
    reference (copied elsewhere, as a student's finished file) pass them all?"""
    template = load("nt_xent", REPO / TEMPLATE)
    public = Options(visibility="public")
    stub = grade_submission(template, template.stub_file, "you", public)
    assert stub.score == 0 and stub.checks
    assert all("grader could not evaluate" not in c.feedback for c in stub.checks)
    mine = tmp_path / "nt_xent.py"
    shutil.copy(REPO / "solutions" / "nt_xent" / "nt_xent.py", mine)
    done = grade_submission(template, mine, "you", public)
    assert done.score == done.max_score > 0, [(c.name, c.feedback) for c in done.checks]


@pytest.mark.parametrize("tool", ["build", "new", "measure"])
def test_author_help_teaches_with_examples(tool, capsys):
    with pytest.raises(SystemExit):
        cli.main(["author", tool, "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and f"torchgrade author {tool}" in out
