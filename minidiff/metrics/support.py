"""Metrics for 2D data with a known support or known clusters: mass off the support, per-cluster mass.

Energy distance and sliced Wasserstein (:mod:`minidiff.metrics.two_d`) average over the whole
distribution, so a few percent of samples in the wrong place can hide inside their noise floor.
These two count them directly:

- :func:`off_support_mass`: the share of samples where the data has no mass (a support indicator:
  the toy's exact support, :func:`minidiff.data.toy_structure`, or :func:`near_reference`, within
  a radius of some real point);
- :func:`cluster_mass_error`: each sample goes to its cluster (nearest centre, nearest ring); the
  error is |share − true share|, summed over clusters (twice the total-variation distance between
  the cluster histograms) and its maximum.

A real sample of the same size is the reference: its off-support mass is ~0 and its cluster error
is multinomial noise (:func:`cluster_error_floor`). The bars, fixed before any model was measured:
off-support mass at most 1 percentage point (ancestral) or 2 points (DDIM-50) above the real
sample's, and cluster error (sum) ≤ 1.5× / 2× its real floor; a 5 % move of real mass into an
empty region must exceed both (tests/test_metrics_sensitivity.py). Chapter "Training a denoiser".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from .._checks import check_choice, check_point_matrix
from .two_d import ArrayLike, Floor

Support = Callable[[torch.Tensor], torch.Tensor]


def off_support_mass(samples: ArrayLike, support: Support) -> float:
    """The share of ``samples`` (N, D) outside the support: mean of ``not support(x)``.

    ``support``: (N, D) -> (N,) bool, True where the data has mass. Chapter "Training a denoiser".
    """
    x = check_point_matrix("samples", samples)
    inside = support(x)
    if not isinstance(inside, torch.Tensor) or inside.shape != (x.shape[0],):
        raise ValueError(f"support must return a (N,) bool tensor, got {type(inside).__name__} "
                         f"of shape {tuple(getattr(inside, 'shape', ()))} for N = {x.shape[0]}")
    return float((~inside.bool()).double().mean())


def near_reference(reference: ArrayLike, radius: float) -> Support:
    """A support indicator from real points: True within ``radius`` of the nearest of ``reference`` (M, D).

    For data whose support is not known in closed form: take many real points (M ≫ N) and a radius
    a few times their typical spacing. Chapter "Training a denoiser".
    """
    ref = check_point_matrix("reference", reference)
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0:
        raise ValueError(f"radius must be a positive number, got radius = {radius!r}")

    def support(x: torch.Tensor) -> torch.Tensor:
        d = torch.cat([torch.cdist(block.double(), ref).min(dim=1).values for block in x.split(1024)])
        return d <= radius

    return support


class ClusterMassError(NamedTuple):
    """|share − true share| per cluster: ``total`` (summed over clusters) and ``max``; ``shares`` measured."""

    total: float
    max: float
    shares: tuple[float, ...]


def cluster_mass_error(samples: ArrayLike, assign: Callable[[torch.Tensor], torch.Tensor],
                       shares: ArrayLike) -> ClusterMassError:
    """The per-cluster mass error of ``samples`` (N, D) against the true ``shares`` (K,) (summing to 1).

    ``assign``: (N, D) -> (N,) long, the cluster of each point in 0..K−1 (e.g. the nearest centre).
    Chapter "Training a denoiser".
    """
    x = check_point_matrix("samples", samples)
    true = torch.as_tensor(shares, dtype=torch.float64).flatten()
    if true.numel() < 1 or (true < 0).any() or abs(float(true.sum()) - 1) > 1e-6:
        raise ValueError(f"shares must be >= 0 and sum to 1, got shares = {true.tolist()}")
    labels = assign(x)
    if labels.shape != (x.shape[0],) or int(labels.min()) < 0 or int(labels.max()) >= true.numel():
        raise ValueError(f"assign must return (N,) labels in 0..{true.numel() - 1}, got shape "
                         f"{tuple(labels.shape)} and range {int(labels.min())}..{int(labels.max())}")
    got = torch.bincount(labels.long(), minlength=true.numel()).double() / x.shape[0]
    err = (got - true).abs()
    return ClusterMassError(float(err.sum()), float(err.max()), tuple(got.tolist()))


def cluster_error_floor(make_data: Callable[[int, int], ArrayLike], assign: Callable[[torch.Tensor], torch.Tensor],
                        shares: ArrayLike, n: int = 5000, n_draws: int = 20, stat: str = "max") -> Floor:
    """The cluster error (``stat``: "max" or "total") of real samples of size n, over ``n_draws`` draws.

    The multinomial noise a perfect model also has. Real draws use seeds 101, 102, ... (as
    :func:`minidiff.metrics.noise_floor`). Chapter "Training a denoiser".
    """
    check_choice("stat", stat, ("max", "total"))
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 2:
        raise ValueError(f"n_draws must be an int >= 2, got n_draws = {n_draws!r}")
    values = tuple(getattr(cluster_mass_error(make_data(n, 101 + i), assign, shares), stat) for i in range(n_draws))
    return Floor(f"cluster_mass_error_{stat}", float(np.mean(values)), float(np.std(values, ddof=1)), values)
