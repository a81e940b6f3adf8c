"""A live control of the forward process for Jupyter and Colab: drag t, pick a schedule, watch x_t.

x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (Eq. 4) with one fixed draw ε, so each point slides continuously as t
moves. ipywidgets is imported only when a widget is built. The static book cannot run Python; it
shows the HTML animation of :func:`minidiff.plotting.animate_points` instead.
Chapter "The forward process".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._checks import check_choice
from .forward import q_sample
from .schedules import SCHEDULES, Schedule, get_schedule


class ForwardProcessWidget:
    """A t slider (the paper's t: 0 = data, T = last step) and a schedule dropdown over a scatter of x_t.

    data: (N, 2) points x_0 (the first ``max_points`` are drawn). Display it as the last expression of
    a cell, or with ``IPython.display.display(w)``. ``t_slider`` and ``schedule_dropdown`` are the
    ipywidgets controls; ``fig``/``ax``/``scatter`` the matplotlib objects; ``points()`` the x_t shown.
    """

    def __init__(self, data: torch.Tensor, *, T: int = 1000, t: int = 0, schedule: str = "linear",
                 schedules: Sequence[str] = SCHEDULES, seed: int = 0, max_points: int = 2000,
                 lim: float = 3.0) -> None:
        import ipywidgets as W
        import matplotlib.pyplot as plt

        from .plotting._common import SAMPLE_COLOR, square, to_points

        to_points("data", data)
        for name in schedules:
            check_choice("schedule", name, SCHEDULES)
        check_choice("schedule", schedule, tuple(schedules))
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= T:
            raise ValueError(f"t must be an int in [0, T] = [0, {T}], got t = {t!r}")
        self.x0 = torch.as_tensor(data)[:max_points].double()
        self.noise = torch.randn(self.x0.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        self.T = T
        self._schedules: dict[str, Schedule] = {}
        self.t_slider = W.IntSlider(value=t, min=0, max=T, step=1, description="t", continuous_update=True)
        self.schedule_dropdown = W.Dropdown(options=list(schedules), value=schedule, description="schedule")
        self.output = W.Output()
        self.fig, self.ax = plt.subplots(figsize=(4, 4))
        plt.close(self.fig)  # shown through the Output widget only, never twice
        p = self.points().numpy()
        self.scatter = self.ax.scatter(p[:, 0], p[:, 1], s=2, c=SAMPLE_COLOR, alpha=0.6, linewidths=0)
        square(self.ax, lim)
        self.ax.set_xlabel("$x_1$")
        self.ax.set_ylabel("$x_2$")
        self.widget = W.VBox([W.HBox([self.t_slider, self.schedule_dropdown]), self.output])
        self.t_slider.observe(self._on_change, names="value")
        self.schedule_dropdown.observe(self._on_change, names="value")
        self.update()

    def schedule(self) -> Schedule:
        """The selected schedule (built once per name)."""
        name = self.schedule_dropdown.value
        if name not in self._schedules:
            self._schedules[name] = get_schedule(name, self.T)
        return self._schedules[name]

    def alpha_bar(self) -> float:
        """ᾱ_t at the slider's t (1 at t = 0)."""
        return float(self.schedule().alpha_bars[self.t_slider.value])

    def points(self) -> torch.Tensor:
        """x_t for the current slider and schedule, (N, 2) float64 (Eq. 4; x_0 itself at t = 0)."""
        return q_sample(self.x0, self.t_slider.value, self.schedule(), noise=self.noise)

    def update(self) -> None:
        """Redraw x_t and the title, and show the figure in the output area."""
        from IPython.display import clear_output, display

        self.scatter.set_offsets(self.points().numpy())
        name, t = self.schedule_dropdown.value, self.t_slider.value
        self.ax.set_title(f"{name}: t = {t}, " + r"$\bar\alpha_t$" + f" = {self.alpha_bar():.3f}")
        with self.output:
            clear_output(wait=True)
            display(self.fig)

    def _on_change(self, change: dict) -> None:
        self.update()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
