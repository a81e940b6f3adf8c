"""Metrics: distances between generated samples and data, reported beside their noise floor.

Part I (2D): :mod:`.two_d` (distances and their floors) and :mod:`.support` (mass off the support,
per-cluster mass). Part II (images), each loaded on first use:
:mod:`.frechet` (Fréchet distance and Inception Score on any features), :mod:`.classifier` (the
reference MNIST classifier and the figures read from it), :mod:`.likelihood` (bits/dim),
:mod:`.neighbours` (nearest training neighbours), :mod:`.fid` (FID and IS through torch-fidelity) and
:mod:`.runs` (one table row per trained run: sample quality over seeds and bits/dim) and
:mod:`.conditional` (accuracy, within-class Fréchet distance and diversity of class-conditional samples).
"""

from .support import ClusterMassError, cluster_error_floor, cluster_mass_error, near_reference, off_support_mass
from .two_d import (
    METRICS,
    Floor,
    FloorReport,
    MeanSpread,
    energy_distance,
    floor_stats,
    get_metric,
    median_bandwidth,
    mmd_rbf,
    noise_floor,
    over_seeds,
    real_pair_values,
    sliced_wasserstein,
    versus_floor,
)

# Part II names, each imported from its module on first use (``minidiff.metrics.frechet_distance``).
_LAZY = {
    "frechet": ("GaussianStats", "extract_features", "frechet_distance", "frechet_floor", "frechet_from_stats",
                "gaussian_stats", "inception_score"),
    "classifier": ("ClassifierConfig", "MnistCNN", "accuracy", "class_histogram", "classifier_features",
                   "classifier_frechet", "confident_share", "kl_to_uniform", "predict_proba", "reference_classifier"),
    "likelihood": ("BitsPerDim", "bits_per_dim"),
    "neighbours": ("Neighbours", "nearest_neighbours"),
    "fid": ("FidUnavailableError", "inception_metrics"),
    "conditional": ("ClassMetrics", "mean_pairwise_distance", "within_class_metrics"),
    "runs": ("RunMetrics", "SeedSpread", "evaluate_run", "seed_spread"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "METRICS", "FloorReport", "energy_distance", "get_metric", "median_bandwidth", "mmd_rbf", "noise_floor",
    "real_pair_values", "sliced_wasserstein", "versus_floor", "Floor", "MeanSpread", "floor_stats", "over_seeds",
    "ClusterMassError", "cluster_error_floor", "cluster_mass_error", "near_reference", "off_support_mass", *_LAZY_NAMES,
]
