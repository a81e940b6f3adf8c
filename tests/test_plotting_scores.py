"""Score-field quiver plots (chapter "Scores and Langevin dynamics")."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

import minidiff as md  # noqa: E402
from minidiff.langevin import score_from_eps  # noqa: E402
from minidiff.plotting.scores import plot_score_field, score_field_grid, score_on_grid  # noqa: E402


@pytest.fixture
def exact(linear):
    mix = md.toy_mixture()
    return mix, (lambda x, t: mix.score(x, t, linear))


def test_score_on_grid_evaluates_at_t(linear, exact):
    """At t = 100 the grid values equal the mixture's score at t = 100 (one time index everywhere)."""
    mix, fn = exact
    X, Y, U, V = score_on_grid(fn, 100, lim=2.0, n_grid=5)
    assert X.shape == Y.shape == U.shape == V.shape == (5, 5)
    pts = torch.tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=torch.float32)
    want = mix.score(pts, torch.full((25,), 100), linear).numpy()
    np.testing.assert_allclose(np.stack([U.ravel(), V.ravel()], 1), want, rtol=1e-6)
    assert X[0, 0] == -2.0 and X[0, -1] == 2.0 and Y[-1, 0] == 2.0


def _quiver(ax) -> Quiver:
    return next(c for c in ax.collections if isinstance(c, Quiver))


def test_score_field_grid_draws_unit_arrows_with_one_colour_scale_per_column(linear, exact):
    _, fn = exact
    learned = score_from_eps(md.ExactEps(md.toy_mixture(), linear), linear)
    fig = score_field_grid({"learned": learned, "exact": fn}, [10, 500, 1000], data=torch.randn(50, 2))
    axes = np.array([ax for ax in fig.axes if ax.get_title()]).reshape(2, 3)
    for j in range(3):
        top, bottom = _quiver(axes[0, j]), _quiver(axes[1, j])
        assert (top.norm.vmin, top.norm.vmax) == (bottom.norm.vmin, bottom.norm.vmax)
        np.testing.assert_allclose(np.hypot(top.U, top.V), 1.0, rtol=1e-6)  # direction only
    assert axes[1, 0].get_title() == "exact, t = 10"
    # colour is log10 |score|: the exact panel's colours are the grid's log magnitudes
    X, Y, U, V = score_on_grid(fn, 10, n_grid=17)
    colours, want = np.asarray(_quiver(axes[1, 0]).get_array()), np.log10(np.hypot(U, V)).ravel()
    finite = want > -2  # skip the centre of symmetry, where |score| ~ 0 and its log is round-off
    np.testing.assert_allclose(colours[finite], want[finite], rtol=1e-6)
    # the score is far larger at t = 10 than at t = 1000, so the colour scales differ
    assert _quiver(axes[0, 0]).norm.vmax > _quiver(axes[0, 2]).norm.vmax + 0.5
    assert len(fig.axes) == 6 + 3  # one colour bar per column
    plt.close(fig)


def test_plot_score_field_returns_labelled_axes(exact):
    _, fn = exact
    ax = plot_score_field(fn, 50, n_grid=6, data=torch.zeros(10, 2))
    assert ax.get_title() == "t = 50" and ax.get_xlabel() == "$x_1$"
    assert _quiver(ax).U.shape == (36,)
    plt.close(ax.figure)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda fn: score_on_grid(fn, 0), ValueError, "t must be a time index t = 1..T"),
        (lambda fn: score_on_grid(fn, 5, n_grid=1), ValueError, "n_grid"),
        (lambda fn: score_on_grid(fn, 5, lim=-1.0), ValueError, "lim"),
        (lambda fn: score_on_grid("not a function", 5), TypeError, "score_fn must be callable"),
        (lambda fn: score_field_grid({}, [5]), ValueError, "at least one named score function"),
        (lambda fn: score_field_grid({"a": fn}, []), ValueError, "at least one time index"),
    ],
)
def test_score_plots_reject_bad_arguments(exact, call, error, match):
    with pytest.raises(error, match=match):
        call(exact[1])
