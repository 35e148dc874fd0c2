"""Tests of ``torchgrade gpu-check`` and of every GPU check in its smoke form (gpu_smoke).

CI has no GPU, so the GPU checks run here as ``make gpu-check`` runs them on a GPU machine,
but on the CPU at the rubrics' ``[profiles.gpu_smoke]`` sizes: the same code path, data
loading and threshold logic. One run of ``torchgrade gpu-check --smoke`` grades, for each of
the seven assignments, the reference (it must pass its GPU check), the stub (it must score 0
on it) and the rubric's wrong example (it must fail it): 21 gradings, about 80 s on 2 cores.
A GPU check that breaks fails here the day it breaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from torchgrade.gpu_check import shift_seeds

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = {"nt_xent", "vit_attention", "mae_masking", "ddpm_sampler", "wgan_gp",
               "clip_search", "video_action"}


def _gpu_check(*args: str, env: dict[str, str] | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torchgrade", "gpu-check", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def test_without_cuda_it_says_so_and_grades_nothing(tmp_path):
    """On a machine without CUDA, does gpu-check say so plainly, exit 2 without a traceback,
    and write nothing?"""
    out = tmp_path / "gpu.json"
    done = _gpu_check("--out", str(out), env={"CUDA_VISIBLE_DEVICES": ""}, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "no CUDA here" in done.stderr and "--smoke" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not out.exists()


def test_seed_keys_of_the_gpu_tables_are_shifted():
    """Does calibration shift every seed of the gpu tables (gpu_smoke and nested ones too),
    and nothing of the cpu table?"""
    rubric = ("[profiles.cpu]\nseed = 1\n\n[profiles.gpu]\nseed = 10  # init\ndata_seed = 7\n"
              "seeds = 3\n\n[profiles.gpu.mnist]\nheldout_seed = 5\n\n"
              "[profiles.gpu_smoke]\nseed = 2\n\n[audit]\nseed = 4\n")
    assert shift_seeds(rubric, 100) == (
        "[profiles.cpu]\nseed = 1\n\n[profiles.gpu]\nseed = 110  # init\ndata_seed = 107\n"
        "seeds = 3\n\n[profiles.gpu.mnist]\nheldout_seed = 105\n\n"
        "[profiles.gpu_smoke]\nseed = 102\n\n[audit]\nseed = 4\n")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("gpu-check") / "gpu_smoke.json"
    done = _gpu_check("--smoke", "--jobs", "2", "--out", str(out))
    data = json.loads(out.read_text()) if out.is_file() else {}
    return done, data


def _rows(data: dict, role: str) -> dict[str, dict]:
    return {r["assignment"]: r for r in data["rows"] if r["role"] == role}


@pytest.mark.slow
def test_smoke_run_holds_every_verdict(smoke):
    """Does `gpu-check --smoke` grade all seven assignments under gpu_smoke, print each check
    with its metric and threshold, and find every verdict holding?"""
    done, data = smoke
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert data["schema"] == "torchgrade.gpu_check/1" and data["profile"] == "gpu_smoke"
    assert "gpu_smoke" in data["environment"]["device"]
    assert {r["assignment"] for r in data["rows"]} == ASSIGNMENTS
    assert "all verdicts hold" in done.stdout and "threshold >=" in done.stdout


@pytest.mark.slow
def test_every_reference_passes_its_gpu_check_in_smoke_form(smoke):
    """Does each reference pass its GPU check, with every measured metric on the right side
    of its threshold and within the small smoke budget?"""
    rows = _rows(smoke[1], "reference")
    assert set(rows) == ASSIGNMENTS
    for name, row in rows.items():
        assert row["status"] == "passed", (name, row["feedback"])
        assert row["measured"], name
        for m in row["measured"]:
            ok = m["value"] >= m["threshold"] if m["better"] == "higher" else \
                m["value"] <= m["threshold"]
            assert ok, (name, m)
        assert 0 < row["cpu_budget_s"] <= 120 and row["cpu_s"] < row["cpu_budget_s"] / 2, name


@pytest.mark.slow
def test_every_stub_scores_zero_on_its_gpu_check(smoke):
    """Does each stub get 0 points on its GPU check, failing it cleanly (its own
    NotImplementedError, not a grader crash)?"""
    rows = _rows(smoke[1], "stub")
    assert set(rows) == ASSIGNMENTS
    for name, row in rows.items():
        assert row["status"] in ("failed", "error") and row["points"] == 0, name
        assert "could not evaluate" not in row["feedback"], (name, row["feedback"])


@pytest.mark.slow
def test_each_wrong_example_fails_its_gpu_check(smoke):
    """Does each rubric's wrong example (check_example) lose its GPU check in smoke form?"""
    rows = _rows(smoke[1], "wrong")
    assert set(rows) == ASSIGNMENTS
    for name, row in rows.items():
        assert row["status"] in ("failed", "error") and row["verdict"] == "ok", (name, row)
