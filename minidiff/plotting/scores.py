"""Score fields ∇ log q(x_t) as quiver plots on a grid, learned next to exact, at several t.

A trained ε-network gives the score through s_θ(x_t, t) = −ε_θ(x_t, t)/√(1−ᾱ_t) (Tweedie's formula
for Eq. 4; :func:`minidiff.langevin.score_from_eps`). Chapter "Scores and Langevin dynamics".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ._common import DATA_COLOR, DEFAULT_LIM, SAMPLE_COLOR, ArrayLike, square, to_points

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_t(t: int) -> int:
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be a paper time index, an int >= 1, got t = {t!r}")
    return t


def score_on_grid(score_fn: ScoreFn, t: int, *, lim: float = DEFAULT_LIM, n_grid: int = 21):
    """Evaluate ``score_fn`` on an n_grid × n_grid grid over [−lim, lim]² at the paper's time t.

    ``score_fn(x, t_code)`` takes x (B, 2) and code indices t_code = t − 1 (B,), as
    :func:`minidiff.langevin.score_from_eps` does. Returns numpy arrays (X, Y, U, V), each (n_grid, n_grid).
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
        s = score_fn(x, torch.full((x.shape[0],), t - 1, dtype=torch.long))
    s = s.detach().to("cpu", torch.float64).numpy()
    return X.numpy(), Y.numpy(), s[:, 0].reshape(n_grid, n_grid), s[:, 1].reshape(n_grid, n_grid)


def plot_score_field(
    score_fn: ScoreFn, t: int, *, ax=None, data: ArrayLike | None = None, lim: float = DEFAULT_LIM,
    n_grid: int = 21, scale: float | None = None, title: str | None = None, color: str = SAMPLE_COLOR,
    max_points: int = 2000,
):
    """Quiver plot of ∇ log q(x_t) at the paper's time t over [−lim, lim]², data in grey behind; returns the axes.

    ``scale``: matplotlib's quiver scale (data units per arrow-length unit); pass the same value
    to panels you want to compare (None: autoscale this panel).
    """
    X, Y, U, V = score_on_grid(score_fn, t, lim=lim, n_grid=n_grid)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    if data is not None:
        d = to_points("data", data)[:max_points]
        ax.scatter(d[:, 0], d[:, 1], s=1.0, c=DATA_COLOR, alpha=0.6, linewidths=0)
    ax.quiver(X, Y, U, V, color=color, scale=scale, angles="xy", width=0.006)
    square(ax, lim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title if title is not None else f"t = {t}")
    return ax


def _common_scale(fields: list[tuple[np.ndarray, ...]], n_grid: int) -> float:
    """A quiver scale for which the 95th-percentile arrow of all fields is about one grid cell long."""
    mags = np.concatenate([np.hypot(U, V).ravel() for _, _, U, V in fields])
    ref = float(np.percentile(mags, 95))
    return ref * n_grid if ref > 0 else 1.0


def score_field_grid(
    score_fns: Mapping[str, ScoreFn], ts: Sequence[int], *, data: ArrayLike | None = None,
    lim: float = DEFAULT_LIM, n_grid: int = 17, size: float = 2.6, colors: Sequence[str] | None = None,
    suptitle: str | None = None,
):
    """A grid of score fields: one row per named score function, one column per paper time t in ``ts``.

    Within a column every panel shares one arrow scale, so a learned field can be compared with the
    exact one arrow by arrow; between columns the scale changes (the score grows like 1/(1−ᾱ_t)).
    Returns the figure.
    """
    if not score_fns:
        raise ValueError("score_fns must hold at least one named score function, got an empty mapping")
    ts = [_check_t(t) for t in ts]
    if not ts:
        raise ValueError("ts must hold at least one time index, got an empty sequence")
    names = list(score_fns)
    colors = list(colors) if colors is not None else [f"C{i}" for i in range(len(names))]
    if len(colors) < len(names):
        raise ValueError(f"colors must have one colour per score function ({len(names)}), got {len(colors)}")
    fig, axes = plt.subplots(len(names), len(ts), figsize=(size * len(ts), size * len(names)), squeeze=False)
    for j, t in enumerate(ts):
        fields = [score_on_grid(score_fns[name], t, lim=lim, n_grid=n_grid) for name in names]
        scale = _common_scale(fields, n_grid)
        for i, (name, (X, Y, U, V)) in enumerate(zip(names, fields)):
            ax = axes[i, j]
            if data is not None:
                d = to_points("data", data)[:2000]
                ax.scatter(d[:, 0], d[:, 1], s=1.0, c=DATA_COLOR, alpha=0.6, linewidths=0)
            ax.quiver(X, Y, U, V, color=colors[i], scale=scale, angles="xy", width=0.006)
            square(ax, lim)
            ax.set_title(f"{name}, t = {t}", fontsize="medium")
            ax.set_xlabel("$x_1$" if i == len(names) - 1 else "")
            ax.set_ylabel("$x_2$" if j == 0 else "")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
