"""Calibrate the `vit_attention` CPU training check: budget and thresholds.

Why it exists: the grader's training check trains a small ViT with the submission's
``train_vit`` on synthetic "find the object" images and asks for both a held-out accuracy and a
rollout whose arg-max patch is the object's. Its settings must be justified by measuring the
reference on several seeds, and by measuring wrong variants that the check must fail. This
script does that and prints a Markdown table (the numbers in
``benchmarks/vit_attention_calibration.md`` come from it).

Per seed ``s``, exactly as the grader's check does it: train images ``make_find_object(n_train,
seed=s)``, test images ``make_find_object(n_test, seed=s + 1)``; ``torch.manual_seed(s)`` before
building the model and ``torch.Generator().manual_seed(s)`` for ``train_vit``. One CPU thread;
training time is reported as the process's CPU time (the better measure on a shared machine)
and as wall time.

Variants: ``reference``; ``untrained`` (train_vit returns the model unchanged); on the trained
reference model, ``rollout_uniform`` (a rollout that ignores the attention), ``last_layer_cls``
(the last layer's mean CLS map instead of the rollout), ``rollout_wrong_order`` (A_1 ... A_L)
and ``rollout_no_residual`` (no (W + I) / 2), which show how much the rollout's details move the
hit rate on this task.

    PYTHONPATH=src python benchmarks/vit_attention_calibration.py --seeds 0 1 2 3 4 1234
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType

import torch

from torchgrade.course.find_object import make_find_object

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "solutions" / "vit_attention" / "vit_attention.py"
RUBRIC = ROOT / "graders" / "vit_attention" / "rubric.toml"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def rollout_variant(ref: ModuleType, atts: list[torch.Tensor], kind: str) -> torch.Tensor:
    """[B, gh * gw] maps of the broken rollouts (and the reference's)."""
    if kind == "reference":
        return ref.attention_rollout(atts).flatten(1)
    if kind == "rollout_uniform":
        return torch.full_like(atts[0][:, 0, 0, 1:], 1.0)
    if kind == "last_layer_cls":
        return atts[-1].mean(1)[:, 0, 1:]
    n = atts[0].shape[-1]
    eye = torch.eye(n)
    r = eye.expand(atts[0].shape[0], n, n)
    for attn in atts:
        w = attn.mean(1)
        a = w if kind == "rollout_no_residual" else (w + eye) / 2
        a = a / a.sum(-1, keepdim=True)
        r = r @ a if kind == "rollout_wrong_order" else a @ r
    return r[:, 0, 1:]


ROLLOUTS = ("reference", "rollout_uniform", "last_layer_cls", "rollout_wrong_order",
            "rollout_no_residual")


def run_seed(ref: ModuleType, budget: dict, seed: int) -> dict[str, tuple[float, float]]:
    """{variant: (accuracy, hit rate)} and the reference's training times."""
    img, patch, classes = budget["img_size"], budget["patch_size"], budget["n_classes"]
    train = make_find_object(budget["n_train"], img_size=img, patch_size=patch,
                             n_classes=classes, seed=seed)
    test = make_find_object(budget["n_test"], img_size=img, patch_size=patch,
                            n_classes=classes, seed=seed + 1)
    out: dict[str, tuple[float, float]] = {}
    for trained in (False, True):
        torch.manual_seed(seed)
        model = ref.VisionTransformer(img, patch, 3, classes, budget["embed_dim"],
                                      budget["depth"], budget["num_heads"],
                                      mlp_ratio=budget["mlp_ratio"])
        if trained:
            cpu, wall = time.process_time(), time.perf_counter()
            ref.train_vit(model, train.images, train.labels, epochs=budget["epochs"],
                          batch_size=budget["batch_size"], lr=budget["lr"],
                          generator=torch.Generator().manual_seed(seed))
            out["time"] = (time.process_time() - cpu, time.perf_counter() - wall)
        model.eval()
        with torch.no_grad():
            logits, atts = model(test.images, return_attention=True)
        acc = float((logits.argmax(1) == test.labels).double().mean())
        for kind in ROLLOUTS if trained else ("reference",):
            maps = rollout_variant(ref, atts, kind)
            hits = float((maps.argmax(1) == test.positions).double().mean())
            out[kind if trained else "untrained"] = (acc, hits)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 1234])
    ns = parser.parse_args()
    torch.set_num_threads(1)
    ref = _load(REFERENCE, "vit_attention_reference")
    budget = tomllib.loads(RUBRIC.read_text())["profiles"]["cpu"]
    floor, min_hits = budget["min_accuracy"], budget["min_hit_rate"]
    variants = ("untrained", *ROLLOUTS)
    print("| seed | train CPU s | train wall s | " + " | ".join(variants) + " |")
    print("|---" * (3 + len(variants)) + "|")
    results = []
    for seed in ns.seeds:
        r = run_seed(ref, budget, seed)
        results.append(r)
        cells = [f"{r[v][0]:.3f} / {r[v][1]:.3f}" + (" ✓" if r[v][0] >= floor and
                                                      r[v][1] >= min_hits else " ✗")
                 for v in variants]
        print(f"| {seed} | {r['time'][0]:.1f} | {r['time'][1]:.1f} | " + " | ".join(cells)
              + " |", flush=True)
    print()
    print("| variant | accuracy min / mean | hit rate min / mean | passes |")
    print("|---|---|---|---|")
    for v in variants:
        accs = [r[v][0] for r in results]
        hits = [r[v][1] for r in results]
        passed = sum(a >= floor and h >= min_hits for a, h in zip(accs, hits, strict=True))
        print(f"| {v} | {min(accs):.3f} / {statistics.mean(accs):.3f} | "
              f"{min(hits):.3f} / {statistics.mean(hits):.3f} | {passed}/{len(results)} |")
    cpu = [r["time"][0] for r in results]
    print(f"\ntraining CPU s: min {min(cpu):.1f}, mean {statistics.mean(cpu):.1f}, "
          f"max {max(cpu):.1f}")


if __name__ == "__main__":
    main()
