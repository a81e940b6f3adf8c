"""The learned reverse process p_θ(x_{t−1} | x_t) = N(μ_θ(x_t, t), Σ_θ(x_t, t))  (Eq. 1).

Chapter "The reverse process and the ELBO"; the variances and parameterizations in chapter "What
should the network predict?".
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._checks import check_choice, check_float_tensor, check_real, check_timesteps
from .parameterization import PARAMETERIZATIONS, _mu_from_x0, _to_eps, _to_x0
from .schedules import Schedule, _extract

VARIANCES = ("fixed_small", "fixed_large", "learned_range")


class ReverseStep(NamedTuple):
    """Mean, variance and log-variance of p_θ(x_{t−1} | x_t) (Eq. 1), and the x_0, ε they imply.

    Returned by :func:`p_mean_variance`; chapter "The reverse process and the ELBO".
    """

    mean: torch.Tensor
    variance: torch.Tensor
    log_variance: torch.Tensor
    x0: torch.Tensor
    eps: torch.Tensor


def split_variance_output(output: torch.Tensor, variance: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split a network output into (mean part, variance part) along dim 1 for ``learned_range``.

    No equation: the learned-range network outputs the mean's parameterization and the v of
    Nichol & Dhariwal (2021), Eq. (15), concatenated; chapter "What should the network predict?".
    output: (B, C, ...), or (B, 2C, ...) for ``learned_range``.
    """
    check_choice("variance", variance, VARIANCES)
    check_float_tensor("output", output)
    return _split_variance_output(output, variance, "output")


def _split_variance_output(output: torch.Tensor, variance: str, name: str):
    if variance != "learned_range":
        return output, None
    if output.dim() < 2 or output.shape[1] % 2:
        channels = output.shape[1] if output.dim() >= 2 else "no"
        raise ValueError(
            f"variance='learned_range' needs a network with doubled output channels (dim 1), "
            f"got {name} with {channels} channels, shape {tuple(output.shape)}"
        )
    mean_out, var_out = output.chunk(2, dim=1)
    return mean_out, var_out


def _check_output(output: torch.Tensor, like: torch.Tensor, variance: str, name: str = "output",
                  like_name: str = "xt") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split a network output after checking it is a float tensor whose mean part is shaped like ``like``.

    Needs no host sync, so the samplers run it at every step.
    """
    check_float_tensor(name, output)
    mean_out, var_out = _split_variance_output(output, variance, name)
    if mean_out.shape != like.shape:
        part = "the mean half of " if var_out is not None else ""
        raise ValueError(f"{part}{name} has shape {tuple(mean_out.shape)}, expected the shape of {like_name}, "
                         f"{tuple(like.shape)}")
    return mean_out, var_out


def fixed_log_variance(t: torch.Tensor | int, x: torch.Tensor, schedule: Schedule, variance: str) -> torch.Tensor:
    """log σ_t² for the paper's two fixed choices: β̃_t (``fixed_small``) or β_t (``fixed_large``).

    Ho et al. (2020), Sec. 3.2 (σ_t² = β̃_t of Eq. 7, or β_t); chapter "What should the network
    predict?". ``fixed_large`` is σ_t² = β_t at every step, the decoder's included, as in the paper.
    (The official DDPM code swaps in β̃_2 at the first step; for unit-variance Gaussian data β_t is
    the exact reverse variance, so the paper's choice makes the ELBO tight there.) ``fixed_small``
    uses β̃_t, whose first value is 0, so its log is clipped to log β̃_2. t: int or (B,) in [0, T);
    x: (B, ...). Returns a tensor shaped like x.
    """
    check_choice("variance", variance, ("fixed_small", "fixed_large"))
    check_float_tensor("x", x)
    t = check_timesteps(t, schedule.T, batch=x.shape[0] if x.dim() else None, device=x.device)
    return _fixed_log_variance(t, x, schedule, variance)


def _fixed_log_variance(t, x, schedule, variance):
    logvar = schedule.posterior_log_variance_clipped if variance == "fixed_small" else torch.log(schedule.betas)
    return _extract(logvar, t, x) * torch.ones_like(x)


def learned_range_log_variance(v: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
    """log Σ_θ = u log β_t + (1−u) log β̃_t with u = (v+1)/2.

    Nichol & Dhariwal (2021), Eq. (15); chapter "What should the network predict?". v: (B, ...) the
    network's variance output; t: int or (B,) in [0, T). Returns a tensor shaped like v.
    """
    check_float_tensor("v", v)
    t = check_timesteps(t, schedule.T, batch=v.shape[0] if v.dim() else None, x_name="v", device=v.device)
    return _learned_range_log_variance(v, t, schedule)


def _learned_range_log_variance(v, t, schedule):
    min_log = _extract(schedule.posterior_log_variance_clipped, t, v)
    max_log = _extract(torch.log(schedule.betas), t, v)
    u = (v + 1) / 2
    return u * max_log + (1 - u) * min_log


def _check_clip_x0(clip_x0: float | None) -> float | None:
    """``clip_x0`` must be None or a finite c > 0 (x̂_0 is clamped to [−c, c])."""
    return None if clip_x0 is None else check_real("clip_x0", clip_x0, gt=0.0)


def p_mean_variance(
    output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule, *,
    parameterization: str = "eps", variance: str = "fixed_small", clip_x0: float | None = None,
) -> ReverseStep:
    """Mean and variance of p_θ(x_{t−1} | x_t) from a network output.

    Eqs. (1), (7) and (11): the mean is μ̃_t(x_t, x̂_0) with x̂_0 from the output; with ε-prediction
    this equals Eq. (11), μ_θ = (x_t − β_t/√(1−ᾱ_t) ε_θ)/√α_t. Chapter "The reverse process and the
    ELBO" (derivation: "Predicting the noise: the ε-parameterization and L_simple"); the other
    parameterizations and variances in chapter "What should the network predict?". ``clip_x0``
    clamps x̂_0 to [−c, c] (the paper's image sampler clips to [−1, 1]). output: (B, C, ...) or
    (B, 2C, ...) for ``learned_range``; xt: (B, C, ...); t: int or (B,) in [0, T).
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("variance", variance, VARIANCES)
    check_float_tensor("xt", xt)
    mean_out, var_out = _check_output(output, xt, variance)
    t = check_timesteps(t, schedule.T, batch=xt.shape[0] if xt.dim() else None, x_name="xt", device=xt.device)
    return _p_mean_variance(mean_out, var_out, xt, t, schedule, parameterization, variance, _check_clip_x0(clip_x0))


def _p_mean_variance(mean_out: torch.Tensor, var_out: torch.Tensor | None, xt: torch.Tensor, t: torch.Tensor,
                     schedule: Schedule, parameterization: str, variance: str, clip_x0: float | None) -> ReverseStep:
    """:func:`p_mean_variance` on an already split and checked output, for t known to be valid."""
    x0 = _to_x0(mean_out, xt, t, schedule, parameterization)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
    if parameterization == "mu" and clip_x0 is None:
        mean = mean_out
    else:
        mean = _mu_from_x0(xt, t, x0, schedule)
    eps = _to_eps(mean_out, xt, t, schedule, parameterization) if clip_x0 is None else \
        _to_eps(x0, xt, t, schedule, "x0")
    if var_out is None:
        log_var = _fixed_log_variance(t, xt, schedule, variance)
    else:
        log_var = _learned_range_log_variance(var_out, t, schedule)
    return ReverseStep(mean, log_var.exp(), log_var, x0, eps)
