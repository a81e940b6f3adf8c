"""Plot helpers build the figures they promise: the right number of axes, points and frames."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import minidiff as md  # noqa: E402
from minidiff import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def cloud(n: int = 200, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def test_plot_samples_keeps_the_data_visible_over_translucent_samples():
    ax = plotting.plot_samples(cloud(300), cloud(100, 1), title="moons")
    samples, data = ax.collections
    assert samples.get_offsets().shape == (300, 2) and data.get_offsets().shape == (100, 2)
    assert data.get_zorder() > samples.get_zorder() and samples.get_alpha() < 0.5
    assert ax.get_title() == "moons" and ax.get_xlabel() == "$x_1$"


def test_samples_grid_has_one_panel_per_named_cloud():
    fig = plotting.samples_grid({"a": cloud(), "b": cloud(), "c": cloud()}, {"a": cloud(), "b": cloud(), "c": cloud()})
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]


def test_plot_schedules_draws_every_schedule_in_three_panels():
    fig = plotting.plot_schedules(T=100)
    assert len(fig.axes) == 3
    assert all(len(ax.lines) == len(md.schedules.SCHEDULES) for ax in fig.axes)
    alpha_bar_linear = fig.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(alpha_bar_linear, md.get_schedule("linear", 100).alpha_bars.numpy()[1:])  # t = 1..T


def test_forward_snapshots_start_at_the_data_and_end_near_noise():
    x0 = md.make_toy("moons", 2000)
    sch = md.get_schedule("linear", 1000)
    snaps = plotting.forward_snapshots(x0, sch, [0, 500, 1000])
    assert [label for label, _ in snaps] == ["t = 0", "t = 500", "t = 1000"]
    torch.testing.assert_close(snaps[0][1], x0)
    # ᾱ_T ≈ 4e-5, so x_T is N(0, I) up to 0.6% of x_0: per-axis std 1 within 4 standard errors (1/√(2n)).
    assert snaps[2][1].std(0).sub(1).abs().max() < 4 / (2 * 2000) ** 0.5


def test_forward_snapshots_reject_t_outside_0_to_T():
    with pytest.raises(ValueError, match=r"ts must hold ints in \[0, T\] = \[0, 10\], got t = 11"):
        plotting.forward_snapshots(cloud(), md.get_schedule("linear", 10), [0, 11])


def test_snapshot_grid_has_rows_times_columns_axes():
    rows = [[(f"t = {t}", cloud(50, t)) for t in range(4)] for _ in range(3)]
    fig = plotting.snapshot_grid(rows, row_labels=["a", "b", "c"])
    assert len(fig.axes) == 12
    assert fig.axes[5].get_title() == "t = 1" and fig.axes[4].get_ylabel() == "b"
    assert fig.axes[0].collections[0].get_offsets().shape == (50, 2)
    assert len(fig.axes[8].get_xticks()) >= 3 and len(fig.axes[0].get_yticks()) >= 3  # axis ticks give the scale


def test_reverse_snapshots_pick_the_requested_paper_times():
    sch = md.get_schedule("linear", 20)
    model = md.gaussian_eps_model([0.0, 0.0], [0.5, 0.5], sch)
    snaps = plotting.reverse_snapshots(md.sample_loop(model, (30, 2), sch, seed=0), [20, 10, 0])
    assert [label for label, _ in snaps] == ["t = 20", "t = 10", "t = 0"]
    with pytest.raises(ValueError, match="not every t"):
        plotting.reverse_snapshots(md.sample_loop(model, (30, 2), sch, steps=3, seed=0), [15])


def test_plot_paths_draws_one_line_per_trajectory():
    paths = torch.cumsum(torch.randn(25, 10, 2, generator=torch.Generator().manual_seed(0)) * 0.1, dim=0)
    ax = plotting.plot_paths(paths, background=cloud(), title="forward")
    lines = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert len(lines) == 10 and all(len(lc.get_segments()) == 24 for lc in lines)
    alphas = lines[0].get_colors()[:, 3]
    assert alphas[0] < alphas[-1] == 1.0  # each path fades in towards its end
    starts, ends = (c for c in ax.collections if not isinstance(c, matplotlib.collections.LineCollection)
                    and c.get_offsets().shape == (10, 2))
    np.testing.assert_allclose(starts.get_offsets(), paths[0].numpy())
    np.testing.assert_allclose(ends.get_offsets(), paths[-1].numpy())
    with pytest.raises(ValueError, match=r"paths must have shape \(S, N, 2\)"):
        plotting.plot_paths(torch.zeros(5, 2))


def test_animation_html_embeds_every_frame_with_its_title():
    frames = [cloud(100) * (1 - i / 6) for i in range(6)]
    html = plotting.animate_points(frames, [f"step {i}" for i in range(6)], background=cloud(50, 1), dpi=40)
    assert html.count("data:image/png;base64") == 6
    assert "<script" in html and "anim" in html.lower()


def test_animation_default_resolution_is_readable():
    import inspect

    assert inspect.signature(plotting.animate_points).parameters["dpi"].default >= 100


def test_animation_rejects_too_many_frames_and_mismatched_titles():
    with pytest.raises(ValueError, match="at most"):
        plotting.animate_points([cloud(5)] * (plotting.MAX_FRAMES + 1))
    with pytest.raises(ValueError, match="one entry per frame"):
        plotting.animate_points([cloud(5)] * 3, ["a"])


def test_plot_helpers_name_a_bad_argument():
    with pytest.raises(ValueError, match=r"samples must have shape \(N, 2\), got \(10, 3\)"):
        plotting.plot_samples(torch.zeros(10, 3))
    with pytest.raises(TypeError, match="samples must be a torch.Tensor"):
        plotting.plot_samples([[0.0, 1.0]])
    with pytest.raises(ValueError, match="lim must be > 0"):
        plotting.plot_samples(cloud(), lim=-1.0)
