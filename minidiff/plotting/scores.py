"""Score fields ∇ log q(x_t) as quiver plots on a grid, learned next to exact, at several t.

A trained ε-network gives the score through s_θ(x_t, t) = −ε_θ(x_t, t)/√(1−ᾱ_t) (the marginal-score
identity ∇ log q(x_t) = E[∇ log q(x_t | x_0) | x_t] applied to Eq. 4;
:func:`minidiff.langevin.score_from_eps`). Chapter "Scores and Langevin dynamics".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import Normalize

from ._common import DATA_COLOR, DEFAULT_LIM, ArrayLike, square, to_points

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.quiver import Quiver

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_t(t: int) -> int:
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be a time index t = 1..T, an int >= 1, got t = {t!r}")
    return t


def score_on_grid(score_fn: ScoreFn, t: int, *, lim: float = DEFAULT_LIM,
                  n_grid: int = 21) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate ``score_fn`` on an n_grid × n_grid grid over [−lim, lim]² at time t (the paper's, >= 1).

    ``score_fn(x, t)`` takes x (B, 2) and t (B,), as
    :func:`minidiff.langevin.score_from_eps` does. Returns numpy arrays (X, Y, U, V), each (n_grid, n_grid).
    Chapter "Scores and Langevin dynamics".
    """
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable as score_fn(x, t), got {type(score_fn).__name__}")
    _check_t(t)
    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 2:
        raise ValueError(f"n_grid must be an int >= 2, got n_grid = {n_grid!r}")
    if not lim > 0:
        raise ValueError(f"lim must be > 0, got lim = {lim!r}")
    g = torch.linspace(-lim, lim, n_grid)
    X, Y = torch.meshgrid(g, g, indexing="xy")
    x = torch.stack([X.reshape(-1), Y.reshape(-1)], dim=1)
    with torch.no_grad():
        s = score_fn(x, torch.full((x.shape[0],), t, dtype=torch.long))
    s = s.detach().to("cpu", torch.float64).numpy()
    return X.numpy(), Y.numpy(), s[:, 0].reshape(n_grid, n_grid), s[:, 1].reshape(n_grid, n_grid)


def _unit_arrows(ax: Axes, X: np.ndarray, Y: np.ndarray, U: np.ndarray, V: np.ndarray, *, norm: Normalize,
                 cmap: str, n_grid: int) -> Quiver:
    """Draw the field as arrows of one length (its direction), coloured by log10 of its magnitude."""
    mag = np.hypot(U, V)
    safe = np.where(mag > 0, mag, 1.0)
    log_mag = np.log10(np.maximum(mag, 1e-12))
    return ax.quiver(X, Y, U / safe, V / safe, log_mag, cmap=cmap, norm=norm, angles="xy", pivot="mid",
                     scale=n_grid / 0.8, width=0.006)


def _log_norm(fields: list[tuple[np.ndarray, ...]]) -> Normalize:
    """One colour scale (log10 |score|, 2nd to 98th percentile) shared by the given fields."""
    logs = np.concatenate([np.log10(np.maximum(np.hypot(U, V), 1e-12)).ravel() for _, _, U, V in fields])
    lo, hi = np.percentile(logs, [2, 98])
    return Normalize(vmin=float(lo), vmax=float(max(hi, lo + 1e-6)))


def _scatter_data(ax: Axes, data: ArrayLike | None, max_points: int = 2000) -> None:
    if data is not None:
        d = to_points("data", data)[:max_points]
        ax.scatter(d[:, 0], d[:, 1], s=1.0, c=DATA_COLOR, alpha=0.6, linewidths=0)


def plot_score_field(
    score_fn: ScoreFn, t: int, *, ax: Axes | None = None, data: ArrayLike | None = None, lim: float = DEFAULT_LIM,
    n_grid: int = 21, norm: Normalize | None = None, cmap: str = "viridis", title: str | None = None,
) -> Axes:
    """Quiver plot of ∇ log q(x_t) at the paper's time t over [−lim, lim]², data in grey behind; returns the axes.

    The score's size spans orders of magnitude (it grows like 1/(1−ᾱ_t) near the data and linearly far from it),
    so every arrow has the same length and shows the direction; its colour shows log10 of the magnitude.
    ``norm``: a matplotlib Normalize for that colour (None: this field's own 2nd-98th percentile range).
    """
    field = score_on_grid(score_fn, t, lim=lim, n_grid=n_grid)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    _scatter_data(ax, data)
    _unit_arrows(ax, *field, norm=norm or _log_norm([field]), cmap=cmap, n_grid=n_grid)
    square(ax, lim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title if title is not None else f"t = {t}")
    return ax


def score_field_grid(
    score_fns: Mapping[str, ScoreFn], ts: Sequence[int], *, data: ArrayLike | None = None,
    lim: float = DEFAULT_LIM, n_grid: int = 17, size: float = 2.6, cmap: str = "viridis",
    suptitle: str | None = None,
) -> Figure:
    """A grid of score fields: one row per named score function, one column per paper time t in ``ts``.

    Arrows show the direction of the score; colour shows log10 of its magnitude on one scale per column
    (a colour bar under each column), so a learned field can be compared with the exact one arrow by arrow.
    Returns the figure.
    """
    if not score_fns:
        raise ValueError("score_fns must hold at least one named score function, got an empty mapping")
    ts = [_check_t(t) for t in ts]
    if not ts:
        raise ValueError("ts must hold at least one time index, got an empty sequence")
    names = list(score_fns)
    fig, axes = plt.subplots(len(names), len(ts), figsize=(size * len(ts), size * len(names) + 0.6),
                             squeeze=False, layout="constrained")
    for j, t in enumerate(ts):
        fields = [score_on_grid(score_fns[name], t, lim=lim, n_grid=n_grid) for name in names]
        norm = _log_norm(fields)
        for i, (name, field) in enumerate(zip(names, fields)):
            ax = axes[i, j]
            _scatter_data(ax, data)
            q = _unit_arrows(ax, *field, norm=norm, cmap=cmap, n_grid=n_grid)
            square(ax, lim)
            ax.set_title(f"{name}, t = {t}", fontsize="medium")
            ax.set_xlabel("$x_1$" if i == len(names) - 1 else "")
            ax.set_ylabel("$x_2$" if j == 0 else "")
        fig.colorbar(q, ax=list(axes[:, j]), orientation="horizontal", shrink=0.85, aspect=25,
                     label="log$_{10}$ |score|")
    if suptitle:
        fig.suptitle(suptitle)
    return fig
