"""The forward and reverse processes in pictures: snapshot grids over t, and trajectories as paths.

Chapters "The forward process" and "Training a denoiser".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from ..forward import q_sample
from ..samplers import SampleState
from ..schedules import Schedule
from ._common import DATA_COLOR, DEFAULT_LIM, SAMPLE_COLOR, ArrayLike, square, to_points

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Snapshot = tuple[str, ArrayLike]


def forward_snapshots(x0: torch.Tensor, schedule: Schedule, ts: Sequence[int], seed: int = 0) -> list[Snapshot]:
    """(label, x_t) for each t in ``ts`` (0 = data, T = the last step), x_t ~ q(x_t | x_0), Eq. 4.

    One noise draw ε (from ``seed``) serves every t, so a point moves smoothly from panel to panel.
    """
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed), dtype=x0.dtype)
    out = []
    for t in ts:
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= schedule.T:
            raise ValueError(f"ts must hold ints in [0, T] = [0, {schedule.T}], got t = {t!r}")
        xt = q_sample(x0, t, schedule, noise=noise)  # x_0 itself at t = 0
        out.append((f"t = {t}", xt))
    return out


def reverse_snapshots(states: Iterable[SampleState], ts: Sequence[int]) -> list[Snapshot]:
    """(label, x_t) for the states of :func:`minidiff.sample_loop` whose t is in ``ts``."""
    wanted = set(ts)
    found = [(f"t = {s.t}", s.x) for s in states if s.t in wanted]
    if len(found) != len(wanted):
        raise ValueError(f"not every t in ts = {sorted(wanted)} was visited by the sampler (respaced steps?)")
    return found


def snapshot_grid(
    rows: Sequence[Sequence[Snapshot]], row_labels: Sequence[str] | None = None, *,
    lim: float | None = DEFAULT_LIM, size: float = 2.2, s: float = 1.0, max_points: int = 2000,
    suptitle: str | None = None,
) -> Figure:
    """A grid of scatter plots: one row per sequence of (label, points (N, 2)) snapshots. Returns the figure."""
    if not rows or not all(rows):
        raise ValueError("rows must be a non-empty list of non-empty lists of (label, points) snapshots")
    ncols = max(len(r) for r in rows)
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"row_labels must have one label per row ({len(rows)}), got {len(row_labels)}")
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols, size * len(rows)), squeeze=False,
                             sharex=True, sharey=True)
    for i, row in enumerate(rows):
        for j, ax in enumerate(axes[i]):
            if j >= len(row):
                ax.axis("off")
                continue
            label, pts = row[j]
            p = to_points("points", pts)[:max_points]
            ax.scatter(p[:, 0], p[:, 1], s=s, c=SAMPLE_COLOR, alpha=0.5, linewidths=0)
            square(ax, lim)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=3, symmetric=True))  # a few ticks: the scale of the cloud
            ax.yaxis.set_major_locator(MaxNLocator(nbins=3, symmetric=True))
            ax.tick_params(labelsize="small")
            ax.set_title(label, fontsize="medium")
        if row_labels is not None:
            axes[i][0].set_ylabel(row_labels[i])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_paths(
    paths: ArrayLike, *, background: ArrayLike | None = None, ax: Axes | None = None, title: str | None = None,
    lim: float | None = DEFAULT_LIM, linewidth: float = 0.8, legend: bool = True,
) -> Axes:
    """Draw N trajectories (S, N, 2) (S steps each) as thin lines, one colour per trajectory.

    Each line fades in from its start (faint) to its end (solid); the start of every path is a white circle
    ringed in the path's colour, the end a filled square of that colour outlined in black. ``background``
    (M, 2) is drawn in grey behind. A handful of paths (up to about 6) stays readable; pass a slice of a
    larger set. Returns the axes.
    """
    if isinstance(paths, torch.Tensor):
        paths = paths.detach().to("cpu", torch.float64).numpy()
    if not isinstance(paths, np.ndarray):
        raise TypeError(f"paths must be a torch.Tensor or numpy array of shape (S, N, 2), got {type(paths).__name__}")
    if paths.ndim != 3 or paths.shape[2] != 2 or paths.shape[0] < 2:
        raise ValueError(f"paths must have shape (S, N, 2) with S >= 2 steps, got {tuple(paths.shape)}")
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    if background is not None:
        b = to_points("background", background)
        ax.scatter(b[:, 0], b[:, 1], s=1, c=DATA_COLOR, alpha=0.5, linewidths=0, zorder=1)
    fade = np.linspace(0.25, 1.0, paths.shape[0] - 1)  # opacity of each segment: faint at the start
    colors = [plt.get_cmap("tab10")(n % 10) for n in range(paths.shape[1])]
    for n in range(paths.shape[1]):
        p = paths[:, n]
        segments = np.stack([p[:-1], p[1:]], axis=1)
        rgba = np.array([to_rgba(colors[n], a) for a in fade])
        ax.add_collection(LineCollection(segments, colors=rgba, linewidths=linewidth, zorder=2))
    ax.scatter(paths[0, :, 0], paths[0, :, 1], marker="o", s=40, facecolors="white", edgecolors=colors,
               linewidths=1.8, label="start", zorder=4)
    ax.scatter(paths[-1, :, 0], paths[-1, :, 1], marker="s", s=30, c=colors, edgecolors="black",
               linewidths=1.0, label="end", zorder=4)
    square(ax, lim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    if legend:
        handles = [plt.Line2D([], [], ls="", marker="o", mfc="white", mec="0.3", mew=1.8, label="start"),
                   plt.Line2D([], [], ls="", marker="s", mfc="0.6", mec="black", label="end")]
        ax.legend(handles=handles, loc="upper right", fontsize="small")
    return ax
