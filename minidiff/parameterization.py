"""What the network predicts: ε, x_0, v or μ̃, and every conversion between them, in one place.

With x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (Eq. 4):
- ε-prediction (the paper's choice, Eq. 11);
- x_0-prediction;
- v = √ᾱ_t ε − √(1−ᾱ_t) x_0 (Salimans & Ho 2022);
- μ̃-prediction: the posterior mean μ̃_t(x_t, x_0) of Eq. 7 directly.
Chapter "What should the network predict?".
"""

from __future__ import annotations

import torch

from ._checks import check_choice
from .schedules import Schedule, extract

PARAMETERIZATIONS = ("eps", "x0", "v", "mu")


def x0_from_eps(xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """x_0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t  (Eq. 4 solved for x_0: the x_0 inside μ̃_t in Eqs. 9 and 11)."""
    return (xt - extract(schedule.sqrt_one_minus_alpha_bars, t, xt) * eps) / extract(schedule.sqrt_alpha_bars, t, xt)


def eps_from_x0(xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """ε = (x_t − √ᾱ_t x_0)/√(1−ᾱ_t)  (Eq. 4 solved for ε)."""
    return (xt - extract(schedule.sqrt_alpha_bars, t, xt) * x0) / extract(schedule.sqrt_one_minus_alpha_bars, t, xt)


def v_from_x0_eps(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """v = √ᾱ_t ε − √(1−ᾱ_t) x_0  (Salimans & Ho 2022, Eq. 31 of their appendix)."""
    return extract(schedule.sqrt_alpha_bars, t, x0) * eps - extract(schedule.sqrt_one_minus_alpha_bars, t, x0) * x0


def x0_from_v(xt: torch.Tensor, t: torch.Tensor, v: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """x_0 = √ᾱ_t x_t − √(1−ᾱ_t) v."""
    return extract(schedule.sqrt_alpha_bars, t, xt) * xt - extract(schedule.sqrt_one_minus_alpha_bars, t, xt) * v


def mu_from_x0(xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """μ̃_t(x_t, x_0) = coef1 · x_0 + coef2 · x_t  (Eq. 7).

    Applied to x_0 from :func:`x0_from_eps` it is (x_t − β_t/√(1−ᾱ_t) ε)/√α_t, the target of Eq. 10.
    """
    return extract(schedule.posterior_mean_coef1, t, xt) * x0 + extract(schedule.posterior_mean_coef2, t, xt) * xt


def x0_from_mu(xt: torch.Tensor, t: torch.Tensor, mu: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """Eq. 7 solved for x_0: x_0 = (μ̃ − coef2 · x_t)/coef1 (coef1 > 0 at every t)."""
    return (mu - extract(schedule.posterior_mean_coef2, t, xt) * xt) / extract(schedule.posterior_mean_coef1, t, xt)


def to_x0(output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, schedule: Schedule,
          parameterization: str = "eps") -> torch.Tensor:
    """The x_0 implied by a network output in the given parameterization."""
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    if parameterization == "eps":
        return x0_from_eps(xt, t, output, schedule)
    if parameterization == "x0":
        return output
    if parameterization == "v":
        return x0_from_v(xt, t, output, schedule)
    return x0_from_mu(xt, t, output, schedule)


def to_eps(output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, schedule: Schedule,
           parameterization: str = "eps") -> torch.Tensor:
    """The ε implied by a network output in the given parameterization."""
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    if parameterization == "eps":
        return output
    if parameterization == "v":  # ε = √(1−ᾱ) x_t + √ᾱ v, exact even where ᾱ → 0
        return (extract(schedule.sqrt_one_minus_alpha_bars, t, xt) * xt
                + extract(schedule.sqrt_alpha_bars, t, xt) * output)
    return eps_from_x0(xt, t, to_x0(output, xt, t, schedule, parameterization), schedule)


def from_x0_eps(x0: torch.Tensor, eps: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, schedule: Schedule,
                parameterization: str = "eps") -> torch.Tensor:
    """The network output (the regression target) for known x_0, ε in the given parameterization."""
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    if parameterization == "eps":
        return eps
    if parameterization == "x0":
        return x0
    if parameterization == "v":
        return v_from_x0_eps(x0, eps, t, schedule)
    return mu_from_x0(xt, t, x0, schedule)
