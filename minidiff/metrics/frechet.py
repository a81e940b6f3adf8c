"""The Fréchet distance and the Inception Score, on features from any extractor.

- ``frechet_distance``: the Fréchet (2-Wasserstein) distance between the Gaussians fitted to two
  feature sets (Heusel et al. 2017, "FID"): ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½).
  With Inception-v3 pool features it is the FID; with the reference MNIST classifier's penultimate
  features (:mod:`minidiff.metrics.classifier`) it is the classifier Fréchet distance of Part II.
- ``inception_score``: exp(E_x KL(p(y|x) ‖ p(y))) (Salimans et al. 2016), averaged over splits.

The matrix square root is taken stably: tr((Σ₁ Σ₂)^½) = tr((Σ₁^½ Σ₂ Σ₁^½)^½), and Σ₁^½ Σ₂ Σ₁^½ is
symmetric positive semi-definite, so both roots come from symmetric eigendecompositions in float64
with round-off negatives clipped to 0 (no complex parts to discard, unlike ``scipy.linalg.sqrtm``).

**Small-n bias.** The estimate is biased upwards, and the bias shrinks with the sample size n: two
independent draws of n points from the *same* distribution do not give 0. Their mean term alone has
expectation E‖m₁ − m₂‖² = 2 tr Σ / n, and the covariance term adds a further positive bias that also
falls with n. An FID on 1k samples, on 5k and on 50k are therefore not comparable numbers, even for
one model; the convention of the papers (DDPM's FID 3.17 included) is 50k samples. Compare values at equal n only, and
beside the real-vs-real value at that n (:func:`frechet_floor`). Chapter "DDPM on MNIST".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, Union

import numpy as np
import torch

from .._checks import check_point_matrix

ArrayLike = Union[torch.Tensor, np.ndarray]
Extractor = Callable[[torch.Tensor], torch.Tensor]


class GaussianStats(NamedTuple):
    """Mean (D,) and covariance (D, D), float64, of a feature set of n rows."""

    mu: torch.Tensor
    sigma: torch.Tensor
    n: int


def gaussian_stats(features: ArrayLike) -> GaussianStats:
    """The mean and the unbiased covariance (divisor n − 1, as in FID) of features (N, D)."""
    f = check_point_matrix("features", features)
    mu = f.mean(0)
    centred = f - mu
    return GaussianStats(mu, centred.T @ centred / (f.shape[0] - 1), int(f.shape[0]))


def _psd_sqrt(a: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric PSD matrix, round-off negative eigenvalues clipped to 0."""
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_from_stats(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in closed form.

    ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½ (Dowson & Landau 1982; FID, Heusel et al. 2017).
    mu: (D,), sigma: (D, D) symmetric positive semi-definite. Returns a float ≥ 0.
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    d = mu1.shape[0] if mu1.dim() == 1 else -1
    for name, m, s in (("1", mu1, s1), ("2", mu2, s2)):
        if m.dim() != 1 or m.shape[0] != d or s.shape != (d, d):
            raise ValueError(f"mu{name} must be (D,) and sigma{name} (D, D) with D = {d}, "
                             f"got mu{name} {tuple(m.shape)} and sigma{name} {tuple(s.shape)}")
    root1 = _psd_sqrt(s1)
    cross = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp(min=0).sqrt().sum()
    value = float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross)
    return max(value, 0.0)  # ≥ 0 in exact arithmetic; clip round-off


def frechet_distance(features1: ArrayLike, features2: ArrayLike) -> float:
    """The Fréchet distance between the Gaussians fitted to features1 (N, D) and features2 (M, D).

    Biased upwards at small n (see the module docstring): compare values only at equal n, beside
    the real-vs-real value at that n. Chapter "DDPM on MNIST".
    """
    a = gaussian_stats(check_point_matrix("features1", features1))
    b = gaussian_stats(check_point_matrix("features2", features2))
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"features1 and features2 must have the same dimension D, got {a.mu.shape[0]} "
                         f"and {b.mu.shape[0]}")
    return frechet_from_stats(a.mu, a.sigma, b.mu, b.sigma)


@torch.no_grad()
def extract_features(extractor: Extractor, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``extractor`` applied to ``images`` (N, ...) in batches of ``batch_size``: (N, D) float64 on the CPU.

    ``extractor`` is any callable from a batch of images to (B, D) features (an ``nn.Module`` is put
    in eval mode by the caller). Each batch goes to the extractor's device when it is an ``nn.Module``
    or a method of one (``classifier.features``), else it stays on its own device.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got batch_size = {batch_size!r}")
    if not isinstance(images, torch.Tensor) or images.dim() < 2:
        raise ValueError(f"images must be a tensor of shape (N, ...), got {getattr(images, 'shape', type(images))}")
    device = _device_of(extractor)
    parts = [extractor(images[i:i + batch_size].to(device or images.device))
             .reshape(min(batch_size, len(images) - i), -1).double().cpu()
             for i in range(0, len(images), batch_size)]
    return torch.cat(parts)


def _device_of(extractor: Extractor) -> torch.device | None:
    """The device of an ``nn.Module`` extractor or of the module behind a bound method (``clf.features``)."""
    module = extractor if isinstance(extractor, torch.nn.Module) else getattr(extractor, "__self__", None)
    if isinstance(module, torch.nn.Module):
        p = next(module.parameters(), None)
        return None if p is None else p.device
    return None


def frechet_floor(features: ArrayLike, n: int, n_pairs: int = 3, seed: int = 0) -> list[float]:
    """Real-vs-real Fréchet distances: ``n_pairs`` times, two disjoint random subsets of n rows of
    ``features`` (real data), compared with each other. The floor a perfect model reaches at size n.

    Needs 2n ≤ len(features). The subsets come from ``seed``, so the values are reproducible.
    """
    f = check_point_matrix("features", features)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2 or 2 * n > f.shape[0]:
        raise ValueError(f"n must be an int with 2 <= n and 2n <= {f.shape[0]} (the number of real rows), "
                         f"got n = {n!r}")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive int, got n_pairs = {n_pairs!r}")
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_pairs):
        order = torch.randperm(f.shape[0], generator=gen)
        values.append(frechet_distance(f[order[:n]], f[order[n:2 * n]]))
    return values


def inception_score(probs: ArrayLike, splits: int = 10) -> tuple[float, float]:
    """The Inception Score exp(E_x KL(p(y|x) ‖ p(y))) of class probabilities ``probs`` (N, K).

    Salimans et al. 2016, as computed by the reference code and torch-fidelity: the N rows (in the
    given order) are cut into ``splits`` contiguous chunks; in each, p(y) is the chunk's mean row and
    the score is exp of the mean KL; returns (mean, standard deviation) over the chunks. 1 ≤ IS ≤ K:
    1 when every row is the same, K when each row is one-hot and the classes are balanced. With
    Inception-v3 on CIFAR-10-like images it is the IS papers report (e.g. 9.46, Ho et al. 2020 Table 1).
    """
    p = check_point_matrix("probs", probs)
    if bool((p < 0).any()) or not torch.allclose(p.sum(1), torch.ones(p.shape[0], dtype=p.dtype), atol=1e-6):
        raise ValueError("probs must hold probabilities: non-negative rows that sum to 1")
    if isinstance(splits, bool) or not isinstance(splits, int) or not 1 <= splits <= p.shape[0]:
        raise ValueError(f"splits must be an int in [1, N = {p.shape[0]}], got splits = {splits!r}")
    n = p.shape[0]
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits:(i + 1) * n // splits]
        marginal = chunk.mean(0, keepdim=True)
        kl = torch.where(chunk > 0, chunk * (chunk.log() - marginal.log()), torch.zeros_like(chunk)).sum(1)
        scores.append(math.exp(float(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
