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


def test_score_on_grid_evaluates_at_code_index_t_minus_one(linear, exact):
    """Paper time t = 100 is code index 99: the grid values equal the mixture's score there."""
    mix, fn = exact
    X, Y, U, V = score_on_grid(fn, 100, lim=2.0, n_grid=5)
    assert X.shape == Y.shape == U.shape == V.shape == (5, 5)
    pts = torch.tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=torch.float32)
    want = mix.score(pts, torch.full((25,), 99), linear).numpy()
    np.testing.assert_allclose(np.stack([U.ravel(), V.ravel()], 1), want, rtol=1e-6)
    assert X[0, 0] == -2.0 and X[0, -1] == 2.0 and Y[-1, 0] == 2.0


def test_score_field_grid_draws_one_quiver_per_panel_with_a_shared_scale_per_column(linear, exact):
    _, fn = exact
    learned = score_from_eps(md.ExactEps(md.toy_mixture(), linear), linear)
    fig = score_field_grid({"learned": learned, "exact": fn}, [10, 500, 1000], data=torch.randn(50, 2))
    axes = np.array(fig.axes).reshape(2, 3)
    for j in range(3):
        quivers = [next(c for c in ax.collections if isinstance(c, Quiver)) for ax in axes[:, j]]
        assert quivers[0].scale == quivers[1].scale > 0
    assert axes[1, 0].get_title() == "exact, t = 10"
    # the field shrinks with noise: the t = 10 scale is far larger than the t = 1000 one
    s10 = next(c for c in axes[0, 0].collections if isinstance(c, Quiver)).scale
    s1000 = next(c for c in axes[0, 2].collections if isinstance(c, Quiver)).scale
    assert s10 > 3 * s1000
    plt.close(fig)


def test_plot_score_field_returns_labelled_axes(exact):
    _, fn = exact
    ax = plot_score_field(fn, 50, n_grid=6, data=torch.zeros(10, 2))
    assert ax.get_title() == "t = 50" and ax.get_xlabel() == "$x_1$"
    assert any(isinstance(c, Quiver) for c in ax.collections)
    plt.close(ax.figure)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda fn: score_on_grid(fn, 0), ValueError, "t must be a paper time index"),
        (lambda fn: score_on_grid(fn, 5, n_grid=1), ValueError, "n_grid"),
        (lambda fn: score_on_grid(fn, 5, lim=-1.0), ValueError, "lim"),
        (lambda fn: score_on_grid("not a function", 5), TypeError, "score_fn must be callable"),
        (lambda fn: score_field_grid({}, [5]), ValueError, "at least one named score function"),
        (lambda fn: score_field_grid({"a": fn}, []), ValueError, "at least one time index"),
        (lambda fn: score_field_grid({"a": fn, "b": fn}, [5], colors=["red"]), ValueError, "colors"),
    ],
)
def test_score_plots_reject_bad_arguments(exact, call, error, match):
    with pytest.raises(error, match=match):
        call(exact[1])
