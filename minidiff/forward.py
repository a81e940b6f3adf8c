"""The forward (noising) process q: one step (Eq. 2), closed form (Eq. 4), posterior (Eqs. 6-7).

Chapter "The forward process" and the math chapter "The closed-form forward process"; the
posterior is in chapter "The reverse process and the ELBO" and the math chapter "The posterior".
"""

from __future__ import annotations

import torch

from ._checks import check_float_tensor, check_same_shape, check_timesteps
from .schedules import Schedule, _extract


def _prepare(x: torch.Tensor, t: torch.Tensor | int, schedule: Schedule, name: str = "x0") -> torch.Tensor:
    """Check x (floating point) and t (integers in [0, T), x's batch size); return t as (B,) on x's device."""
    check_float_tensor(name, x)
    return check_timesteps(t, schedule.T, batch=x.shape[0] if x.dim() > 0 else None, x_name=name, device=x.device)


def _noise_like(x: torch.Tensor, noise: torch.Tensor | None, generator: torch.Generator | None,
                name: str = "x0") -> torch.Tensor:
    """``noise`` after checking it is a float tensor shaped like x, or fresh N(0, I) noise if None."""
    if noise is None:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    check_float_tensor("noise", noise)
    return check_same_shape("noise", noise, name, x)


def q_step_sample(
    x_prev: torch.Tensor, t: torch.Tensor | int, schedule: Schedule,
    noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One forward step x_t ~ q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I).

    Eq. (2); chapter "The forward process" (derivation: "The closed-form forward process").
    x_prev: (B, ...) the state before step t (x_0 when t = 0); t: int or (B,) in [0, T).
    """
    t = _prepare(x_prev, t, schedule, "x_prev")
    noise = _noise_like(x_prev, noise, generator, "x_prev")
    return _extract(schedule.alphas.sqrt(), t, x_prev) * x_prev + _extract(schedule.betas.sqrt(), t, x_prev) * noise


def q_mean_variance(x0: torch.Tensor, t: torch.Tensor | int, schedule: Schedule):
    """Mean √ᾱ_t x_0 and variance (1−ᾱ_t) of q(x_t | x_0). Returns (mean, variance), each like x0.

    Eq. (4); chapter "The forward process" (derivation: "The closed-form forward process").
    x0: (B, ...); t: int or (B,) in [0, T).
    """
    t = _prepare(x0, t, schedule)
    return _q_mean_variance(x0, t, schedule)


def _q_mean_variance(x0: torch.Tensor, t: torch.Tensor, schedule: Schedule):
    """:func:`q_mean_variance` without input checks, for t known to be valid."""
    mean = _extract(schedule.sqrt_alpha_bars, t, x0) * x0
    var = _extract(1.0 - schedule.alpha_bars, t, x0) * torch.ones_like(x0)
    return mean, var


def q_sample(
    x0: torch.Tensor, t: torch.Tensor | int, schedule: Schedule,
    noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Jump straight to x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, ε ~ N(0, I) (reparameterized).

    Eq. (4); chapter "The forward process" (derivation: "The closed-form forward process").
    x0: (B, C, H, W) or (B, D); t: int or (B,) in [0, T); noise: like x0 (drawn if None).
    """
    t = _prepare(x0, t, schedule)
    return _q_sample(x0, t, schedule, _noise_like(x0, noise, generator))


def _q_sample(x0: torch.Tensor, t: torch.Tensor, schedule: Schedule, noise: torch.Tensor) -> torch.Tensor:
    """Eq. (4) without input checks, for hot loops whose t is known to be valid (no GPU sync)."""
    return _extract(schedule.sqrt_alpha_bars, t, x0) * x0 + _extract(schedule.sqrt_one_minus_alpha_bars, t, x0) * noise


def q_posterior_mean_variance(x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule):
    """The tractable posterior q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I).

    Eqs. (6)-(7): μ̃_t = √ᾱ_{t−1} β_t/(1−ᾱ_t) x_0 + √α_t (1−ᾱ_{t−1})/(1−ᾱ_t) x_t; chapter "The
    reverse process and the ELBO" (derivation: "The posterior q(xₜ₋₁ | xₜ, x₀)"). x0, xt: (B, ...);
    t: int or (B,) in [0, T). Returns (mean, variance, log_variance_clipped), each shaped like x0.
    """
    t = _prepare(x0, t, schedule)
    check_float_tensor("xt", xt)
    check_same_shape("xt", xt, "x0", x0)
    return _q_posterior_mean_variance(x0, xt, t, schedule)


def _q_posterior_mean_variance(x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, schedule: Schedule):
    """:func:`q_posterior_mean_variance` without input checks, for t known to be valid."""
    mean = _extract(schedule.posterior_mean_coef1, t, x0) * x0 + _extract(schedule.posterior_mean_coef2, t, x0) * xt
    ones = torch.ones_like(x0)
    var = _extract(schedule.posterior_variance, t, x0) * ones
    log_var = _extract(schedule.posterior_log_variance_clipped, t, x0) * ones
    return mean, var, log_var
