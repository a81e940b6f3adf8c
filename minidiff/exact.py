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

from ._checks import check_float_tensor, check_int, check_timesteps
from .schedules import Schedule, extract


def _first_bad(name: str, a: torch.Tensor, bad: torch.Tensor) -> str:
    """``name[i, j] = value`` for the first True entry of ``bad``."""
    idx = tuple(int(i) for i in bad.nonzero()[0])
    return f"{name}[{', '.join(map(str, idx))}] = {a[idx].item()}"


class GaussianMixture:
    """p(x) = Σ_k w_k N(x; μ_k, diag s_k²) in D dimensions, and its forward marginals q(x_t).

    Eq. (4) applied to each component gives q(x_t) = Σ_k w_k N(√ᾱ_t μ_k, diag(ᾱ_t s_k² + 1 − ᾱ_t));
    chapters "The reverse process and the ELBO" (the exact denoiser as ground truth) and "Scores and
    Langevin dynamics" (derivation: "Scores, denoising score matching and Langevin dynamics").
    means: (K, D); stds: scalar, (K,) or (K, D), ≥ 0 (0 gives point masses); weights: (K,) > 0 or
    None (equal). The methods take x (B, D) (or (B, ...) with D values per example) and, for the
    marginals, t: int or (B,) in [1, T] with its ``schedule``.
    """

    def __init__(self, means: torch.Tensor, stds: torch.Tensor | float = 1.0,
                 weights: torch.Tensor | None = None) -> None:
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.dim() == 1:
            means = means[None]
        if means.dim() != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}")
        if not bool(torch.isfinite(means).all()):
            raise ValueError(f"means must be finite, got {_first_bad('means', means, ~torch.isfinite(means))}")
        K, D = means.shape
        stds = torch.as_tensor(stds, dtype=torch.float64)
        if stds.dim() == 0:
            stds = stds.expand(K, D)
        elif stds.dim() == 1 and stds.shape[0] == K:
            stds = stds[:, None].expand(K, D)
        if stds.shape != (K, D):
            raise ValueError(f"stds must be a scalar, (K,) or (K, D) with (K, D) = {(K, D)}, got shape "
                             f"{tuple(stds.shape)}")
        bad = ~torch.isfinite(stds) | (stds < 0)
        if bool(bad.any()):
            raise ValueError(f"stds must be finite and >= 0, got {_first_bad('stds', stds, bad)}")
        if weights is None:
            weights = torch.full((K,), 1.0 / K, dtype=torch.float64)
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if weights.shape != (K,) or not bool(torch.isfinite(weights).all()) or bool((weights <= 0).any()):
            raise ValueError(f"weights must be K = {K} finite positive numbers, got {weights.tolist()}")
        self.means, self.stds, self.weights = means, stds.clone(), weights / weights.sum()

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n ≥ 1 draws x_0 ~ p(x), (n, D) float32; chapter "The reverse process and the ELBO"."""
        check_int("n", n, ge=1)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        return (self.means[k] + self.stds[k] * z).float()

    def _check(self, x: torch.Tensor, t: torch.Tensor | int | None, schedule: Schedule | None, name: str = "x",
               need_t: bool = False, need_stds: bool = False) -> torch.Tensor | None:
        """Check x (B, ...) with D values per example, and t (with its schedule) or None; return t."""
        check_float_tensor(name, x)
        if x.dim() == 0 or x[0].numel() != self.dim:
            raise ValueError(f"{name} must have shape (B, {self.dim}) (D = {self.dim} values per example), "
                             f"got {tuple(x.shape)}")
        if t is None:
            if need_t:
                raise ValueError("t must be given (an int or (B,) timesteps), got t = None")
            if need_stds and bool((self.stds == 0).any()):
                raise ValueError("the data density needs stds > 0 (t = None), got "
                                 + _first_bad("stds", self.stds, self.stds == 0) + "; pass t and schedule")
            return None
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a minidiff Schedule when t is given, got {type(schedule).__name__}")
        return check_timesteps(t, schedule.T, batch=x.shape[0], x_name=name, device=x.device)

    def _marginal(self, t: torch.Tensor | None, schedule: Schedule | None,
                  like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Component means (B or 1, K, D) and variances of q(x_t) (of the data if t is None)."""
        if t is None:
            return self.means[None], (self.stds**2)[None]
        ab = extract(schedule.alpha_bars, t, like.double())  # (B, 1) or ()
        ab = ab.reshape(-1, 1, 1)
        return ab.sqrt() * self.means[None], ab * self.stds[None] ** 2 + (1 - ab)

    def _log_components(self, x: torch.Tensor, t: torch.Tensor | None,
                        schedule: Schedule | None) -> tuple[torch.Tensor, ...]:
        x = x.double().reshape(x.shape[0], 1, -1)
        mu, var = self._marginal(t, schedule, x[:, 0])
        mu, var, w = mu.to(x.device), var.to(x.device), self.weights.to(x.device)
        log_n = -0.5 * (((x - mu) ** 2 / var) + torch.log(2 * math.pi * var)).sum(-1)
        return log_n + torch.log(w), mu, var, x

    def log_prob(self, x: torch.Tensor, t: torch.Tensor | int | None = None,
                 schedule: Schedule | None = None) -> torch.Tensor:
        """log q(x_t) (or log p(x) if t is None), (B,) float64. Needs s_k > 0 when t is None.

        Eq. (4) per component; chapter "The reverse process and the ELBO".
        """
        t = self._check(x, t, schedule, need_stds=True)
        log_c, *_ = self._log_components(x, t, schedule)
        return torch.logsumexp(log_c, dim=1)

    def score(self, x: torch.Tensor, t: torch.Tensor | int | None = None,
              schedule: Schedule | None = None) -> torch.Tensor:
        """∇_x log q(x_t) (or of the data if t is None), shaped like x. Needs s_k > 0 when t is None.

        The score of the mixture that Eq. (4) makes of each component; chapter "Scores and Langevin
        dynamics" (derivation: "Scores, denoising score matching and Langevin dynamics").
        """
        t = self._check(x, t, schedule, need_stds=True)
        log_c, mu, var, xf = self._log_components(x, t, schedule)
        r = torch.softmax(log_c, dim=1)[..., None]  # responsibilities (B, K, 1)
        s = (r * (mu - xf) / var).sum(1)
        return s.reshape(x.shape).to(x.dtype)

    def eps(self, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
        """The optimal ε-predictor E[ε | x_t] = −√(1−ᾱ_t) ∇ log q(x_t).

        Tweedie's formula for Eq. (4) (Ho et al. 2020, Sec. 3.2's score link); chapters "The reverse
        process and the ELBO" and "Scores and Langevin dynamics" (derivation: "Scores, denoising score
        matching and Langevin dynamics"). xt: (B, D); t: int or (B,) in [1, T].
        """
        t = self._check(xt, t, schedule, "xt", need_t=True)
        return -extract(schedule.sqrt_one_minus_alpha_bars, t, xt) * self.score(xt, t, schedule)

    def x0_mean(self, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
        """E[x_0 | x_t] by Tweedie's formula, shaped like xt.

        x_0 = (x_t + (1−ᾱ_t) ∇ log q(x_t))/√ᾱ_t, the x_0 of Eq. (4) at ε = E[ε | x_t]; chapter "The
        reverse process and the ELBO". xt: (B, D); t: int or (B,) in [1, T].
        """
        t = self._check(xt, t, schedule, "xt", need_t=True)
        ab = extract(schedule.alpha_bars, t, xt)
        return (xt + (1 - ab) * self.score(xt, t, schedule)) / ab.sqrt()


class ExactEps(nn.Module):
    """A network-shaped wrapper, ``model(x_t, t) -> ε*``, around a known :class:`GaussianMixture`.

    Plugs into :func:`minidiff.sample_loop`, :func:`minidiff.negative_elbo` and the losses. Chapter
    "The reverse process and the ELBO" (the exact denoiser as ground truth).
    """

    def __init__(self, mixture: GaussianMixture, schedule: Schedule) -> None:
        super().__init__()
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a minidiff Schedule, got {type(schedule).__name__}")
        self.mixture, self.schedule = mixture, schedule

    def forward(self, xt: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """ε*(x_t, t) for xt (B, D) and t: int or (B,) in [1, T] (checked at every call; no host sync on a GPU)."""
        return self.mixture.eps(xt, t, self.schedule)


def gaussian_eps_model(mean: torch.Tensor | list[float] | float, std: torch.Tensor | list[float] | float,
                       schedule: Schedule) -> ExactEps:
    """ε* for data N(mean, diag std²): ε* = √(1−ᾱ_t)(x_t − √ᾱ_t μ)/(ᾱ_t s² + 1 − ᾱ_t).

    Eq. (4) makes q(x_t) = N(√ᾱ_t μ, ᾱ_t s² + 1 − ᾱ_t), and ε* = −√(1−ᾱ_t) ∇ log q(x_t) (Ho et al.
    2020, Sec. 3.2). No notebook chapter uses it; the book's derivation "The ELBO and its
    decomposition" does (its exercise 3), and the tests use it as ground truth. mean: (D,); std:
    scalar or (D,), ≥ 0.
    """
    mean = torch.as_tensor(mean, dtype=torch.float64).reshape(1, -1)
    std = torch.as_tensor(std, dtype=torch.float64)
    if std.numel() not in (1, mean.shape[1]):
        raise ValueError(f"std must be a scalar or have one value per dimension of mean, D = {mean.shape[1]}, "
                         f"got shape {tuple(std.shape)}")
    std = std.reshape(1, -1).expand_as(mean)
    return ExactEps(GaussianMixture(mean, std), schedule)


def ideal_denoiser(data: torch.Tensor, schedule: Schedule) -> ExactEps:
    """The closed-form optimal ε-predictor for a finite training set (N, ...): it memorizes.

    E[x_0 | x_t] = Σ_i softmax_i(−‖x_t − √ᾱ_t x_i‖² / 2(1−ᾱ_t)) x_i, i.e. the mixture of point
    masses, through Eq. (4) and Tweedie's formula; chapter "The reverse process and the ELBO"
    (section "The ideal denoiser of a finite data set memorizes"; derivation: "Scores, denoising
    score matching and Langevin dynamics").
    """
    data = torch.as_tensor(data)
    if data.dim() == 0 or data.shape[0] < 1:
        raise ValueError(f"data must be a training set of N >= 1 examples, shape (N, ...), got {tuple(data.shape)}")
    if data.is_complex() or data.dtype == torch.bool:
        raise TypeError(f"data must hold real numbers, got dtype {data.dtype}")
    return ExactEps(GaussianMixture(data.reshape(data.shape[0], -1), 0.0), schedule)
