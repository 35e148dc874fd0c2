"""Calibrate the `video_action` CPU training check: budget and threshold.

Why it exists: the grader's training check trains the submission's
``TemporalActionClassifier`` with its ``train_action_classifier`` on ``n_train`` freshly
rendered clips (``torchgrade.course.video.clip_tensors``: 8 motion-only actions, 8 frames of
32x32) and asks for a held-out accuracy of at least ``min_accuracy`` on ``n_test`` other fresh
clips. The threshold is justified here by measuring the reference across seeds (it must pass
with margin) and the ``frame_average`` example (a classifier that averages the frames first,
losing the direction of motion: it must fail). The numbers in
``benchmarks/video_action_calibration.md`` come from this script.

Each run is exactly the grader's ``train_and_score`` through a ``LocalStudent`` over the
submission module (no sandbox, the same calls), with the rubric's cpu budget except ``seed``,
which takes the run's seed. One CPU thread; the time is the process's CPU time of training and
scoring (the wall time on a shared machine says more about the neighbours).

    PYTHONPATH=src python benchmarks/video_action_calibration.py --seeds 2026 2027 2028 2029 2030
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"reference": ROOT / "solutions/video_action/video_action.py",
            "frame_average": ROOT / "examples/video_action/frame_average/video_action.py"}


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2026, 2027, 2028, 2029, 2030])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=None, help="override the rubric's")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from torchgrade.proxy import LocalStudent

    grader = load(ROOT / "graders/video_action/test_video_action.py", "video_action_grader")
    rubric = tomllib.loads((ROOT / "graders/video_action/rubric.toml").read_text())
    budget = dict(rubric["profiles"]["cpu"])
    if args.epochs is not None:
        budget["epochs"] = args.epochs
    print(f"budget: {budget}")
    print("| submission | seed | held-out accuracy | CPU s |")
    print("|---|---|---|---|")
    for name in args.variants:
        student = LocalStudent(load(VARIANTS[name], f"video_action_{name}"))
        for seed in args.seeds:
            start = time.process_time()
            scores = grader.train_and_score(student, {**budget, "seed": seed})
            spent = time.process_time() - start
            print(f"| {name} | {seed} | {scores['accuracy']:.3f} | {spent:.1f} |", flush=True)


if __name__ == "__main__":
    main()
