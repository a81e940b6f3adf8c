"""Samples against data: the first look at a 2D generative model. Chapter "Training a denoiser"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from ._common import DATA_COLOR, DEFAULT_LIM, SAMPLE_COLOR, ArrayLike, square, to_points

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_samples(
    samples: ArrayLike, data: ArrayLike | None = None, *, ax: Axes | None = None, title: str | None = None,
    lim: float | None = DEFAULT_LIM, s: float = 2.0, max_points: int = 5000,
) -> Axes:
    """Scatter ``samples`` (N, 2) in blue over ``data`` (M, 2) in grey on one axes; returns the axes.

    At most ``max_points`` of each are drawn (the first ones), so large clouds stay readable.
    """
    x = to_points("samples", samples)[:max_points]
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    if data is not None:
        d = to_points("data", data)[:max_points]
        ax.scatter(d[:, 0], d[:, 1], s=s, c=DATA_COLOR, alpha=0.6, linewidths=0, label="data")
    ax.scatter(x[:, 0], x[:, 1], s=s, c=SAMPLE_COLOR, alpha=0.6, linewidths=0, label="samples")
    square(ax, lim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    if data is not None:
        ax.legend(loc="upper right", markerscale=4, fontsize="small")
    return ax


def samples_grid(
    samples: Mapping[str, ArrayLike], data: Mapping[str, ArrayLike] | None = None, *,
    lim: float | None = DEFAULT_LIM, size: float = 3.2, suptitle: str | None = None,
) -> Figure:
    """One :func:`plot_samples` panel per entry of ``samples`` (title = key), data from ``data[key]``."""
    if not samples:
        raise ValueError("samples must hold at least one named point cloud, got an empty mapping")
    fig, axes = plt.subplots(1, len(samples), figsize=(size * len(samples), size), squeeze=False)
    for ax, (name, x) in zip(axes[0], samples.items()):
        plot_samples(x, None if data is None else data[name], ax=ax, title=name, lim=lim)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
