"""Calibrate the `wgan_gp` CPU training check (the randomised ring): budget and thresholds.

Why it exists: the grader's ring check trains the course's ``ToyGenerator``/``ToyCritic``
with the submission's ``train_wgan_gp`` on a ring of Gaussians that ``ring_seed`` chooses
(number of modes, radius, centre, rotation) and asks that the generator cover at least
``min_covered`` modes (each holding ``min_share`` of its fair share of good samples), with at
least ``min_quality`` of the samples within ``k_std`` standard deviations of a mode, and
that at least ``min_lipschitz`` of the trained critic's input-gradient norms at interpolates
of fresh data and generated points lie within ``lipschitz_band`` (WGAN-GP holds them near 1).
The thresholds are justified here by measuring the reference on several seeds and rings, and
submissions that the check must fail or must not punish. The numbers in
``benchmarks/wgan_gp_calibration.md`` come from this script.

Each run is exactly the grader's: its own ``train_ring`` through a ``LocalStudent`` over the
submission module (no sandbox, the same calls), with the rubric's cpu budget except
``seed`` and ``ring_seed``, which take the run's seed. One CPU thread; the time is the
process's CPU time (the wall time on a shared machine says more about the neighbours).

Submissions (``--variants``): ``reference``; the example submissions ``no_create_graph``
(the penalty never reaches the critic), ``norm_whole_batch`` (one norm over the batch),
``signs_swapped``, ``bce_losses`` (the course text's BCE losses, with the penalty) and
``bce_no_gp`` (``bce_losses`` with ``lambda_gp = 0``: the course text's GAN); and
``no_generator`` (a correct algorithm whose ``eps`` comes from the global RNG: a different
random stream, which the check must not punish) and ``eps_per_pixel``.

    PYTHONPATH=src python benchmarks/wgan_gp_calibration.py --seeds 0 1 2 3 4 5
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

from torchgrade.proxy import LocalStudent

ROOT = Path(__file__).resolve().parents[1]
GRADER = ROOT / "graders" / "wgan_gp" / "test_wgan_gp.py"
RUBRIC = ROOT / "graders" / "wgan_gp" / "rubric.toml"
SOURCES = {"reference": ROOT / "solutions" / "wgan_gp" / "wgan_gp.py",
           **{n: ROOT / "examples" / "wgan_gp" / n / "wgan_gp.py"
              for n in ("no_create_graph", "norm_whole_batch", "signs_swapped", "bce_losses",
                        "no_generator", "eps_per_pixel")}}


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class ZeroPenalty(LocalStudent):
    """A submission whose training loop is called with ``lambda_gp = 0``."""

    def train_wgan_gp(self, *args, **kwargs):
        return self._module.train_wgan_gp(*args, **{**kwargs, "lambda_gp": 0.0})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--rubric-seed", action="store_true",
                        help="also run the rubric's own seed and ring_seed (the graded ring)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override budget keys (numbers), to try other budgets")
    parser.add_argument("--variants", nargs="+",
                        default=["reference", "no_create_graph", "norm_whole_batch",
                                 "signs_swapped", "bce_losses", "bce_no_gp"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    grader = load_module(GRADER, "wgan_gp_grader")
    budget = tomllib.loads(RUBRIC.read_text())["profiles"]["cpu"]
    for item in args.set:
        key, _, value = item.partition("=")
        budget[key] = [float(v) for v in value.split(",")] if "," in value else float(value)
    runs = [(s, s) for s in args.seeds]
    if args.rubric_seed:
        runs.insert(0, (int(budget["seed"]), int(budget["ring_seed"])))
    print("| submission | seed | ring_seed | modes | radius | covered | quality | worst share | "
          "norms in band | median norm | passes | CPU s | snapshots (covered, good) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for variant in args.variants:
        source = "bce_losses" if variant == "bce_no_gp" else variant
        module = load_module(SOURCES[source], f"wgan_gp_{source}")
        student = (ZeroPenalty if variant == "bce_no_gp" else LocalStudent)(module)
        for seed, ring_seed in runs:
            run = {**budget, "seed": seed, "ring_seed": ring_seed}
            ring = grader.ring_config(run)
            head = (f"| {variant} | {seed} | {ring_seed} | {ring['n_modes']} | "
                    f"{ring['radius']:.2f} |")
            start = time.process_time()
            try:
                scores = grader.train_ring(student, run)
            except Exception as exc:  # noqa: BLE001 - a broken variant may crash: report it
                print(f"{head} crashed: {type(exc).__name__} | | | no | |", flush=True)
                continue
            cpu = time.process_time() - start
            ok = (scores["covered"] >= int(budget["min_covered"])
                  and scores["quality"] >= float(budget["min_quality"])
                  and scores["lipschitz"] >= float(budget["min_lipschitz"]))
            print(f"{head} {scores['covered']} | {scores['quality']:.3f} | "
                  f"{scores['worst_share']:.2f} | {scores['lipschitz']:.3f} | "
                  f"{scores['median_norm']:.3g} | {'yes' if ok else 'no'} | {cpu:.1f} | "
                  f"{scores.get('snapshots', '')} |", flush=True)


if __name__ == "__main__":
    main()
