"""Samples against data: the first look at a 2D generative model. Chapter "Training a denoiser"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from ._common import DATA_ON_TOP_COLOR, DEFAULT_LIM, SAMPLE_COLOR, ArrayLike, square, to_points

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_samples(
    samples: ArrayLike, data: ArrayLike | None = None, *, ax: Axes | None = None, title: str | None = None,
    lim: float | None = DEFAULT_LIM, s: float = 2.0, max_points: int = 5000,
) -> Axes:
    """Scatter ``samples`` (N, 2) in translucent blue and ``data`` (M, 2) as dark grey dots on top; returns the axes.

    The data are drawn last, small and dark, so they stay visible inside the sample cloud: where the two
    agree, grey dots sit on blue; blue without grey is a sample where the data has no mass, grey without
    blue is data the samples miss. At most ``max_points`` of each are drawn (the first ones).
    """
    x = to_points("samples", samples)[:max_points]
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(x[:, 0], x[:, 1], s=2 * s, c=SAMPLE_COLOR, alpha=0.3, linewidths=0, label="samples", zorder=2)
    if data is not None:
        d = to_points("data", data)[:max_points]
        ax.scatter(d[:, 0], d[:, 1], s=s / 4, c=DATA_ON_TOP_COLOR, alpha=0.5, linewidths=0, label="data", zorder=3)
    square(ax, lim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    if data is not None:
        leg = ax.legend(loc="upper right", markerscale=4, fontsize="small")
        for handle in leg.legend_handles:
            handle.set_alpha(1.0)
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
