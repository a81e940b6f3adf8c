"""2D toy data for Part I: Swiss roll, two moons, S-curve and a Gaussian mixture.

The Swiss roll and the S-curve are 2D slices of scikit-learn's ``make_swiss_roll`` and
``make_s_curve``. The two moons are minidiff's own re-implementation of ``make_moons`` with random
angles (scikit-learn spaces them evenly; see ``_moons``). The mixture is :func:`toy_mixture`.

Each toy is centred and divided by one scale (its RMS radius, measured on 10⁶ draws), so it keeps
its shape and has roughly unit variance per axis. Deterministic given ``seed``.
Chapter "The forward process". The held-out toys (:data:`HELD_OUT_TOYS`, sharp edges, separated
clusters, thin curves) are for checking that the library's defaults generalize (tests, benches).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from .._checks import check_choice
from ..exact import GaussianMixture

TOYS = ("swiss_roll", "moons", "s_curve", "gaussian_mixture")

# (centre, scale) per toy, measured once on 10^6 draws with the noise levels below.
_NORMALIZATION = {
    "swiss_roll": ((2.005, 0.212), 6.810),
    "moons": ((0.500, 0.250), 0.707),
    "s_curve": ((0.0, 0.0), 1.102),
}


def toy_mixture() -> GaussianMixture:
    """Eight Gaussians (std 0.15) evenly spaced on a circle of radius 1.4: the known-score toy."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = 1.4 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return GaussianMixture(means, 0.15)


def _moons(n: int, noise: float, rng: np.random.RandomState) -> np.ndarray:
    """Two interleaving half circles, as scikit-learn's ``make_moons``, but with *random* angles.

    scikit-learn spaces the angles evenly, so two of its draws are not independent samples and the
    noise floor between them would be artificially low; here θ ~ U[0, π] for every point.
    """
    n_out = n // 2
    theta = rng.uniform(0.0, np.pi, n)
    outer = np.stack([np.cos(theta[:n_out]), np.sin(theta[:n_out])], axis=1)
    inner = np.stack([1 - np.cos(theta[n_out:]), 0.5 - np.sin(theta[n_out:])], axis=1)
    x = np.concatenate([outer, inner]) + noise * rng.standard_normal((n, 2))
    return x[rng.permutation(n)]


def make_toy(name: str, n: int = 5000, seed: int = 0, noise: float | None = None) -> torch.Tensor:
    """n points of a 2D toy, (n, 2) float32, roughly unit scale; the Swiss roll is its 2D (x, z) slice.

    ``name``: one of :data:`TOYS` (the chapters' toys) or :data:`HELD_OUT_TOYS` (for tests and benches).
    ``noise``: the std of the Gaussian noise the generator adds (default 0.5 for the Swiss roll,
    0.05 for the moons and the S-curve; unused for the Gaussian mixture and the held-out toys).
    """
    check_choice("toy", name, TOYS + HELD_OUT_TOYS)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got n = {n!r}")
    if name in HELD_OUT_TOYS:
        if noise is not None:
            raise ValueError(f"noise is not used by the held-out toy {name!r}, got noise = {noise!r}")
        return _held_out(name, n, torch.Generator().manual_seed(seed)).float()
    if name == "gaussian_mixture":
        return toy_mixture().sample(n, generator=torch.Generator().manual_seed(seed))
    from sklearn import datasets  # lazy: scikit-learn is slow to import

    rng = np.random.RandomState(seed)
    if name == "swiss_roll":
        x, _ = datasets.make_swiss_roll(n, noise=0.5 if noise is None else noise, random_state=rng)
        x = x[:, [0, 2]]
    elif name == "moons":
        x = _moons(n, 0.05 if noise is None else noise, rng)
    else:
        x, _ = datasets.make_s_curve(n, noise=0.05 if noise is None else noise, random_state=rng)
        x = x[:, [0, 2]]
    centre, scale = _NORMALIZATION[name]
    return torch.from_numpy((x - np.asarray(centre)) / scale).float()


# ---------------------------------------------------------------- held-out toys (tests and benches)
# 2D distributions that no chapter trains on, for checking that the library defaults generalize:
# sharp edges ("checkerboard"), separated clusters of unequal weight ("blobs", "grid") and thin curves
# ("rings", "spiral"). Each is centred and scaled to unit RMS per coordinate, like the toys above, and
# comes with its support and its clusters (:func:`toy_structure`) for the support metrics.
HELD_OUT_TOYS = ("checkerboard", "blobs", "rings", "grid", "spiral")

_CELL = math.sqrt(3) / 2  # checkerboard cell side: the marginal is uniform on [-2c, 2c], variance 4c²/3 = 1
_BLOB_CENTRES = ((-1.2, -1.0), (0.0, -1.4), (1.3, -0.6), (1.0, 1.0), (-0.3, 1.2), (-1.4, 0.5))
_BLOB_WEIGHTS = (0.30, 0.25, 0.15, 0.12, 0.10, 0.08)
_BLOB_STD = 0.08
_RING_RADII, _RING_STD = (2.0, 1.0), 0.04  # raw units; mass proportional to circumference (2/3, 1/3)
_GRID_STD = 0.1  # raw units: 4 x 4 Gaussians on the integer grid (-1.5 ... 1.5)²
_SPIRAL_TURNS, _SPIRAL_STD = 1.5, 0.04  # raw radius grows from 0.3 to 1.8 over the turns
_SUPPORT_SIGMAS = 4.0  # a Gaussian toy's support: within 4 std of its centre line (mass outside < 10⁻³)


class ToyStructure(NamedTuple):
    """What is known about a held-out toy: its support and its clusters (None where it has none).

    ``support(x)``: (N, 2) -> (N,) bool, True where the toy has mass (for a Gaussian toy: within
    4 std of a centre or a ring; the real mass outside is below 10⁻³). ``assign(x)``: (N, 2) -> (N,)
    long, the cluster of each point (nearest centre, nearest ring); ``shares``: (K,) the true share of
    each cluster. Used by :mod:`minidiff.metrics.support`.
    """

    support: Callable[[torch.Tensor], torch.Tensor]
    assign: Callable[[torch.Tensor], torch.Tensor] | None
    shares: torch.Tensor | None


def _mixture_scale(centres: torch.Tensor, weights: torch.Tensor, std: float) -> tuple[torch.Tensor, float]:
    """The mean and the per-coordinate RMS (about the mean) of an isotropic Gaussian mixture, exactly."""
    mean = (weights[:, None] * centres).sum(0)
    second = (weights * ((centres - mean) ** 2).sum(1)).sum() / 2 + std**2
    return mean, float(second.sqrt())


def _blobs() -> tuple[torch.Tensor, torch.Tensor, float]:
    """(centres (6, 2), weights (6,), std), normalized."""
    c, w = torch.tensor(_BLOB_CENTRES, dtype=torch.float64), torch.tensor(_BLOB_WEIGHTS, dtype=torch.float64)
    mean, s = _mixture_scale(c, w, _BLOB_STD)
    return (c - mean) / s, w, _BLOB_STD / s


def _grid() -> tuple[torch.Tensor, torch.Tensor, float]:
    g = torch.arange(4, dtype=torch.float64) - 1.5
    c = torch.cartesian_prod(g, g)
    w = torch.full((16,), 1 / 16, dtype=torch.float64)
    mean, s = _mixture_scale(c, w, _GRID_STD)
    return (c - mean) / s, w, _GRID_STD / s


def _rings() -> tuple[torch.Tensor, torch.Tensor, float]:
    """(radii (2,), weights (2,), radial std), normalized (E|x|² = Σ w (R² + σ²) = 2 per point)."""
    r = torch.tensor(_RING_RADII, dtype=torch.float64)
    w = r / r.sum()
    s = math.sqrt(float((w * (r**2 + _RING_STD**2)).sum()) / 2)
    return r / s, w, _RING_STD / s


def _spiral_curve(u: torch.Tensor) -> torch.Tensor:
    """The raw spiral's centre line at u ∈ [0, 1]: radius 0.3 + 1.5 u, angle 2π · turns · u."""
    angle, radius = 2 * math.pi * _SPIRAL_TURNS * u, 0.3 + 1.5 * u
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)


_SPIRAL_NORM: tuple[torch.Tensor, float] | None = None


def _spiral_norm() -> tuple[torch.Tensor, float]:
    """(mean, scale) of the spiral: points uniform in u along the centre line plus N(0, σ²I) noise.

    Computed once by quadrature on 10⁵ points of the centre line (exact up to 10⁻⁵).
    """
    global _SPIRAL_NORM
    if _SPIRAL_NORM is None:
        line = _spiral_curve((torch.arange(100_000, dtype=torch.float64) + 0.5) / 100_000)
        mean = line.mean(0)
        _SPIRAL_NORM = (mean, math.sqrt(float(((line - mean) ** 2).sum(1).mean()) / 2 + _SPIRAL_STD**2))
    return _SPIRAL_NORM


def _held_out(name: str, n: int, gen: torch.Generator) -> torch.Tensor:
    """n points of a held-out toy, float64, normalized."""
    def pick(weights: torch.Tensor) -> torch.Tensor:
        return torch.multinomial(weights, n, replacement=True, generator=gen)

    if name == "checkerboard":
        cell = torch.randint(0, 8, (n,), generator=gen)  # the 8 black cells (i + j even) of a 4 x 4 board
        i = cell // 2
        j = 2 * (cell % 2) + i % 2
        offset = torch.rand(n, 2, generator=gen, dtype=torch.float64)
        return (torch.stack([i, j], dim=1).double() + offset - 2.0) * _CELL
    if name in ("blobs", "grid"):
        centres, weights, std = _blobs() if name == "blobs" else _grid()
        return centres[pick(weights)] + std * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    if name == "rings":
        radii, weights, std = _rings()
        r = radii[pick(weights)] + std * torch.randn(n, generator=gen, dtype=torch.float64)
        angle = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
        return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
    line = _spiral_curve(torch.rand(n, generator=gen, dtype=torch.float64))
    mean, s = _spiral_norm()
    return (line + _SPIRAL_STD * torch.randn(n, 2, generator=gen, dtype=torch.float64) - mean) / s


def _nearest(points: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of the nearest centre (K, 2) to each point (N, 2), in float64, in blocks of rows."""
    parts = [torch.cdist(block, centres.double()).min(dim=1) for block in points.double().split(2048)]
    return torch.cat([p.values for p in parts]), torch.cat([p.indices for p in parts])


def toy_structure(name: str) -> ToyStructure:
    """The support and the clusters of a held-out toy (:data:`HELD_OUT_TOYS`); see :class:`ToyStructure`.

    checkerboard: the 8 black cells exactly, one cluster each (share 1/8). blobs, grid: within 4 std
    of a centre; clusters by nearest centre, shares the mixture weights. rings: within 4 std of a
    ring's radius; clusters by nearest radius, shares 2/3 and 1/3. spiral: within 4 std of its centre
    line; no clusters.
    """
    check_choice("held-out toy", name, HELD_OUT_TOYS)
    k = _SUPPORT_SIGMAS
    if name == "checkerboard":
        def on_board(x: torch.Tensor) -> torch.Tensor:
            ij = torch.floor(x.double() / _CELL + 2.0)
            inside = ((ij >= 0) & (ij <= 3)).all(dim=1)
            return inside & (ij.sum(dim=1) % 2 == 0)

        g = torch.arange(4, dtype=torch.float64)
        cells = torch.cartesian_prod(g, g)
        centres = (cells[cells.sum(1) % 2 == 0] + 0.5 - 2.0) * _CELL
        return ToyStructure(on_board, lambda x: _nearest(x, centres)[1], torch.full((8,), 1 / 8, dtype=torch.float64))
    if name in ("blobs", "grid"):
        centres, weights, std = _blobs() if name == "blobs" else _grid()
        return ToyStructure(lambda x: _nearest(x, centres)[0] <= k * std, lambda x: _nearest(x, centres)[1], weights)
    if name == "rings":
        radii, weights, std = _rings()

        def ring_distance(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return (x.double().norm(dim=1, keepdim=True) - radii).abs().min(dim=1)

        return ToyStructure(lambda x: ring_distance(x)[0] <= k * std, lambda x: ring_distance(x)[1], weights)
    mean, s = _spiral_norm()
    line = (_spiral_curve((torch.arange(2000, dtype=torch.float64) + 0.5) / 2000) - mean) / s  # spacing σ/8
    return ToyStructure(lambda x: _nearest(x, line)[0] <= k * _SPIRAL_STD / s, None, None)
