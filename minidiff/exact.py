"""Ground truth: exact ε-predictors where the data distribution is known.

For a Gaussian mixture p(x_0) = Σ_k w_k N(μ_k, diag s_k²), every marginal of the forward process
is again a mixture, q(x_t) = Σ_k w_k N(√ᾱ_t μ_k, diag(ᾱ_t s_k² + 1 − ᾱ_t)), so its score and the
optimal ε-predictor ε*(x_t, t) = −√(1−ᾱ_t) ∇ log q(x_t) are known in closed form.
A finite training set is the mixture with s_k = 0: its ε* is the *ideal denoiser*, which can only
reproduce training points. Chapters "The reverse process and the ELBO" and "Scores and Langevin
dynamics".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .schedules import Schedule, extract


class GaussianMixture:
    """p(x) = Σ_k w_k N(x; μ_k, diag s_k²) in D dimensions.

    means: (K, D); stds: scalar, (K,) or (K, D), ≥ 0 (0 gives point masses); weights: (K,) or None.
    """

    def __init__(self, means: torch.Tensor, stds: torch.Tensor | float = 1.0,
                 weights: torch.Tensor | None = None) -> None:
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.dim() == 1:
            means = means[None]
        if means.dim() != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}")
        K, D = means.shape
        stds = torch.as_tensor(stds, dtype=torch.float64)
        if stds.dim() == 0:
            stds = stds.expand(K, D)
        elif stds.dim() == 1:
            stds = stds[:, None].expand(K, D)
        if stds.shape != (K, D) or bool((stds < 0).any()):
            raise ValueError(f"stds must be >= 0 and broadcast to (K, D) = {(K, D)}, got {tuple(stds.shape)}")
        if weights is None:
            weights = torch.full((K,), 1.0 / K, dtype=torch.float64)
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if weights.shape != (K,) or bool((weights <= 0).any()):
            raise ValueError(f"weights must be K = {K} positive numbers, got {weights.tolist()}")
        self.means, self.stds, self.weights = means, stds.clone(), weights / weights.sum()

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws, (n, D) float32."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        return (self.means[k] + self.stds[k] * z).float()

    def _marginal(self, t: torch.Tensor | None, schedule: Schedule | None, like: torch.Tensor):
        """Component means (B or 1, K, D) and variances of q(x_t) (of the data if t is None)."""
        if t is None:
            return self.means[None], (self.stds**2)[None]
        ab = extract(schedule.alpha_bars, t, like.double())  # (B, 1) or ()
        ab = ab.reshape(-1, 1, 1)
        return ab.sqrt() * self.means[None], ab * self.stds[None] ** 2 + (1 - ab)

    def _log_components(self, x: torch.Tensor, t, schedule):
        x = x.double().reshape(x.shape[0], 1, -1)
        mu, var = self._marginal(t, schedule, x[:, 0])
        mu, var, w = mu.to(x.device), var.to(x.device), self.weights.to(x.device)
        log_n = -0.5 * (((x - mu) ** 2 / var) + torch.log(2 * math.pi * var)).sum(-1)
        return log_n + torch.log(w), mu, var, x

    def log_prob(self, x: torch.Tensor, t: torch.Tensor | None = None,
                 schedule: Schedule | None = None) -> torch.Tensor:
        """log q(x_t) (or log p(x) if t is None), (B,) float64. Needs s_k > 0 when t is None."""
        log_c, *_ = self._log_components(x, t, schedule)
        return torch.logsumexp(log_c, dim=1)

    def score(self, x: torch.Tensor, t: torch.Tensor | None = None,
              schedule: Schedule | None = None) -> torch.Tensor:
        """∇_x log q(x_t) (or of the data if t is None), shaped like x."""
        log_c, mu, var, xf = self._log_components(x, t, schedule)
        r = torch.softmax(log_c, dim=1)[..., None]  # responsibilities (B, K, 1)
        s = (r * (mu - xf) / var).sum(1)
        return s.reshape(x.shape).to(x.dtype)

    def eps(self, xt: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
        """The optimal ε-predictor E[ε | x_t] = −√(1−ᾱ_t) ∇ log q(x_t)  (Sec. 3.2's score link)."""
        return -extract(schedule.sqrt_one_minus_alpha_bars, t, xt) * self.score(xt, t, schedule)

    def x0_mean(self, xt: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
        """E[x_0 | x_t] by Tweedie's formula, shaped like xt."""
        ab = extract(schedule.alpha_bars, t, xt)
        return (xt + (1 - ab) * self.score(xt, t, schedule)) / ab.sqrt()


class ExactEps(nn.Module):
    """A network-shaped wrapper, ``model(x_t, t) -> ε*``, around a known :class:`GaussianMixture`.

    Plugs into :func:`minidiff.sample_loop`, :func:`minidiff.negative_elbo` and the losses.
    """

    def __init__(self, mixture: GaussianMixture, schedule: Schedule) -> None:
        super().__init__()
        self.mixture, self.schedule = mixture, schedule

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.mixture.eps(xt, t, self.schedule)


def gaussian_eps_model(mean, std, schedule: Schedule) -> ExactEps:
    """ε* for data N(mean, diag std²): ε* = √(1−ᾱ_t)(x_t − √ᾱ_t μ)/(ᾱ_t s² + 1 − ᾱ_t)."""
    mean = torch.as_tensor(mean, dtype=torch.float64).reshape(1, -1)
    std = torch.as_tensor(std, dtype=torch.float64).reshape(1, -1).expand_as(mean)
    return ExactEps(GaussianMixture(mean, std), schedule)


def ideal_denoiser(data: torch.Tensor, schedule: Schedule) -> ExactEps:
    """The closed-form optimal ε-predictor for a finite training set (N, ...): it memorizes.

    E[x_0 | x_t] = Σ_i softmax_i(−‖x_t − √ᾱ_t x_i‖² / 2(1−ᾱ_t)) x_i, i.e. the mixture of point masses.
    """
    flat = torch.as_tensor(data).reshape(data.shape[0], -1)
    return ExactEps(GaussianMixture(flat, 0.0), schedule)
