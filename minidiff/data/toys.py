"""2D toy data for Part I: Swiss roll, two moons, S-curve and a Gaussian mixture.

The Swiss roll and the S-curve are 2D slices of scikit-learn's ``make_swiss_roll`` and
``make_s_curve``. The two moons are minidiff's own re-implementation of ``make_moons`` with random
angles (scikit-learn spaces them evenly; see ``_moons``). The mixture is :func:`toy_mixture`.

Each toy is centred and divided by one scale (its RMS radius, measured on 10⁶ draws), so it keeps
its shape and has roughly unit variance per axis. Deterministic given ``seed``.
Chapter "The forward process".
"""

from __future__ import annotations

import math

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

    ``noise``: the std of the Gaussian noise the generator adds (default 0.5 for the Swiss roll,
    0.05 for the moons and the S-curve; unused for the Gaussian mixture).
    """
    check_choice("toy", name, TOYS)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got n = {n!r}")
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
