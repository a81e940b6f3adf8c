"""The forward-process widget redraws x_t when its controls change."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import minidiff as md  # noqa: E402

pytest.importorskip("ipywidgets")


def shown(w) -> torch.Tensor:
    """The points the widget's scatter plot currently draws."""
    return torch.from_numpy(np.asarray(w.scatter.get_offsets(), dtype=np.float64))


def make_widget(**kwargs):
    return md.widgets.ForwardProcessWidget(md.make_toy("moons", 500), T=100, **kwargs)


def test_widget_starts_at_the_data():
    w = make_widget()
    torch.testing.assert_close(shown(w), w.x0)
    assert "t = 0" in w.ax.get_title()


def test_moving_the_t_slider_redraws_x_t_from_eq_4():
    w = make_widget()
    w.t_slider.value = 60
    sch = md.get_schedule("linear", 100)
    expected = md.q_sample(w.x0, 60, sch, noise=w.noise)
    torch.testing.assert_close(shown(w), expected)
    assert f"{float(sch.alpha_bars[60]):.3f}" in w.ax.get_title() and "t = 60" in w.ax.get_title()


def test_changing_the_schedule_redraws_with_that_schedule():
    w = make_widget(t=50)
    before = shown(w).clone()
    w.schedule_dropdown.value = "cosine"
    after = shown(w)
    expected = md.q_sample(w.x0, 50, md.get_schedule("cosine", 100), noise=w.noise)
    torch.testing.assert_close(after, expected)
    assert not torch.allclose(before, after)
    assert w.ax.get_title().startswith("cosine")


def test_widget_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown schedule 'exp'"):
        make_widget(schedule="exp")
    with pytest.raises(ValueError, match=r"t must be an int in \[0, T\] = \[0, 100\], got t = 101"):
        make_widget(t=101)
    with pytest.raises(ValueError, match=r"data must have shape \(N, 2\)"):
        md.widgets.ForwardProcessWidget(torch.zeros(10, 3))
