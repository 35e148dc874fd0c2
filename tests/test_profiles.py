"""Tests of the grading profiles (torchgrade.profiles) and of the rubrics' GPU tables.

The gpu_smoke profile runs the GPU checks on the CPU with ``[profiles.gpu]`` overlaid by
``[profiles.gpu_smoke]``; these tests pin the overlay and hold every shipped rubric to it: a
smoke table only shrinks what the gpu table has, sets a small CPU budget, and names a wrong
example that exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from torchgrade import profiles
from torchgrade.assignment import available, load
from torchgrade.budgets import training_checks
from torchgrade.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = {
    "cpu": {"seed": 1, "n": 100},
    "gpu": {"seed": 2, "n": 10_000, "min_accuracy": 0.9, "threads": 2,
            "cifar10": {"n": 50_000, "epochs": 200}},
    "gpu_smoke": {"n": 64, "cpu_budget_s": 30, "cifar10": {"epochs": 1}},
}


def test_gpu_smoke_selects_the_gpu_checks_and_runs_them_on_the_cpu():
    """Does gpu_smoke select the checks declared for gpu, on the CPU, and only gpu use CUDA?"""
    assert [profiles.selects(p) for p in profiles.PROFILES] == ["cpu", "gpu", "gpu"]
    assert [profiles.device(p) for p in profiles.PROFILES] == ["cpu", "cuda", "cpu"]
    assert [profiles.uses_cuda(p) for p in profiles.PROFILES] == [False, True, False]
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.selects("tpu")


def test_smoke_table_overlays_the_gpu_table_key_by_key():
    """Is [profiles.gpu_smoke] laid over [profiles.gpu], nested tables key by key, without
    changing the rubric's own tables?"""
    smoke = profiles.table(BUDGETS, "gpu_smoke")
    assert smoke == {"seed": 2, "n": 64, "min_accuracy": 0.9, "threads": 2, "cpu_budget_s": 30,
                     "cifar10": {"n": 50_000, "epochs": 1}}
    assert profiles.table(BUDGETS, "gpu")["cifar10"] == {"n": 50_000, "epochs": 200}
    assert profiles.table(BUDGETS, "cpu") == {"seed": 1, "n": 100}
    smoke["cifar10"]["n"] = 1
    assert BUDGETS["gpu"]["cifar10"]["n"] == 50_000


def test_budget_override_applies_to_the_profiles_own_checks_only():
    """Does cpu_budget_s replace the timeout of a GPU check only, never of a shared one?"""
    assert profiles.own_checks("gpu_smoke", ("gpu",))
    assert profiles.own_checks("gpu", ("gpu",))
    assert not profiles.own_checks("gpu_smoke", ("cpu", "gpu"))
    assert not profiles.own_checks("cpu", ("cpu",))


def test_cli_takes_the_smoke_profile():
    """Can grade and check be asked for --profile gpu_smoke?"""
    args = _parser().parse_args(["grade", "nt_xent", "subs", "--out", "r", "--profile",
                                 "gpu_smoke"])
    assert args.profile == "gpu_smoke"


GPU_ASSIGNMENTS = [n for n in available(ROOT)
                   if any(c.profiles == ("gpu",) for c in training_checks(load(n, ROOT)))]


def test_every_assignment_has_a_gpu_check():
    """Do all seven assignments have a check for the gpu profile alone?"""
    assert len(GPU_ASSIGNMENTS) == 7


@pytest.mark.parametrize("name", GPU_ASSIGNMENTS)
def test_rubric_has_a_smoke_table_that_only_shrinks(name):
    """Does the rubric's [profiles.gpu_smoke] name only keys of [profiles.gpu] (plus its CPU
    budget), set a small budget, and name a wrong example that exists?"""
    a = load(name, ROOT)
    gpu, smoke = a.budgets["gpu"], a.budgets.get("gpu_smoke")
    assert smoke is not None, f"{name}: no [profiles.gpu_smoke]"
    assert 0 < smoke["cpu_budget_s"] <= 120
    for key, value in smoke.items():
        if key == profiles.BUDGET_KEY:
            continue
        assert key in gpu, f"{name}: [profiles.gpu_smoke] {key} is not in [profiles.gpu]"
        if isinstance(value, dict):
            assert set(value) <= set(gpu[key]) | set(gpu), f"{name}: {key}"
    example = gpu["check_example"]
    assert (ROOT / "examples" / name / example / f"{a.module}.py").is_file()
    assert a.threads("gpu_smoke") == 1
