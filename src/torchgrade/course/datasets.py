"""Real data sets for the gpu profile, read from ``$TORCHGRADE_DATA`` when a runner has them.

Why it exists: the GPU checks grade on generated data by default (find_object images, the
course's digits: no download, the same on every runner), and on CIFAR-10 or MNIST where a
runner mounts them, each with its own threshold. Both data sets are read from their plain
binary files, never unpickled: CIFAR-10's binary version (``cifar-10-batches-bin/``) and
MNIST's idx files (``MNIST/`` or torchvision's ``MNIST/raw/``, gzipped or not). Each reader
returns None when the files are absent, and the check then uses the generated data. Grader
only (nothing here runs in the student worker).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DATA_ENV = "TORCHGRADE_DATA"
CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def data_root() -> Path | None:
    """``$TORCHGRADE_DATA`` as a folder, or None when it is unset or not a folder."""
    value = os.environ.get(DATA_ENV, "")
    return Path(value) if value and Path(value).is_dir() else None


def _read_cifar_files(files: list[Path]) -> tuple[Tensor, Tensor]:
    """Records of 1 label byte + 3072 pixel bytes -> images ``[N, 3, 32, 32]`` in [0, 1]."""
    raw = np.concatenate([np.frombuffer(f.read_bytes(), dtype=np.uint8) for f in files])
    if raw.size % 3073:
        raise ValueError(f"{files[0].parent}: not CIFAR-10's binary version (3073-byte records)")
    records = raw.reshape(-1, 3073)
    labels = torch.from_numpy(records[:, 0].astype(np.int64))
    images = torch.from_numpy(records[:, 1:].copy()).reshape(-1, 3, 32, 32).float() / 255.0
    return images, labels


def read_cifar10(root: Path | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """(train images, train labels, test images, test labels) of CIFAR-10 under ``root``
    (default ``$TORCHGRADE_DATA``)/cifar-10-batches-bin, images in [0, 1]; None if absent."""
    root = root if root is not None else data_root()
    if root is None:
        return None
    folder = root / CIFAR_DIR
    train = [folder / f"data_batch_{i}.bin" for i in range(1, 6)]
    test = folder / "test_batch.bin"
    if not all(f.is_file() for f in [*train, test]):
        return None
    return (*_read_cifar_files(train), *_read_cifar_files([test]))


def cifar10_normalise(images: Tensor) -> Tensor:
    """CIFAR-10's per-channel standardisation (the lab's)."""
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def read_mnist(root: Path | None = None) -> tuple[Tensor, Tensor] | None:
    """MNIST's 60 000 training images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` from
    ``root`` (default ``$TORCHGRADE_DATA``)/MNIST or MNIST/raw, idx files gzipped or not;
    None when they are absent."""
    root = root if root is not None else data_root()
    if root is None:
        return None

    def find(stem: str) -> Path | None:
        for base in (root / "MNIST", root / "MNIST" / "raw"):
            for name in (stem, stem + ".gz"):
                if (base / name).is_file():
                    return base / name
        return None

    img_path, lab_path = find("train-images-idx3-ubyte"), find("train-labels-idx1-ubyte")
    if img_path is None or lab_path is None:
        return None

    def read(path: Path) -> bytes:
        return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()

    images = np.frombuffer(read(img_path), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.frombuffer(read(lab_path), dtype=np.uint8, offset=8)
    if len(images) != len(labels):
        raise ValueError(f"{img_path.parent}: MNIST images and labels differ in number")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))

