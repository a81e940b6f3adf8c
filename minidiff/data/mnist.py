"""MNIST (LeCun et al. 1998) from its IDX ``.gz`` files: 60,000 + 10,000 digits, 28x28, uint8.

Chapter "Image data". The files are downloaded once into the cache (:mod:`minidiff.data.download`).
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import torch

from .._checks import check_choice
from .download import download

MIRRORS = (
    "http://yann.lecun.com/exdb/mnist/",  # the official location (often refuses scripted downloads)
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FILES = {  # name: md5, as published with the data set and used by torchvision
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw): magic 0x0000 <dtype> <ndim>, ndim big-endian uint32 sizes, data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says shape {shape}, found {data.size} values")
    return data.reshape(shape)


def load_mnist(split: str = "train", root: str | os.PathLike | None = None,
               offline: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images (N, 1, 28, 28) uint8 and labels (N,) int64 for ``split`` ``train`` or ``test``."""
    check_choice("split", split, ("train", "test"))
    prefix = "train" if split == "train" else "t10k"
    paths = {kind: download(f"{prefix}-{kind}-idx{n}-ubyte.gz", MIRRORS, FILES[f"{prefix}-{kind}-idx{n}-ubyte.gz"],
                            root, offline=offline) for kind, n in (("images", 3), ("labels", 1))}
    images = read_idx(paths["images"])
    labels = read_idx(paths["labels"])
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
