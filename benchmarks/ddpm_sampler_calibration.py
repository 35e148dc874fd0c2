"""Calibrate the ddpm_sampler training check: sliced Wasserstein-1 of samples to held-out data.

For several training seeds, trains the course's NoisePredictor exactly as the grader does (the
cpu profile of graders/ddpm_sampler/rubric.toml) and samples it with the reference and with
the example mistakes (imported directly: trusted code, no sandbox), plus the untrained model.
Prints a markdown table (benchmarks/ddpm_sampler_calibration.md holds a measured one).

    .venv/bin/python benchmarks/ddpm_sampler_calibration.py --seeds 5
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import tomllib
from pathlib import Path

import torch

from torchgrade.course import toy2d

ROOT = Path(__file__).resolve().parents[1]
MISTAKES = ("variance_swapped", "noise_at_t0", "trailing_spacing", "eta_ignored", "prev_shifted")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    ns = parser.parse_args()
    torch.set_num_threads(1)
    budget = tomllib.loads((ROOT / "graders/ddpm_sampler/rubric.toml").read_text())
    budget = budget["profiles"]["cpu"]
    ref = _load(ROOT / "solutions/ddpm_sampler/ddpm_sampler.py", "ddpm_ref")
    subs = {"reference": ref}
    for name in MISTAKES:
        subs[name] = _load(ROOT / f"examples/ddpm_sampler/{name}/ddpm_sampler.py", f"ex_{name}")
    total, n = int(budget["num_timesteps"]), int(budget["n_samples"])
    held_out = toy2d.toy_data(n, int(budget["eval_seed"]))
    floor = toy2d.sliced_wasserstein(toy2d.toy_data(n, 98), held_out)
    print(f"data vs data (seed 98): {floor:.4f}")
    print("| seed | model | sampler | train s | DDPM SW1 | DDIM SW1 |")
    print("|---|---|---|---|---|---|")
    for seed in range(int(budget["seed"]), int(budget["seed"]) + ns.seeds):
        for steps in (int(budget["steps"]), 0):
            started = time.perf_counter()
            sched = ref.DiffusionSchedule.from_betas(ref.make_beta_schedule(total, "cosine"))
            model = toy2d.trained_noise_predictor(
                sched.alphas_cumprod, steps=steps, batch_size=int(budget["batch_size"]),
                lr=float(budget["lr"]), n_data=int(budget["n_data"]),
                data_seed=int(budget["data_seed"]), seed=seed, hidden=int(budget["hidden"]))
            took = time.perf_counter() - started
            for name, sub in subs.items() if steps else [("reference", ref)]:
                s = sub.DiffusionSchedule.from_betas(sub.make_beta_schedule(total, "cosine"))
                var = "beta" if name == "noise_at_t0" else "beta_tilde"
                g = torch.Generator().manual_seed(seed)
                x = sub.ddpm_sample(model, (n, 2), s, generator=g, variance=var)
                g = torch.Generator().manual_seed(seed)
                y = sub.ddim_sample(model, (n, 2), s, num_steps=int(budget["ddim_steps"]),
                                    eta=0.0, generator=g)
                dx = toy2d.sliced_wasserstein(x, held_out)
                dy = toy2d.sliced_wasserstein(y, held_out)
                label = "trained" if steps else "untrained"
                print(f"| {seed} | {label} | {name} | {took:.1f} | {dx:.4f} | {dy:.4f} |",
                      flush=True)


if __name__ == "__main__":
    main()
