"""Tests of the GPU checks' data: the generated digits and the readers of mounted data sets.

The gpu profile grades on generated data by default (torchgrade.course.digits, find_object)
and on CIFAR-10 or MNIST where ``$TORCHGRADE_DATA`` holds them (torchgrade.course.datasets).
The readers are tested on small files written here in each data set's own binary format.
"""

from __future__ import annotations

import gzip
import struct

import numpy as np
import torch

from torchgrade.course import datasets
from torchgrade.course.digits import make_digits


def test_digits_are_mnist_shaped_balanced_and_reproducible():
    """Are the digits uint8 [n, 28, 28] with balanced labels, the same for a seed whatever the
    chunking, and different for another seed?"""
    images, labels = make_digits(200, seed=3)
    assert images.shape == (200, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=10).tolist() == [20] * 10
    again, _ = make_digits(200, seed=3, chunk=7)
    assert torch.equal(images, again)
    assert not torch.equal(images, make_digits(200, seed=4)[0])


def test_digits_are_white_strokes_on_black_inside_the_frame():
    """Is every digit some ink but mostly background (a thin 1 is 4 % ink, a bold 8 a third),
    away from the border, and does each class look different on average?"""
    images, labels = make_digits(1000, seed=0)
    ink = (images > 127).double().mean(dim=(1, 2))
    assert 0.02 < float(ink.min()) and float(ink.max()) < 0.45
    frame = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], dim=1)
    assert int((frame.amax(dim=1) > 0).sum()) <= 1  # 3 in 20 000 are too large to fit
    means = torch.stack([images[labels == d].double().mean(0) for d in range(10)])  # [10, H, W]
    distance = torch.cdist(means.flatten(1), means.flatten(1))
    assert float(distance[~torch.eye(10, dtype=torch.bool)].min()) > 100.0


def test_readers_return_none_without_data(monkeypatch, tmp_path):
    """Without $TORCHGRADE_DATA, or with an empty folder there, is there nothing to read?"""
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    assert datasets.read_cifar10() is None and datasets.read_mnist() is None
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    assert datasets.read_cifar10() is None and datasets.read_mnist() is None


def test_cifar10_binary_version_is_read(monkeypatch, tmp_path):
    """Are CIFAR-10's binary batches read as [N, 3, 32, 32] in [0, 1] with their labels?"""
    folder = tmp_path / datasets.CIFAR_DIR
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, name in enumerate([*(f"data_batch_{k}.bin" for k in range(1, 6)), "test_batch.bin"]):
        records = rng.integers(0, 256, size=(3, 3073), dtype=np.uint8)
        records[:, 0] = [i, (i + 1) % 10, 9]
        (folder / name).write_bytes(records.tobytes())
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    train_x, train_y, test_x, test_y = datasets.read_cifar10()
    assert train_x.shape == (15, 3, 32, 32) and test_x.shape == (3, 3, 32, 32)
    assert train_y[:3].tolist() == [0, 1, 9] and test_y.tolist() == [5, 6, 9]
    assert 0.0 <= float(train_x.min()) and float(train_x.max()) <= 1.0
    assert datasets.cifar10_normalise(train_x).shape == train_x.shape


def test_mnist_idx_files_are_read_gzipped_or_not(monkeypatch, tmp_path):
    """Are MNIST's idx files read from MNIST/raw (gzipped) as uint8 images and labels?"""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    pixels = np.arange(4 * 28 * 28, dtype=np.uint32).astype(np.uint8)
    images = struct.pack(">IIII", 2051, 4, 28, 28) + pixels.tobytes()
    labels = struct.pack(">II", 2049, 4) + bytes([3, 1, 4, 1])
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    (raw / "train-labels-idx1-ubyte").write_bytes(labels)
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    got_images, got_labels = datasets.read_mnist()
    assert got_images.shape == (4, 28, 28) and got_images.dtype == torch.uint8
    assert got_labels.tolist() == [3, 1, 4, 1]
    assert torch.equal(got_images.flatten(), torch.from_numpy(pixels))
