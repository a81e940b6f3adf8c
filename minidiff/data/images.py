"""Image data sets behind one interface, a device-resident batch pipeline, and PNG image grids.

The pipeline keeps the whole data set as uint8 on the training device (CIFAR-10 is 150 MB) and
builds each batch with a handful of tensor ops: an index gather from an epoch permutation, random
horizontal flips (the paper's CIFAR-10 augmentation, Appendix B), and scaling to [−1, 1]
("we scale image data to [−1, 1]", Sec. 3.3). No worker processes, no per-example Python.
Chapter "Image data".
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice
from .cifar10 import load_cifar10
from .mnist import load_mnist
from .standins import load_cifar10_offline, load_mnist_offline

DATASETS = ("mnist", "cifar10", "mnist-offline", "cifar10-offline")


@dataclass
class ImageData:
    """uint8 images (N, C, H, W), labels (N,) int64, and the data set's defaults."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    flip: bool  # random horizontal flips during training (CIFAR-10: yes; digits: no)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None,
                 offline: bool = False) -> ImageData:
    """Load one of :data:`DATASETS` as :class:`ImageData`.

    ``mnist`` and ``cifar10`` download into the cache on first use (``root``, else ``$MINIDIFF_DATA``,
    else ``~/.cache/minidiff``); the ``-offline`` stand-ins need no network.
    """
    check_choice("dataset", name, DATASETS)
    if name == "mnist":
        x, y = load_mnist(split, root, offline)
    elif name == "cifar10":
        x, y = load_cifar10(split, root, offline)
    elif name == "mnist-offline":
        x, y = load_mnist_offline(split)
    else:
        x, y = load_cifar10_offline(split)
    num_classes = 2 if name == "cifar10-offline" else 10
    return ImageData(name, x, y, num_classes, flip=name.startswith("cifar10"))


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 {0..255} -> float [−1, 1]: x/127.5 − 1 (Sec. 3.3)."""
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [−1, 1] -> uint8 {0..255}, clipping and rounding to the nearest level."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class ImageBatcher:
    """Endless, epoch-shuffled training batches from uint8 images kept on ``device``.

    Every rank of a distributed run draws the same global batch of ``batch_size`` images (same
    seed) and keeps its slice ``[rank·b, (rank+1)·b)``, b = batch_size / world_size, so W processes
    see exactly the batch one process would. The incomplete batch at the end of an epoch is dropped.
    :meth:`state_dict` / :meth:`load_state_dict` make a resumed run continue the same sequence.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, *, flip: bool = False,
                 device: torch.device | str = "cpu", seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError(f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if not 1 <= batch_size <= images.shape[0]:
            raise ValueError(f"batch_size must be in [1, N] = [1, {images.shape[0]}], got batch_size = {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size or batch_size % world_size:
            raise ValueError(f"batch_size = {batch_size} must split evenly over world_size = {world_size} "
                             f"(rank = {rank})")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = None if labels is None else labels.to(self.device)
        self.batch_size, self.flip, self.rank, self.world_size = batch_size, flip, rank, world_size
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.epoch, self.pos = 0, 0
        self.perm = self._new_perm()

    def _new_perm(self) -> torch.Tensor:
        return torch.randperm(self.images.shape[0], generator=self.generator, device=self.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's part of the next batch: x0 (b, C, H, W) float in [−1, 1], labels (b,) or None."""
        B = self.batch_size
        if self.pos + B > self.perm.shape[0]:
            self.perm, self.pos, self.epoch = self._new_perm(), 0, self.epoch + 1
        idx = self.perm[self.pos:self.pos + B]
        self.pos += B
        flips = torch.rand(B, generator=self.generator, device=self.device) < 0.5 if self.flip else None
        b = B // self.world_size
        part = slice(self.rank * b, (self.rank + 1) * b)
        idx = idx[part]
        x = self.images[idx]
        if flips is not None:
            x = torch.where(flips[part, None, None, None], x.flip(-1), x)
        return to_unit_range(x), None if self.labels is None else self.labels[idx]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": self.perm.cpu(), "pos": self.pos,
                "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.perm = state["perm"].to(self.device)
        self.pos, self.epoch = int(state["pos"]), int(state["epoch"])


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile images (B, C, H, W) in [−1, 1] into one uint8 array (rows·(H+p)+p, cols·(W+p)+p, C)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (B, 1 or 3, H, W), got {tuple(images.shape)}")
    B, C, H, W = images.shape
    nrow = nrow or math.ceil(math.sqrt(B))
    rows = math.ceil(B / nrow)
    grid = np.zeros((rows * (H + padding) + padding, nrow * (W + padding) + padding, C), dtype=np.uint8)
    x = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()
    for i in range(B):
        r, c = divmod(i, nrow)
        top, left = padding + r * (H + padding), padding + c * (W + padding)
        grid[top:top + H, left:left + W] = x[i]
    return grid


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None) -> None:
    """Write :func:`image_grid` of ``images`` in [−1, 1] as a PNG (Pillow)."""
    from PIL import Image

    grid = image_grid(images, nrow)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path, format="PNG")
