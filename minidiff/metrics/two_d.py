"""Sample-based distances between two point clouds, for judging 2D samples against data.

Each metric compares two finite samples x (N, D) and y (M, D); on finite samples none of them is
exactly 0 even when both come from the same distribution. That residual is the *noise floor*:
the same metric between two independent draws of real data of the same size. A model is judged by
its ratio to the floor (1.0 = indistinguishable from a fresh draw of real data at this n).
Chapter "Training a denoiser".

- ``energy_distance``: 2 E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (Székely & Rizzo 2013), V-statistic (≥ 0).
- ``mmd_rbf``: squared maximum mean discrepancy with a Gaussian kernel (Gretton et al. 2012),
  V-statistic (≥ 0), bandwidth by the median heuristic.
- ``sliced_wasserstein``: the 2-Wasserstein distance averaged over random 1D projections
  (Rabin et al. 2011), √(mean_θ W₂²(θᵀX, θᵀY)).

:func:`floor_stats` measures the floor with its spread over many real pairs; :func:`over_seeds`
reports a metric as mean ± spread over sampling seeds. For data with a known support or known
clusters, :mod:`minidiff.metrics.support` adds the mass off the support and the per-cluster mass error.

The bars, fixed before any model was measured (tests/test_metrics_sensitivity.py,
tests/test_quality_2d.py, bench/quality_2d.py): a model passes at n = 5,000 if, on every sampling
seed, energy distance and sliced Wasserstein are ≤ 1.5× their floor (1,000-step ancestral sampling)
or ≤ 2× (50-step DDIM). Each of them must exceed 2× its floor when 5 % of a real sample is moved
into an empty region, so such a defect fails both bars. One real draw's energy distance has a
standard deviation of 0.37-0.69 times its floor at n = 5,000 (held-out toys, two references), so
"on every seed" is strict: fresh real draws of the held-out toys meet the 1.5x bars on three seeds
and five toys only about 3 % of the time
(bench/quality_2d_measured.md, config ``real_draws``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple, Union

import numpy as np
import torch

from .._checks import check_point_matrix

ArrayLike = Union[torch.Tensor, np.ndarray]
Metric = Callable[[ArrayLike, ArrayLike], float]

_BLOCK = 2048  # rows per block of pairwise distances: 2048 x 5000 float64 is 80 MB


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = check_point_matrix("x", x), check_point_matrix("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension D, got x {tuple(x.shape)} and y {tuple(y.shape)}")
    return x, y


def _mean_pairwise(a: torch.Tensor, b: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """mean over all pairs (i, j) of fn(‖a_i − b_j‖), computed in blocks of rows to bound memory."""
    total = 0.0
    for start in range(0, a.shape[0], _BLOCK):
        total += float(fn(torch.cdist(a[start:start + _BLOCK], b)).sum())
    return total / (a.shape[0] * b.shape[0])


def energy_distance(x: ArrayLike, y: ArrayLike) -> float:
    """Energy distance 2 E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ between samples x (N, D) and y (M, D).

    The V-statistic (diagonal pairs included), so it is ≥ 0 and 0 only for identical samples;
    it is the squared MMD of the distance kernel, so it scales like a squared distance.
    Chapter "Training a denoiser".
    """
    x, y = _pair(x, y)

    def identity(d: torch.Tensor) -> torch.Tensor:
        return d

    value = 2 * _mean_pairwise(x, y, identity) - _mean_pairwise(x, x, identity) - _mean_pairwise(y, y, identity)
    return max(value, 0.0)  # ≥ 0 in exact arithmetic; clip float round-off


def median_bandwidth(x: ArrayLike, y: ArrayLike, max_points: int = 1000) -> float:
    """The median heuristic: the median pairwise distance in the pooled sample (Gretton et al. 2012).

    Uses the first ``max_points`` points of each sample (deterministic, and O(max_points²)).
    """
    x, y = _pair(x, y)
    pooled = torch.cat([x[:max_points], y[:max_points]])
    d = torch.pdist(pooled)
    h = float(d.median())
    if h <= 0:
        raise ValueError("the median pairwise distance is 0 (most points coincide); pass bandwidth explicitly")
    return h


def mmd_rbf(x: ArrayLike, y: ArrayLike, bandwidth: float | None = None) -> float:
    """Squared MMD with the Gaussian kernel k(a, b) = exp(−‖a−b‖² / 2h²), V-statistic (≥ 0).

    MMD² = E k(X, X') + E k(Y, Y') − 2 E k(X, Y). ``bandwidth`` h defaults to the median heuristic
    (:func:`median_bandwidth`). Chapter "Training a denoiser".
    """
    x, y = _pair(x, y)
    if bandwidth is None:
        bandwidth = median_bandwidth(x, y)
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)) or not bandwidth > 0:
        raise ValueError(f"bandwidth must be a positive number, got bandwidth = {bandwidth!r}")
    gamma = 1.0 / (2.0 * float(bandwidth) ** 2)

    def kernel(d: torch.Tensor) -> torch.Tensor:
        return torch.exp(-gamma * d**2)

    value = _mean_pairwise(x, x, kernel) + _mean_pairwise(y, y, kernel) - 2 * _mean_pairwise(x, y, kernel)
    return max(value, 0.0)


def _quantiles(p: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Empirical quantile functions of the columns of p (N, L) at ``levels`` (Q,): (Q, L)."""
    return torch.quantile(p, levels, dim=0, interpolation="linear")


def sliced_wasserstein(x: ArrayLike, y: ArrayLike, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance √(mean_θ W₂²(θᵀx, θᵀy)) over random unit directions θ.

    In 1D, W₂ is the L² distance between the sorted samples (the quantile functions). The
    directions come from ``seed``, so a value is reproducible and comparable across calls.
    Unequal sample sizes compare quantile functions on a common grid. Same units as x.
    Chapter "Training a denoiser".
    """
    x, y = _pair(x, y)
    if isinstance(n_projections, bool) or not isinstance(n_projections, int) or n_projections < 1:
        raise ValueError(f"n_projections must be a positive int, got n_projections = {n_projections!r}")
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], n_projections, generator=gen, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, py = (x @ theta).sort(dim=0).values, (y @ theta).sort(dim=0).values
    if px.shape[0] != py.shape[0]:
        m = max(px.shape[0], py.shape[0])
        levels = (torch.arange(m, dtype=torch.float64) + 0.5) / m
        px, py = _quantiles(px, levels), _quantiles(py, levels)
    return math.sqrt(float(((px - py) ** 2).mean()))


METRICS: dict[str, Metric] = {
    "sliced_wasserstein": sliced_wasserstein,
    "energy_distance": energy_distance,
    "mmd_rbf": mmd_rbf,
}


def get_metric(metric: str | Metric) -> Metric:
    """A metric function from its name in :data:`METRICS` (or the function itself)."""
    if callable(metric):
        return metric
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid names are: {', '.join(map(repr, METRICS))}")
    return METRICS[metric]


def _metric_name(metric: str | Metric) -> str:
    return metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")


def _default_pairs(n_pairs: int) -> list[tuple[int, int]]:
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive int, got n_pairs = {n_pairs!r}")
    return [(101 + 2 * i, 102 + 2 * i) for i in range(n_pairs)]


def real_pair_values(
    make_data: Callable[[int, int], ArrayLike], metric: str | Metric = "sliced_wasserstein", n: int = 5000,
    seeds: Sequence[tuple[int, int]] | None = None, n_pairs: int = 3,
) -> list[float]:
    """The metric between two independent real draws of size n, once per seed pair.

    ``make_data(n, seed)`` returns n real points, e.g. ``lambda n, s: md.make_toy("moons", n, seed=s)``.
    ``seeds`` defaults to ``n_pairs`` pairs (101, 102), (103, 104), ...: disjoint from the seed-0
    training draws and the seed-1000+ reference draws used in the chapters. Their spread shows how
    much a metric moves between two equally good samples. Chapter "Training a denoiser".
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got n = {n!r}")
    seeds = _default_pairs(n_pairs) if seeds is None else list(seeds)
    if not seeds or any(len(pair) != 2 or pair[0] == pair[1] for pair in seeds):
        raise ValueError(f"seeds must be a non-empty list of pairs of different seeds, got {seeds!r}")
    fn = get_metric(metric)
    return [fn(make_data(n, a), make_data(n, b)) for a, b in seeds]


def noise_floor(
    make_data: Callable[[int, int], ArrayLike], metric: str | Metric = "sliced_wasserstein", n: int = 5000,
    seeds: Sequence[tuple[int, int]] | None = None, n_pairs: int = 3,
) -> float:
    """The noise floor: the mean of :func:`real_pair_values`, the metric between two independent real
    draws of size n. The smallest value a perfect model can expect at sample size n.
    Chapter "Training a denoiser".
    """
    return float(np.mean(real_pair_values(make_data, metric, n, seeds, n_pairs)))


class Floor(NamedTuple):
    """A noise floor with its spread: ``mean`` and ``spread`` (sample std) of the metric over ``values``,
    one per independent real pair; ``rel_spread`` = spread / mean for one pair, ``rel_error`` =
    spread / (mean √n_pairs), the relative standard error of ``mean``."""

    metric: str
    mean: float
    spread: float
    values: tuple[float, ...]

    @property
    def rel_spread(self) -> float:
        return self.spread / self.mean if self.mean > 0 else math.inf

    @property
    def rel_error(self) -> float:
        return self.rel_spread / math.sqrt(len(self.values))

    def __str__(self) -> str:
        return (f"{self.metric} floor = {self.mean:.4g} ± {self.spread:.2g} (one pair; mean known to "
                f"±{100 * self.rel_error:.1f} % from {len(self.values)} pairs)")


def floor_stats(
    make_data: Callable[[int, int], ArrayLike], metric: str | Metric = "sliced_wasserstein", n: int = 5000,
    n_pairs: int = 20, seeds: Sequence[tuple[int, int]] | None = None,
    references: Sequence[ArrayLike] | None = None,
) -> Floor:
    """The noise floor and its spread from ``n_pairs`` independent real pairs of size n.

    Like :func:`noise_floor`, with the spread stated: :attr:`Floor.spread` is how much the metric
    moves between two equally good samples, :attr:`Floor.rel_error` how well the mean is known.
    ``references``: the real draws a model is compared with in :func:`versus_floor`; then each floor
    value is a fresh real draw (seeds 101, 102, ...) scored exactly like a model, the mean of the
    metric against every reference. Averaging over 4 references roughly halves the spread of the
    energy distance of one sample (the reference's share of the noise averages out).
    Chapter "Training a denoiser".
    """
    if references is None:
        values = real_pair_values(make_data, metric, n, seeds, n_pairs)
    else:
        fn, refs = get_metric(metric), list(references)
        if not refs:
            raise ValueError("references must be a non-empty list of point clouds, got an empty list")
        values = []
        for i in range(n_pairs):
            draw = make_data(n, 101 + i)
            values.append(float(np.mean([fn(draw, r) for r in refs])))
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else math.inf
    return Floor(_metric_name(metric), float(np.mean(values)), spread, tuple(values))


class MeanSpread(NamedTuple):
    """A value measured once per seed: ``mean``, ``spread`` (sample std) and the ``values`` themselves
    (``worst`` = the largest, for bars that must hold on every seed)."""

    mean: float
    spread: float
    values: tuple[float, ...]

    @property
    def worst(self) -> float:
        return max(self.values)

    def __str__(self) -> str:
        return f"{self.mean:.3g} ± {self.spread:.2g} (max {self.worst:.3g}, {len(self.values)} seeds)"


def over_seeds(measure: Callable[[int], float], seeds: Sequence[int] = (0, 1, 2)) -> MeanSpread:
    """``measure(seed)`` for each seed (≥ 3 for a spread worth stating), as mean ± spread.

    E.g. ``over_seeds(lambda s: versus_floor(md.sample(model, (5000, 2), sch, seed=s), real(5000, 1000 + s),
    "energy_distance", floor=f.mean).ratio)``. Chapter "Training a denoiser".
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must be a non-empty list of ints, got an empty list")
    values = tuple(float(measure(s)) for s in seeds)
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return MeanSpread(float(np.mean(values)), spread, values)


class FloorReport(NamedTuple):
    """A metric value beside its noise floor; ``ratio`` = value / floor (1.0 is the best expected)."""

    metric: str
    value: float
    floor: float

    @property
    def ratio(self) -> float:
        return self.value / self.floor if self.floor > 0 else math.inf

    def __str__(self) -> str:
        return f"{self.metric} = {self.value:.4g} (noise floor {self.floor:.4g}, ratio {self.ratio:.2f}x)"


def versus_floor(
    samples: ArrayLike, reference: ArrayLike | Sequence[ArrayLike], metric: str | Metric = "sliced_wasserstein",
    floor: float | None = None, make_data: Callable[[int, int], ArrayLike] | None = None,
) -> FloorReport:
    """The metric between ``samples`` and real data, reported beside its noise floor.

    ``reference``: one real draw, or a list of independent draws (the value is then the mean over
    them, which halves the reference's share of the sampling noise). Give ``floor`` (from
    :func:`noise_floor`) or ``make_data`` to measure it at n = len(samples). Chapter "Training a denoiser".
    """
    fn = get_metric(metric)
    references = list(reference) if isinstance(reference, (list, tuple)) else [reference]
    if not references:
        raise ValueError("reference must be a point cloud or a non-empty list of them, got an empty list")
    if floor is None:
        if make_data is None:
            raise ValueError("versus_floor needs floor or make_data (to measure the noise floor)")
        floor = noise_floor(make_data, fn, int(samples.shape[0]))
    if not floor >= 0:
        raise ValueError(f"floor must be >= 0, got floor = {floor!r}")
    value = float(np.mean([fn(samples, ref) for ref in references]))
    return FloorReport(_metric_name(metric), value, float(floor))
