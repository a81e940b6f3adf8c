"""Plot helpers for Part I: samples against data, schedules, trajectories, animations (and score fields).

Each module draws one concept; every function returns the matplotlib figure or axes it drew.
"""

from .animation import MAX_FRAMES, animate_points
from .samples import plot_samples, samples_grid
from .schedules import plot_schedules
from .scores import plot_score_field, score_field_grid, score_on_grid
from .trajectories import forward_snapshots, plot_paths, reverse_snapshots, snapshot_grid

__all__ = [
    "MAX_FRAMES", "animate_points", "forward_snapshots", "plot_paths", "plot_samples", "plot_schedules",
    "reverse_snapshots", "samples_grid", "plot_score_field", "score_field_grid", "score_on_grid", "snapshot_grid",
]
