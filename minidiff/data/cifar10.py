"""CIFAR-10 (Krizhevsky 2009) from the official python tarball: 50,000 + 10,000 RGB images, 32x32, uint8.

The paper's image benchmark (Ho et al. 2020, Sec. 4). Chapter "Image data".
"""

from __future__ import annotations

import os
import pickle
import tarfile

import numpy as np
import torch

from .._checks import check_choice
from .download import download

MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
FILENAME = "cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def read_cifar_batch(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pickled CIFAR batch: returns images (N, 3, 32, 32) uint8 and labels (N,) int64.

    The pickle is a dict with ``b"data"`` (N, 3072) uint8 rows, R then G then B planes, and ``b"labels"``.
    Only the two fields are taken; the file comes from a checksum-verified archive.
    """
    batch = pickle.loads(data, encoding="bytes")  # noqa: S301 (verified official archive)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError("not a CIFAR-10 batch: expected a dict with b'data' and b'labels'")
    images = np.asarray(batch[b"data"], dtype=np.uint8)
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise ValueError(f"CIFAR-10 batch data must have shape (N, 3072), got {images.shape}")
    return images.reshape(-1, 3, 32, 32), np.asarray(batch[b"labels"], dtype=np.int64)


def read_cifar_tarball(path: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Read every batch of ``split`` straight from ``cifar-10-python.tar.gz`` (no extraction to disk)."""
    check_choice("split", split, _BATCHES)
    images, labels = [], []
    with tarfile.open(path, "r:gz") as tar:
        members = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
        for name in _BATCHES[split]:
            if name not in members:
                raise ValueError(f"{path} has no member {name!r}: not the CIFAR-10 python tarball")
            x, y = read_cifar_batch(tar.extractfile(members[name]).read())
            images.append(x)
            labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None,
                 offline: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 images (N, 3, 32, 32) uint8 and labels (N,) int64 for ``split`` ``train`` or ``test``."""
    check_choice("split", split, _BATCHES)
    images, labels = read_cifar_tarball(download(FILENAME, MIRRORS, MD5, root, offline=offline), split)
    return torch.from_numpy(images), torch.from_numpy(labels)
