"""Tests for rubric loading: the real rubrics parse, broken ones fail with a clear message.

Broken rubrics are written into a throw-away course directory (``tmp_path/graders/x``). The
last tests ask whether each grader's checks add up to its rubric's ``total_points``, read from
the ``@check`` markers without grading anything.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

from torchgrade.assignment import Assignment, AssignmentError, available, find_root, load
from torchgrade.checks import MARKER
from torchgrade.isolation import Limits

REPO = Path(__file__).resolve().parents[1]
TOY_ROOT = Path(__file__).resolve().parent / "toy_course"

VALID_RUBRIC = """\
[assignment]
title = "X"
module = "x"
version = "x-1"
total_points = 10
"""


@pytest.fixture(autouse=True)
def _no_root_from_the_environment(monkeypatch):
    monkeypatch.delenv("TORCHGRADE_ROOT", raising=False)


def write_rubric(root: Path, text: str, name: str = "x") -> Path:
    path = root / "graders" / name / "rubric.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- the real rubrics ---------------------------------------------------------------------------
def test_toy_rubric_is_parsed_field_by_field():
    a = load("toy", TOY_ROOT)
    assert isinstance(a, Assignment)
    assert (a.name, a.title, a.module, a.version) == ("toy", "Toy: scale a tensor", "toy", "toy-1")
    assert a.total_points == 10.0 and type(a.total_points) is float
    assert a.root == TOY_ROOT.resolve()
    assert (a.check_timeout_s, a.import_timeout_s, a.submission_timeout_s) == (8.0, 30.0, 240.0)
    assert a.limits == Limits(memory_mb=6144, nproc=128, fsize_mb=16, tmpfs_mb=64)
    assert a.limits.cpu_s == Limits().cpu_s  # not in the rubric: the default
    assert a.budgets == {}
    assert a.grader_dir == TOY_ROOT.resolve() / "graders" / "toy"
    assert a.solution_file.is_file() and a.stub_file.is_file()
    assert (a.fixtures_dir / "public.safetensors").is_file()


def test_nt_xent_rubric_is_parsed_as_written():
    a = load("nt_xent", REPO)
    raw = tomllib.loads((REPO / "graders" / "nt_xent" / "rubric.toml").read_text("utf-8"))
    section, limits = raw["assignment"], raw.get("limits", {})
    assert a.name == "nt_xent" and a.module == section.get("module", "nt_xent") == "nt_xent"
    assert a.title == section["title"] and a.version == section["version"]
    assert a.total_points == float(section["total_points"]) > 0
    assert a.check_timeout_s == float(limits.get("check_timeout_s", 30.0))
    assert a.import_timeout_s == float(limits.get("import_timeout_s", 60.0))
    assert a.submission_timeout_s == float(limits.get("submission_timeout_s", 900.0))
    for field in dataclasses.fields(Limits):
        want = limits.get(field.name, field.default)
        assert getattr(a.limits, field.name) == want, field.name
    assert a.budgets == {k: v for k, v in raw.get("profiles", {}).items()}
    assert a.root == REPO
    assert a.grader_dir == REPO / "graders" / "nt_xent" and a.grader_dir.is_dir()
    assert a.solution_file == REPO / "solutions" / "nt_xent" / "nt_xent.py"
    assert a.stub_file == REPO / "assignments" / "nt_xent" / "nt_xent.py"


def test_module_defaults_to_the_assignment_name(tmp_path):
    write_rubric(tmp_path, '[assignment]\nversion = "1"\ntotal_points = 3.5\n', name="hw")
    a = load("hw", tmp_path)
    assert a.module == "hw" and a.title == "hw" and a.total_points == 3.5


def test_available_lists_only_folders_with_a_rubric(tmp_path):
    write_rubric(tmp_path, VALID_RUBRIC, "b")
    write_rubric(tmp_path, VALID_RUBRIC, "a")
    (tmp_path / "graders" / "no_rubric").mkdir()
    (tmp_path / "graders" / "file.toml").write_text("", encoding="utf-8")
    assert available(tmp_path) == ["a", "b"]
    assert available(tmp_path / "nowhere") == []


# -- broken rubrics -----------------------------------------------------------------------------
def test_unknown_assignment_names_itself_and_lists_the_known_ones(tmp_path):
    write_rubric(tmp_path, VALID_RUBRIC, "alpha")
    write_rubric(tmp_path, VALID_RUBRIC, "beta")
    with pytest.raises(AssignmentError) as info:
        load("gamma", tmp_path)
    message = str(info.value)
    assert "'gamma'" in message and "alpha, beta" in message


def test_unknown_assignment_in_the_real_course_lists_nt_xent():
    with pytest.raises(AssignmentError, match="nt_xent"):
        load("nt_xnet", REPO)


def test_unknown_assignment_in_an_empty_course_says_none_are_known(tmp_path):
    (tmp_path / "graders").mkdir()
    with pytest.raises(AssignmentError, match="known assignments: none"):
        load("x", tmp_path)


def test_invalid_toml_names_the_file(tmp_path):
    path = write_rubric(tmp_path, "[assignment\ntitle = ")
    with pytest.raises(AssignmentError) as info:
        load("x", tmp_path)
    assert str(path) in str(info.value) and "invalid TOML" in str(info.value)


@pytest.mark.parametrize("text", [
    "", "title = 'X'\n", "assignment = 3\n", "[assignments]\nversion = '1'\n",
], ids=["empty", "top-level-keys", "not-a-table", "misspelt"])
def test_missing_assignment_table_is_reported(tmp_path, text):
    path = write_rubric(tmp_path, text)
    with pytest.raises(AssignmentError) as info:
        load("x", tmp_path)
    assert "[assignment]" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("value", ["0", "-5", "'ten'", "true", "[10]", "-0.5", "-inf"])
def test_non_positive_total_points_is_reported(tmp_path, value):
    write_rubric(tmp_path, VALID_RUBRIC.replace("total_points = 10", f"total_points = {value}"))
    with pytest.raises(AssignmentError, match="total_points must be a positive number"):
        load("x", tmp_path)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_total_points_is_reported(tmp_path, value):
    write_rubric(tmp_path, VALID_RUBRIC.replace("total_points = 10", f"total_points = {value}"))
    with pytest.raises(AssignmentError, match="total_points"):
        load("x", tmp_path)


def test_missing_total_points_is_reported(tmp_path):
    write_rubric(tmp_path, VALID_RUBRIC.replace("total_points = 10\n", ""))
    with pytest.raises(AssignmentError, match="total_points"):
        load("x", tmp_path)


@pytest.mark.parametrize("line", ['version = ""', "version = 3"])
def test_bad_version_is_reported(tmp_path, line):
    write_rubric(tmp_path, VALID_RUBRIC.replace('version = "x-1"', line))
    with pytest.raises(AssignmentError, match="version must be a non-empty string"):
        load("x", tmp_path)


def test_unknown_limits_keys_are_named(tmp_path):
    write_rubric(tmp_path, VALID_RUBRIC + "[limits]\nmemroy_mb = 4096\ncheck_timeout = 5\n"
                 "nproc = 64\n")
    with pytest.raises(AssignmentError) as info:
        load("x", tmp_path)
    assert "unknown [limits] keys" in str(info.value)
    assert "memroy_mb" in str(info.value) and "check_timeout" in str(info.value)
    assert "nproc" not in str(info.value)


@pytest.mark.parametrize("line", ["memory_mb = 0", "nproc = -1", "check_timeout_s = 0",
                                  "cpu_s = 'lots'", "fsize_mb = true"])
def test_non_positive_limits_are_reported(tmp_path, line):
    key = line.split()[0]
    write_rubric(tmp_path, VALID_RUBRIC + f"[limits]\n{line}\n")
    with pytest.raises(AssignmentError, match=f"{key} must be a (positive|whole) number"):
        load("x", tmp_path)


def test_limits_must_be_a_table(tmp_path):
    write_rubric(tmp_path, "limits = 3\n" + VALID_RUBRIC)
    with pytest.raises(AssignmentError, match=r"\[limits\]"):
        load("x", tmp_path)


def test_fractional_worker_limit_is_not_truncated_to_zero(tmp_path):
    write_rubric(tmp_path, VALID_RUBRIC + "[limits]\nmemory_mb = 0.5\n")
    try:
        a = load("x", tmp_path)
    except AssignmentError:
        return  # refusing it is fine too
    assert a.limits.memory_mb > 0


# -- finding the course directory ---------------------------------------------------------------
def test_find_root_honours_torchgrade_root(tmp_path, monkeypatch):
    write_rubric(tmp_path / "elsewhere", VALID_RUBRIC)
    monkeypatch.setenv("TORCHGRADE_ROOT", str(tmp_path / "course"))
    # the variable wins over a start folder that has graders/ of its own
    assert find_root(tmp_path / "elsewhere") == (tmp_path / "course").resolve()


def test_load_without_root_uses_torchgrade_root(monkeypatch):
    monkeypatch.setenv("TORCHGRADE_ROOT", str(TOY_ROOT))
    a = load("toy")
    assert a.root == TOY_ROOT.resolve() and a.version == "toy-1"


def test_find_root_walks_up_from_a_sub_directory(tmp_path):
    (tmp_path / "graders").mkdir()
    deep = tmp_path / "assignments" / "x" / "notebooks"
    deep.mkdir(parents=True)
    assert find_root(deep) == tmp_path.resolve()
    assert find_root(tmp_path) == tmp_path.resolve()


def test_find_root_starts_from_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "graders").mkdir()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert find_root() == tmp_path.resolve()


def test_find_root_prefers_the_nearest_course(tmp_path):
    (tmp_path / "graders").mkdir()
    inner = tmp_path / "inner"
    (inner / "graders").mkdir(parents=True)
    (inner / "deeper").mkdir()
    assert find_root(inner / "deeper") == inner.resolve()


def test_find_root_falls_back_to_this_checkout(tmp_path):
    lonely = tmp_path / "no" / "course" / "here"
    lonely.mkdir(parents=True)
    assert not any((p / "graders").is_dir() for p in (lonely, *lonely.parents))
    assert find_root(lonely) == REPO


# -- points on the checks add up to the rubric --------------------------------------------------
def import_grader(grader_dir: Path):
    files = sorted(grader_dir.glob("test_*.py"))
    assert files, f"{grader_dir} has no test_*.py grader"
    modules = []
    for path in files:
        name = f"_points_{grader_dir.name}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            with warnings.catch_warnings():
                # the torchgrade_check marker is registered by the grading plugin, not here
                warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
                spec.loader.exec_module(module)
        finally:
            sys.modules.pop(name, None)
        modules.append(module)
    return modules


def cpu_points(grader_dir: Path) -> dict[str, float]:
    """Points per collected check in the cpu profile, read from the @check markers."""
    points: dict[str, float] = {}
    for module in import_grader(grader_dir):
        for name, func in vars(module).items():
            if not (name.startswith("test_") and callable(func)):
                continue
            marks = getattr(func, "pytestmark", [])
            checks = [m for m in marks if m.name == MARKER]
            assert len(checks) == 1, f"{name} must carry exactly one @check"
            meta = checks[0].kwargs
            if "cpu" not in meta["profiles"]:
                continue
            sizes = [len(m.args[1]) for m in marks if m.name == "parametrize"]
            cases = list(itertools.product(*(range(n) for n in sizes)))
            points[name] = meta["points"] * len(cases)
    return points


GRADERS = [pytest.param("toy", TOY_ROOT, id="toy")] + [
    pytest.param(path.parent.name, REPO, id=path.parent.name)
    for path in sorted((REPO / "graders").glob("*/rubric.toml"))
]


@pytest.mark.parametrize(("name", "root"), GRADERS)
def test_cpu_checks_add_up_to_total_points(name, root):
    """Would a check lost by accident (or one still to be written) be noticed?"""
    a = load(name, root)
    points = cpu_points(a.grader_dir)
    assert points, f"{name} has no cpu checks"
    total = sum(points.values())
    assert total == pytest.approx(a.total_points), (
        f"{name}: the cpu checks add up to {total:g}, the rubric says total_points = "
        f"{a.total_points:g}: {points}")


def test_points_counting_sees_parametrized_checks_once_per_case():
    points = cpu_points(REPO / "graders" / "nt_xent")
    assert points["test_half_precision_inputs"] == 2 * 2.5
    assert points["test_loss_matches_reference_public"] == 9
