"""Calibrate the `nt_xent` CPU training check: data, budget and thresholds.

Why it exists: the grader's training check trains ``SmallConvEncoder`` with the submission's
``train_simclr`` on synthetic shapes and asks that a linear probe on its features beat a probe
on raw pixels and on a random (untrained) encoder. Its settings must be chosen, and its
thresholds justified, by measuring the reference on several seeds, and by measuring wrong
trainers that the check must fail. This script does that and prints a Markdown table (the
numbers in ``benchmarks/nt_xent_calibration.md`` come from it).

Per seed ``s``, exactly as the grader's check does it: train images ``make_shapes(n_train,
size=size, seed=s)``, test images ``make_shapes(n_test, size=size, seed=s + 1)``;
``torch.manual_seed(s)`` before building the encoder (so the random baseline is the SimCLR
encoder before training) and ``torch.Generator().manual_seed(s)`` for ``train_simclr``.
Everything runs on one CPU thread; training time is reported as wall time and as the process's
CPU time (the better measure on a shared machine).

Trainers (``--variants``): ``reference`` (the hidden reference), ``course_text`` (the reference
loop with the course text's loss: positive twice in the denominator, ``-9e15`` fill),
``untrained`` (returns the encoder unchanged; it must fail the check), and reference copies
with other view settings (``crop_0.3``, ``crop_0.08``, ``no_colour``, ``no_flip``) that show
how much a student's augmentation choices move the probe.

    PYTHONPATH=src python benchmarks/nt_xent_calibration.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchgrade.course import DEFAULT_CLASSES, SmallConvEncoder, linear_probe_accuracy, make_shapes

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "solutions" / "nt_xent" / "nt_xent.py"


@dataclass(frozen=True)
class Setup:
    """One candidate configuration of the training check."""

    n_train: int  # unlabelled images for SimCLR; also the probe's labelled training set
    n_test: int  # held-out images the probe is scored on
    size: int  # image side in pixels
    classes: tuple[str, ...]  # shape classes (chance = 1 / len(classes))
    width: int  # SmallConvEncoder width
    out_dim: int  # SmallConvEncoder feature size
    epochs: int
    batch_size: int
    lr: float
    temperature: float


@dataclass(frozen=True)
class Row:
    """What one (trainer, seed) run measured."""

    variant: str
    seed: int
    simclr: float  # probe accuracy on the trained encoder's features
    pixels: float  # probe accuracy on raw pixels
    random: float  # probe accuracy on the untrained encoder's features
    train_s: float  # wall time of train_simclr
    train_cpu_s: float  # CPU time of train_simclr (one thread, so ~ wall time on an idle machine)

    @property
    def margin(self) -> float:
        return self.simclr - max(self.pixels, self.random)


def load_module(path: Path, name: str) -> ModuleType:
    """Import a module from a file path (a fresh copy each call)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    spec.loader.exec_module(module)
    return module


def course_text_loss(z_i: Tensor, z_j: Tensor, temperature: float = 0.5) -> Tensor:
    """The course text's NT-Xent, verbatim in substance: the positive is counted twice."""
    batch_size = z_i.shape[0]
    z = F.normalize(torch.cat([z_i, z_j], dim=0), dim=1)  # [2N, D]
    similarity = torch.mm(z, z.T) / temperature  # [2N, 2N]
    mask = torch.eye(2 * batch_size, device=z.device).bool()
    similarity = similarity.masked_fill(mask, -9e15)
    positives = torch.cat(
        [
            similarity[range(batch_size), range(batch_size, 2 * batch_size)].unsqueeze(1),
            similarity[range(batch_size, 2 * batch_size), range(batch_size)].unsqueeze(1),
        ],
        dim=0,
    )  # [2N, 1]
    logits = torch.cat([positives, similarity], dim=1)  # [2N, 2N + 1]
    labels = torch.zeros(2 * batch_size, device=z.device, dtype=torch.long)
    return F.cross_entropy(logits, labels)


Trainer = Callable[..., nn.Module]

# Reference copies whose simclr_views use other settings (module constants of the reference).
VIEW_VARIANTS: dict[str, dict[str, object]] = {
    "crop_0.3": {"_CROP_SCALE": (0.3, 1.0)},  # keeps 30-100 % of the area
    "crop_0.08": {"_CROP_SCALE": (0.08, 1.0)},  # torchvision's / the paper's ImageNet default
    "no_colour": {"_JITTER_P": 0.0, "_GRAY_P": 0.0},  # crop and flip only
    "no_flip": {"_FLIP_P": 0.0},
}


def trainers(names: list[str]) -> dict[str, Trainer]:
    out: dict[str, Trainer] = {}
    for name in names:
        if name == "reference":
            out[name] = load_module(REFERENCE, "nt_xent_reference").train_simclr
        elif name == "course_text":
            # A separate copy of the reference whose training loop calls the buggy loss.
            module = load_module(REFERENCE, "nt_xent_course_text")
            module.nt_xent_loss = course_text_loss
            out[name] = module.train_simclr
        elif name == "untrained":
            out[name] = lambda encoder, images, **_: encoder
        elif name in VIEW_VARIANTS:
            # The reference with other augmentation settings: what a student's reasonable (or
            # not so reasonable) choices in simclr_views do to the probe.
            module = load_module(REFERENCE, f"nt_xent_{name}")
            for attribute, value in VIEW_VARIANTS[name].items():
                setattr(module, attribute, value)
            out[name] = module.train_simclr
        else:
            raise SystemExit(f"unknown variant {name!r}")
    return out


@torch.no_grad()
def features(encoder: nn.Module, images: Tensor, batch: int = 500) -> Tensor:
    encoder.eval()
    return torch.cat([encoder(images[i : i + batch]) for i in range(0, len(images), batch)])


def run_seed(setup: Setup, seed: int, train: dict[str, Trainer]) -> Iterator[Row]:
    x_tr, y_tr = make_shapes(setup.n_train, size=setup.size, seed=seed, classes=setup.classes)
    x_te, y_te = make_shapes(setup.n_test, size=setup.size, seed=seed + 1, classes=setup.classes)

    def fresh_encoder() -> nn.Module:
        torch.manual_seed(seed)
        return SmallConvEncoder(width=setup.width, out_dim=setup.out_dim)

    pixels = linear_probe_accuracy(x_tr.flatten(1), y_tr, x_te.flatten(1), y_te)
    enc = fresh_encoder()
    random = linear_probe_accuracy(features(enc, x_tr), y_tr, features(enc, x_te), y_te)

    for name, trainer in train.items():
        enc = fresh_encoder()
        start, start_cpu = time.perf_counter(), time.process_time()
        enc = trainer(
            enc,
            x_tr,
            epochs=setup.epochs,
            batch_size=setup.batch_size,
            temperature=setup.temperature,
            lr=setup.lr,
            generator=torch.Generator().manual_seed(seed),
        )
        train_s = time.perf_counter() - start
        train_cpu_s = time.process_time() - start_cpu
        simclr = linear_probe_accuracy(features(enc, x_tr), y_tr, features(enc, x_te), y_te)
        yield Row(name, seed, simclr, pixels, random, train_s, train_cpu_s)


def summarise(rows: list[Row], variant: str) -> str:
    mine = [r for r in rows if r.variant == variant]
    parts = []
    for label, values in (
        ("simclr", [r.simclr for r in mine]),
        ("margin", [r.margin for r in mine]),
        ("train wall s", [r.train_s for r in mine]),
        ("train CPU s", [r.train_cpu_s for r in mine]),
    ):
        parts.append(
            f"{label} min/mean/max {min(values):.3f}/{statistics.mean(values):.3f}/"
            f"{max(values):.3f}"
        )
    return f"- `{variant}`: " + "; ".join(parts)


def verdicts(rows: list[Row], floor: float, margin: float) -> str:
    lines = []
    for variant in dict.fromkeys(r.variant for r in rows):
        mine = [r for r in rows if r.variant == variant]
        passed = sum(r.simclr >= floor and r.margin >= margin for r in mine)
        lines.append(f"- `{variant}` passes on {passed}/{len(mine)} seeds")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--variants", nargs="+", default=["reference", "course_text", "untrained"])
    p.add_argument("--n-train", type=int, default=1024)
    p.add_argument("--n-test", type=int, default=1024)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--classes", nargs="+", default=list(DEFAULT_CLASSES))
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--out-dim", type=int, default=64)
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--floor", type=float, default=0.0, help="proposed absolute accuracy floor")
    p.add_argument("--margin", type=float, default=0.0, help="proposed margin over baselines")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    setup = Setup(
        n_train=args.n_train,
        n_test=args.n_test,
        size=args.size,
        classes=tuple(args.classes),
        width=args.width,
        out_dim=args.out_dim,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        temperature=args.temperature,
    )
    train = trainers(args.variants)
    print(f"setup: {setup}")
    print(
        "| variant | seed | SimCLR probe | pixels probe | random-encoder probe | margin "
        "| train wall s | train CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows: list[Row] = []
    for seed in args.seeds:
        start = time.perf_counter()
        for r in run_seed(setup, seed, train):
            rows.append(r)
            print(
                f"| {r.variant} | {r.seed} | {r.simclr:.3f} | {r.pixels:.3f} | {r.random:.3f} "
                f"| {r.margin:+.3f} | {r.train_s:.1f} | {r.train_cpu_s:.1f} |",
                flush=True,
            )
        print(f"<!-- seed {seed}: {time.perf_counter() - start:.1f} s in all -->", flush=True)
    print()
    for variant in dict.fromkeys(r.variant for r in rows):
        print(summarise(rows, variant))
    if args.floor or args.margin:
        print(f"\nthresholds: accuracy >= {args.floor:.2f} and margin >= {args.margin:.2f}")
        print(verdicts(rows, args.floor, args.margin))


if __name__ == "__main__":
    main()
