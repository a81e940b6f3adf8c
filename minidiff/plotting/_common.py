"""Shared helpers of the plot functions: point clouds to numpy, square axes, the default look."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes

ArrayLike = Union[torch.Tensor, np.ndarray]

DATA_COLOR = "0.75"  # light grey: the real data behind the samples
DATA_ON_TOP_COLOR = "0.15"  # dark grey: real data drawn over translucent samples, so both stay visible
SAMPLE_COLOR = "tab:blue"
DEFAULT_LIM = 3.0  # the toys have unit scale; N(0, I) reaches about 3


def to_points(name: str, x: ArrayLike) -> np.ndarray:
    """A (N, 2) point cloud as a numpy float array; TypeError/ValueError naming ``name`` otherwise."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array of shape (N, 2), got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {tuple(x.shape)}")
    return x.astype(np.float64, copy=False)


def square(ax: Axes, lim: float | None = DEFAULT_LIM) -> None:
    """Equal aspect and limits [−lim, lim]² (autoscaled if lim is None); no ticks clutter."""
    if lim is not None:
        if not lim > 0:
            raise ValueError(f"lim must be > 0, got lim = {lim!r}")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
