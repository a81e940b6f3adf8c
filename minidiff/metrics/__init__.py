"""Metrics: distances between generated samples and data, reported beside their noise floor."""

from .two_d import (
    METRICS,
    FloorReport,
    energy_distance,
    get_metric,
    median_bandwidth,
    mmd_rbf,
    noise_floor,
    real_pair_values,
    sliced_wasserstein,
    versus_floor,
)

__all__ = [
    "METRICS", "FloorReport", "energy_distance", "get_metric", "median_bandwidth", "mmd_rbf", "noise_floor",
    "real_pair_values", "sliced_wasserstein", "versus_floor",
]
