"""The forward (noising) process q: one step (Eq. 2), closed form (Eq. 4), posterior (Eqs. 6-7).

Chapter "The forward process" and the math chapter "The closed-form forward process"; the
posterior is in chapter "The reverse process and the ELBO" and the math chapter "The posterior".
t is the paper's: t = 1..T, and t = 0 (the data) where the formula allows it.
"""

from __future__ import annotations

import torch

from ._checks import check_float_tensor, check_noise, check_same_shape, check_timesteps
from .schedules import Schedule, extract


def _check_t(x: torch.Tensor, t: torch.Tensor | int, schedule: Schedule, name: str, lo: int = 1) -> torch.Tensor:
    """Check x (floating point) and t (integers in [lo, T], x's batch size); return t as (B,) on x's device."""
    check_float_tensor(name, x)
    return check_timesteps(t, schedule.T, batch=x.shape[0] if x.dim() > 0 else None, x_name=name, device=x.device,
                           lo=lo)


def q_step_sample(
    x_prev: torch.Tensor, t: torch.Tensor | int, schedule: Schedule,
    noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One forward step x_t ~ q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I).

    Eq. (2); chapter "The forward process" (derivation: "The closed-form forward process").
    x_prev: (B, ...) the state x_{t−1} (x_0 when t = 1); t: int or (B,) in [1, T].
    """
    t = _check_t(x_prev, t, schedule, "x_prev")
    noise = check_noise(noise, x_prev, "x_prev", generator)
    return extract(schedule.alphas.sqrt(), t, x_prev) * x_prev + extract(schedule.betas.sqrt(), t, x_prev) * noise


def q_mean_variance(x0: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean √ᾱ_t x_0 and variance (1−ᾱ_t) of q(x_t | x_0). Returns (mean, variance), each like x0.

    Eq. (4); chapter "The forward process" (derivation: "The closed-form forward process").
    x0: (B, ...); t: int or (B,) in [0, T] (t = 0 gives mean x_0 and variance 0).
    """
    t = _check_t(x0, t, schedule, "x0", lo=0)
    mean = extract(schedule.sqrt_alpha_bars, t, x0) * x0
    var = extract(1.0 - schedule.alpha_bars, t, x0) * torch.ones_like(x0)
    return mean, var


def q_sample(
    x0: torch.Tensor, t: torch.Tensor | int, schedule: Schedule,
    noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Jump straight to x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, ε ~ N(0, I) (reparameterized).

    Eq. (4); chapter "The forward process" (derivation: "The closed-form forward process").
    x0: (B, C, H, W) or (B, D); t: int or (B,) in [0, T] (t = 0 returns x_0 itself, as ᾱ_0 = 1);
    noise: like x0 (drawn if None).
    """
    t = _check_t(x0, t, schedule, "x0", lo=0)
    noise = check_noise(noise, x0, "x0", generator)
    return extract(schedule.sqrt_alpha_bars, t, x0) * x0 + extract(schedule.sqrt_one_minus_alpha_bars, t, x0) * noise


def q_posterior_mean_variance(
    x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The tractable posterior q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I).

    Eqs. (6)-(7): μ̃_t = √ᾱ_{t−1} β_t/(1−ᾱ_t) x_0 + √α_t (1−ᾱ_{t−1})/(1−ᾱ_t) x_t; chapter "The
    reverse process and the ELBO" (derivation: "The posterior q(xₜ₋₁ | xₜ, x₀)"). x0, xt: (B, ...);
    t: int or (B,) in [1, T] (at t = 1 the posterior is the point mass at x_0: μ̃_1 = x_0, β̃_1 = 0).
    Returns (mean, variance, log_variance_clipped), each shaped like x0.
    """
    t = _check_t(x0, t, schedule, "x0")
    check_float_tensor("xt", xt)
    check_same_shape("xt", xt, "x0", x0)
    mean = extract(schedule.posterior_mean_coef1, t, x0) * x0 + extract(schedule.posterior_mean_coef2, t, x0) * xt
    ones = torch.ones_like(x0)
    var = extract(schedule.posterior_variance, t, x0) * ones
    log_var = extract(schedule.posterior_log_variance_clipped, t, x0) * ones
    return mean, var, log_var
