"""Guidance: classifier-free (Ho & Salimans 2022) and its exact ground truth on Gaussian mixtures.

Classifier-free guidance mixes the conditional and the unconditional ε-prediction of one network,

    ε̃_θ(x_t, t, c) = (1 + w) ε_θ(x_t, t, c) − w ε_θ(x_t, t, ∅)          (Ho & Salimans 2022, Eq. 6)

with guidance strength w ≥ 0: w = 0 is the conditional model, larger w follows the *implicit
classifier* ∇ log p(c | x_t) = −(ε(x_t, t, c) − ε(x_t, t, ∅)) / √(1−ᾱ_t) more strongly. (diffusers and
Stable Diffusion write the same rule with the guidance scale s = 1 + w.) Chapter "Classifier-free
guidance"; derivation: "Derivation: Guidance and the implicit classifier".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .exact import GaussianMixture
from .schedules import Schedule, extract


def check_guidance(w: float) -> float:
    """``w`` as a float, or a ValueError naming it: the guidance strength must be finite and ≥ 0."""
    w = float(w)
    if not math.isfinite(w) or w < 0:
        raise ValueError(f"the guidance strength w must be finite and >= 0 (w = 0: the conditional model), got w = {w}")
    return w


def guided_eps(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """ε̃ = (1 + w) ε_θ(x_t, t, c) − w ε_θ(x_t, t, ∅) (Ho & Salimans 2022, Eq. 6).

    Equivalently ε_θ(c) + w (ε_θ(c) − ε_θ(∅)): the conditional prediction pushed further along the
    implicit classifier's direction. Affine in w; w = 0 returns ``eps_cond``.
    """
    if eps_cond.shape != eps_uncond.shape:
        raise ValueError(f"eps_cond and eps_uncond must have the same shape, got {tuple(eps_cond.shape)} and "
                         f"{tuple(eps_uncond.shape)}")
    w = check_guidance(w)
    return (1 + w) * eps_cond - w * eps_uncond


def tilted_gaussian(mean_c: float, var_c: float, mean_u: float, var_u: float, w: float) -> tuple[float, float]:
    """Mean and variance of p_w(x) ∝ N(x; μ_c, v_c)^(1+w) N(x; μ_u, v_u)^(−w), one dimension.

    The density that guidance with strength w aims at: p(x | c) p(c | x)^w with p(c | x) ∝ p(x | c)/p(x)
    (Bayes). Precisions add: 1/v_w = (1+w)/v_c − w/v_u, and μ_w = v_w ((1+w) μ_c/v_c − w μ_u/v_u).
    A proper density needs 1/v_w > 0, which holds for every w ≥ 0 when v_c ≤ v_u (a class is narrower
    than the data); then v_w falls with w (less diversity) and μ_w moves away from μ_u (a more
    typical member of class c, as the classifier sees it).
    """
    w = check_guidance(w)
    if var_c <= 0 or var_u <= 0:
        raise ValueError(f"variances must be > 0, got var_c = {var_c}, var_u = {var_u}")
    precision = (1 + w) / var_c - w / var_u
    if precision <= 0:
        raise ValueError(f"p(x | c)^(1+w) / p(x)^w is not normalizable: (1+w)/var_c - w/var_u = {precision} <= 0 "
                         f"(var_c = {var_c}, var_u = {var_u}, w = {w})")
    var = 1.0 / precision
    return var * ((1 + w) * mean_c / var_c - w * mean_u / var_u), var


class ExactConditionalEps(nn.Module):
    """The exact ε*(x_t, t, y) of a class-conditional Gaussian mixture, shaped like a conditional network.

    Component k of ``mixture`` belongs to class ``labels[k]`` ∈ {0, ..., C−1}. For a class c,
    p(x_0 | c) is the mixture of its components (weights renormalized); the null label y = C (as in
    :class:`minidiff.nets.UNet`) gives the whole mixture p(x_0), so ε*(x_t, t, ∅) is the unconditional
    optimum. Each is −√(1−ᾱ_t) ∇ log q(x_t | ·) (Eq. 4 per component). With :func:`minidiff.nets.guided`
    it gives exact classifier-free guidance. ``num_classes`` and ``learn_variance`` mirror the U-Net's.
    """

    learn_variance = False

    def __init__(self, mixture: GaussianMixture, labels: torch.Tensor | list[int], schedule: Schedule) -> None:
        super().__init__()
        labels = torch.as_tensor(labels, dtype=torch.long)
        K = mixture.means.shape[0]
        if labels.shape != (K,):
            raise ValueError(f"labels must give one class per component, shape ({K},), got {tuple(labels.shape)}")
        self.num_classes = int(labels.max()) + 1
        missing = sorted(set(range(self.num_classes)) - set(labels.tolist()))
        if int(labels.min()) < 0 or missing:
            raise ValueError(f"labels must cover 0..C-1 with no gaps, got classes {sorted(set(labels.tolist()))}")
        self.mixture, self.schedule, self.labels = mixture, schedule, labels
        self.classes = [GaussianMixture(mixture.means[labels == c], mixture.stds[labels == c],
                                        mixture.weights[labels == c]) for c in range(self.num_classes)]

    def class_mixture(self, c: int) -> GaussianMixture:
        """p(x_0 | c) for a class c, or p(x_0) for the null label c = C."""
        if not 0 <= c <= self.num_classes:
            raise ValueError(f"the label must be in [0, {self.num_classes}] ({self.num_classes}: the null label), "
                             f"got {c}")
        return self.mixture if c == self.num_classes else self.classes[c]

    def forward(self, xt: torch.Tensor, t: torch.Tensor | int, y: torch.Tensor | None = None) -> torch.Tensor:
        """ε*(x_t, t, y) for xt (B, D), t: int or (B,), y: (B,) labels (None: the null label)."""
        if y is None:
            return self.mixture.eps(xt, t, self.schedule)
        if y.shape != (xt.shape[0],):
            raise ValueError(f"y must hold one label per example, shape ({xt.shape[0]},), got {tuple(y.shape)}")
        t = torch.as_tensor(t, device=xt.device).expand(xt.shape[0]) if not torch.is_tensor(t) or t.dim() == 0 else t
        out = torch.empty_like(xt)
        for c in y.unique().tolist():
            rows = y == c
            out[rows] = self.class_mixture(int(c)).eps(xt[rows], t[rows], self.schedule).to(xt.dtype)
        return out

    def class_log_posterior(self, xt: torch.Tensor, t: torch.Tensor | int, c: int) -> torch.Tensor:
        """log p(c | x_t) by Bayes: log π_c + log q(x_t | c) − log q(x_t), (B,) float64."""
        if not 0 <= c < self.num_classes:
            raise ValueError(f"c must be a class in [0, {self.num_classes - 1}], got {c}")
        prior = self.mixture.weights[self.labels == c].sum()
        return (torch.log(prior) + self.classes[c].log_prob(xt, t, self.schedule)
                - self.mixture.log_prob(xt, t, self.schedule))


def implicit_classifier_gradient(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, t: torch.Tensor | int,
                                 schedule: Schedule) -> torch.Tensor:
    """∇_{x_t} log p(c | x_t) = −(ε(x_t, t, c) − ε(x_t, t, ∅)) / √(1−ᾱ_t): the classifier hidden in the two ε's.

    Bayes' rule gives ∇ log p(c | x_t) = ∇ log q(x_t | c) − ∇ log q(x_t), and each score is −ε/√(1−ᾱ_t).
    Exact for exact ε's; for a network it is the classifier that its two predictions imply.
    """
    if not torch.is_tensor(t):
        t = torch.full((eps_cond.shape[0],), int(t), dtype=torch.long)
    return -(eps_cond - eps_uncond) / extract(schedule.sqrt_one_minus_alpha_bars, t, eps_cond)


__all__ = ["ExactConditionalEps", "check_guidance", "guided_eps", "implicit_classifier_gradient", "tilted_gaussian"]
