"""The learned reverse process p_θ(x_{t−1} | x_t) = N(μ_θ(x_t, t), Σ_θ(x_t, t))  (Eq. 1).

Chapter "The reverse process and the ELBO".
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._checks import check_choice
from .parameterization import PARAMETERIZATIONS, mu_from_x0, to_eps, to_x0
from .schedules import Schedule, extract

VARIANCES = ("fixed_small", "fixed_large", "learned_range")


class ReverseStep(NamedTuple):
    """Mean, variance and log-variance of p_θ(x_{t−1} | x_t), and the x_0, ε they imply."""

    mean: torch.Tensor
    variance: torch.Tensor
    log_variance: torch.Tensor
    x0: torch.Tensor
    eps: torch.Tensor


def split_variance_output(output: torch.Tensor, variance: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split a network output into (mean part, variance part) along dim 1 for ``learned_range``."""
    check_choice("variance", variance, VARIANCES)
    if variance != "learned_range":
        return output, None
    if output.shape[1] % 2:
        raise ValueError(
            f"variance='learned_range' needs a network with doubled output channels, got {output.shape[1]} channels"
        )
    mean_out, var_out = output.chunk(2, dim=1)
    return mean_out, var_out


def fixed_log_variance(t: torch.Tensor, x: torch.Tensor, schedule: Schedule, variance: str) -> torch.Tensor:
    """log σ_t² for the paper's two fixed choices (Sec. 3.2): β̃_t (``fixed_small``) or β_t (``fixed_large``).

    ``fixed_large`` is σ_t² = β_t at every step, the decoder's included, as in the paper. (The
    official DDPM code swaps in β̃_2 at the first step; for unit-variance Gaussian data β_t is the
    exact reverse variance, so the paper's choice makes the ELBO tight there.) ``fixed_small``
    uses β̃_t, whose first value is 0, so its log is clipped to log β̃_2.
    """
    check_choice("variance", variance, ("fixed_small", "fixed_large"))
    logvar = schedule.posterior_log_variance_clipped if variance == "fixed_small" else torch.log(schedule.betas)
    return extract(logvar, t, x) * torch.ones_like(x)


def learned_range_log_variance(v: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """log Σ_θ = u log β_t + (1−u) log β̃_t with u = (v+1)/2  (Nichol & Dhariwal 2021, Eq. 15)."""
    min_log = extract(schedule.posterior_log_variance_clipped, t, v)
    max_log = extract(torch.log(schedule.betas), t, v)
    u = (v + 1) / 2
    return u * max_log + (1 - u) * min_log


def p_mean_variance(
    output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, schedule: Schedule, *,
    parameterization: str = "eps", variance: str = "fixed_small", clip_x0: float | None = None,
) -> ReverseStep:
    """Mean and variance of p_θ(x_{t−1} | x_t) from a network output.

    The mean is μ̃_t(x_t, x̂_0) with x̂_0 from the output (Eqs. 7 and 11); with ε-prediction this
    equals Eq. 11, μ_θ = (x_t − β_t/√(1−ᾱ_t) ε_θ)/√α_t. ``clip_x0`` clamps x̂_0 to [−c, c]
    (the paper's image sampler clips to [−1, 1]). output: (B, C, ...) or (B, 2C, ...) for
    ``learned_range``; xt: (B, C, ...); t: (B,).
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    mean_out, var_out = split_variance_output(output, variance)
    if mean_out.shape != xt.shape:
        raise ValueError(f"network output has shape {tuple(mean_out.shape)}, expected {tuple(xt.shape)}")
    x0 = to_x0(mean_out, xt, t, schedule, parameterization)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
    if parameterization == "mu" and clip_x0 is None:
        mean = mean_out
    else:
        mean = mu_from_x0(xt, t, x0, schedule)
    eps = to_eps(mean_out, xt, t, schedule, parameterization) if clip_x0 is None else \
        to_eps(x0, xt, t, schedule, "x0")
    if var_out is None:
        log_var = fixed_log_variance(t, xt, schedule, variance)
    else:
        log_var = learned_range_log_variance(var_out, t, schedule)
    return ReverseStep(mean, log_var.exp(), log_var, x0, eps)
