"""Tests for public fixtures: the safetensors round trip, and the shipped files' freshness.

Public checks run on students' laptops against ``graders/<name>/fixtures/public.safetensors``,
so those files must match what the current reference computes (else a correct submission fails
a public check) and must hold nothing the public checks do not use (else hidden material
ships to students).
"""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from torchgrade.assignment import load
from torchgrade.fixtures import build_cases, load_cases, save_cases

REPO = Path(__file__).resolve().parents[1]
TOY_ROOT = Path(__file__).resolve().parent / "toy_course"


def sample_cases() -> dict[str, dict[str, Any]]:
    g = torch.Generator().manual_seed(0)
    return {
        "floats": {
            "f32": torch.randn(3, 4, generator=g),
            "f64": torch.randn(2, dtype=torch.float64, generator=g),
            "f16": torch.randn(5, generator=g).half(),
            "bf16": torch.randn(5, generator=g).bfloat16(),
            "scalar": torch.tensor(2.5),
            "empty": torch.zeros(0, 3),
            "transposed": torch.arange(12.0).reshape(3, 4).t(),
            "special": torch.tensor([float("nan"), float("inf"), -0.0]),
        },
        "ints": {"i64": torch.arange(6).reshape(2, 3), "u8": torch.arange(4, dtype=torch.uint8),
                 "mask": torch.tensor([True, False])},
        "scalars": {"t": 0.5, "n": 3, "big": 2**60, "name": "héllo", "flag": True,
                    "none": None, "list": [1, 2.5, "x"], "nested": {"a": [1, {"b": None}]}},
        "mixed": {"x": torch.ones(2), "temperature": 0.2},
        "empty_case": {},
    }


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bytes of ``t``, so NaNs and -0.0 compare exactly."""
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def assert_same_cases(got: dict, want: dict, advice: str = "") -> None:
    assert sorted(got) == sorted(want), f"case names differ. {advice}"
    for case in want:
        assert sorted(got[case]) == sorted(want[case]), f"fields of case {case!r} differ. {advice}"
        for key, w in want[case].items():
            g = got[case][key]
            where = f"{case}/{key}"
            if isinstance(w, torch.Tensor):
                assert isinstance(g, torch.Tensor), f"{where} is not a tensor. {advice}"
                assert g.dtype == w.dtype and g.shape == w.shape, f"{where}: dtype/shape. {advice}"
                assert torch.equal(_bits(g), _bits(w)), f"{where} differs. {advice}"
            else:
                assert type(g) is type(w) and g == w, f"{where}: {g!r} != {w!r}. {advice}"


# -- save_cases / load_cases --------------------------------------------------------------------
def test_cases_round_trip_exactly(tmp_path):
    cases = sample_cases()
    path = save_cases(tmp_path / "fx" / "public.safetensors", cases)
    assert path == tmp_path / "fx" / "public.safetensors"
    got = load_cases(path)
    assert_same_cases(got, cases)
    assert all(type(t) is torch.Tensor for c in got.values() for t in c.values()
               if isinstance(t, torch.Tensor))


def test_saving_twice_gives_identical_bytes_and_no_leftovers(tmp_path):
    path = tmp_path / "public.safetensors"
    save_cases(path, sample_cases())
    first = path.read_bytes()
    save_cases(path, dict(reversed(list(sample_cases().items()))))
    assert path.read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["public.safetensors"]


def test_saved_tensors_do_not_keep_autograd_or_views(tmp_path):
    x = torch.randn(3, requires_grad=True)
    save_cases(tmp_path / "p.safetensors", {"c": {"y": x * 2}})
    got = load_cases(tmp_path / "p.safetensors")["c"]["y"]
    assert not got.requires_grad and torch.equal(got, (x * 2).detach())


@pytest.mark.parametrize("name", ["a/b", "/lead", "trail/"])
def test_case_names_with_a_slash_are_refused(tmp_path, name):
    path = tmp_path / "public.safetensors"
    with pytest.raises(ValueError, match="'/'"):
        save_cases(path, {name: {"x": torch.ones(1)}})
    assert not path.exists()


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", 1 + 2j],
                         ids=lambda v: type(v).__name__)
def test_values_that_are_neither_tensors_nor_json_are_refused(tmp_path, value):
    path = tmp_path / "public.safetensors"
    with pytest.raises(TypeError):
        save_cases(path, {"c": {"v": value}})
    assert not path.exists()


def test_loading_a_missing_file_names_it(tmp_path):
    path = tmp_path / "graders" / "x" / "fixtures" / "public.safetensors"
    with pytest.raises(FileNotFoundError, match="public.safetensors"):
        load_cases(path)


class CreatesFile:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_loading_a_pickle_fails_without_running_it(tmp_path):
    """A fixtures file replaced by a pickle must not run code when a student loads it."""
    canary = tmp_path / "canary"
    path = tmp_path / "public.safetensors"
    path.write_bytes(pickle.dumps({"c": CreatesFile(str(canary))}))
    with pytest.raises(Exception):  # noqa: B017 - whatever safetensors raises, it must raise
        load_cases(path)
    assert not canary.exists()


def test_the_same_tensor_may_appear_in_two_fields_or_cases(tmp_path):
    z = torch.randn(3, 4)
    cases = {"equal_views": {"z_i": z, "z_j": z, "row": z[1]}, "again": {"z": z}}
    path = save_cases(tmp_path / "public.safetensors", cases)
    got = load_cases(path)
    assert torch.equal(got["equal_views"]["z_j"], z) and torch.equal(got["again"]["z"], z)
    assert torch.equal(got["equal_views"]["row"], z[1])


# -- the shipped public fixtures ----------------------------------------------------------------
def shipped() -> list[Any]:
    params = [pytest.param("toy", TOY_ROOT, id="toy")]
    for builder in sorted((REPO / "graders").glob("*/fixture_cases.py")):
        params.append(pytest.param(builder.parent.name, REPO, id=builder.parent.name))
    return params


@pytest.mark.parametrize(("name", "root"), shipped())
def test_shipped_public_fixtures_are_up_to_date(name, root):
    """Does the fixtures file match what the current reference computes, bit for bit?"""
    assignment = load(name, root)
    path = assignment.fixtures_dir / "public.safetensors"
    advice = (f"{path} is out of date with the reference: run `torchgrade author fixtures "
              f"{name}`" + (f" --root {root}" if root != REPO else "") + " and commit the file")
    assert path.is_file(), advice
    with torch.random.fork_rng():  # builders may seed the global generator
        rebuilt = build_cases(assignment)
    assert_same_cases(load_cases(path), rebuilt, advice)


def public_check_strings(grader_dir: Path) -> set[str]:
    """Every string literal inside the checks marked ``visibility="public"``."""
    strings: set[str] = set()
    for path in sorted(grader_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and _is_public_check(node):
                strings |= {n.value for n in ast.walk(node)
                            if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return strings


def _is_public_check(func: ast.FunctionDef) -> bool:
    for dec in func.decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, "id", None) == "check":
            for kw in dec.keywords:
                if kw.arg == "visibility" and isinstance(kw.value, ast.Constant):
                    return kw.value.value == "public"
    return False


@pytest.mark.parametrize(("name", "root"), shipped())
def test_shipped_public_fixtures_hold_only_cases_the_public_checks_use(name, root):
    """Would a case no public check needs (hidden inputs, reference outputs) ship to students?"""
    assignment = load(name, root)
    path = assignment.fixtures_dir / "public.safetensors"
    used = public_check_strings(assignment.grader_dir)
    assert used, f"{name} has no public checks"
    cases = load_cases(path)
    unused = sorted(set(cases) - used)
    assert not unused, (f"{path} holds case(s) {unused} that no public check of {name} names: "
                        "remove them from fixture_cases.py (hidden checks use the reference)")


def test_fixture_metadata_is_plain_json(tmp_path):
    """The scalars live as JSON in the safetensors header: nothing that needs code to read."""
    from safetensors import safe_open

    path = save_cases(tmp_path / "p.safetensors", {"c": {"t": 0.5, "x": torch.ones(1)}})
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    assert json.loads(meta["torchgrade.cases"]) == {"c": {"t": 0.5}}


def test_freshness_check_notices_a_changed_reference(tmp_path):
    """The check above must fail, with its advice, once the reference changes."""
    import shutil

    shutil.copytree(TOY_ROOT, tmp_path / "course")
    solution = tmp_path / "course" / "solutions" / "toy" / "toy.py"
    solution.write_text(solution.read_text(encoding="utf-8").replace(
        "return x * s", "return x * s + 1e-6"), encoding="utf-8")
    assignment = load("toy", tmp_path / "course")
    with pytest.raises(AssertionError, match="scale/expected differs. run `torchgrade"):
        assert_same_cases(load_cases(assignment.fixtures_dir / "public.safetensors"),
                          build_cases(assignment), "run `torchgrade author fixtures toy`")
