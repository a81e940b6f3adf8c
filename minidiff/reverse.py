"""The learned reverse process p_θ(x_{t−1} | x_t) = N(μ_θ(x_t, t), Σ_θ(x_t, t))  (Eq. 1).

Chapter "The reverse process and the ELBO"; the variances and parameterizations in chapter "What
should the network predict?". Everything after the network output is computed in at least float32,
also when the network ran in bf16 under autocast (:func:`split_output`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._checks import at_least_float32, check_choice, check_float_tensor, check_real, check_timesteps
from .parameterization import PARAMETERIZATIONS, mu_from_x0, to_eps, to_x0
from .schedules import Schedule, extract

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


def split_output(output: torch.Tensor, xt: torch.Tensor, variance: str = "fixed_small", *, name: str = "output",
                 xt_name: str = "xt") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check a network output and split it into (mean part, variance part), each in at least float32.

    No equation: the boundary between the network and the math. For ``learned_range`` the network
    outputs the mean's parameterization and the v of Nichol & Dhariwal (2021), Eq. (15),
    concatenated along dim 1; otherwise the variance part is None. A bf16/fp16 output (autocast) is
    cast to float32, so that the learned variance, the posterior, the losses and the sampler updates
    never run in half precision. Needs no host sync (the samplers call it at every step); chapter
    "What should the network predict?". output: (B, C, ...), or (B, 2C, ...) for ``learned_range``;
    xt: (B, C, ...), the network's input, whose shape the mean part must have.
    """
    check_choice("variance", variance, VARIANCES)
    check_float_tensor(name, output)
    output = at_least_float32(output)
    mean_out, var_out = output, None
    if variance == "learned_range":
        if output.dim() < 2 or output.shape[1] % 2:
            channels = output.shape[1] if output.dim() >= 2 else "no"
            raise ValueError(
                f"variance='learned_range' needs a network with doubled output channels (dim 1), "
                f"got {name} with {channels} channels, shape {tuple(output.shape)}"
            )
        mean_out, var_out = output.chunk(2, dim=1)
    if mean_out.shape != xt.shape:
        part = "the mean half of " if var_out is not None else ""
        raise ValueError(f"{part}{name} has shape {tuple(mean_out.shape)}, expected the shape of {xt_name}, "
                         f"{tuple(xt.shape)}")
    return mean_out, var_out


def fixed_log_variance(x: torch.Tensor, t: torch.Tensor | int, schedule: Schedule, variance: str) -> torch.Tensor:
    """log σ_t² for the paper's two fixed choices: β̃_t (``fixed_small``) or β_t (``fixed_large``).

    Ho et al. (2020), Sec. 3.2 (σ_t² = β̃_t of Eq. 7, or β_t); chapter "What should the network
    predict?". ``fixed_large`` is σ_t² = β_t at every step, the decoder's included, as in the paper.
    (The official DDPM code swaps in β̃_2 at t = 1; for unit-variance Gaussian data β_t is the exact
    reverse variance, so the paper's choice makes the ELBO tight there.) ``fixed_small`` uses β̃_t,
    whose value at t = 1 is 0, so its log is clipped to log β̃_2. x: (B, ...); t: int or (B,) in
    [1, T]. Returns a tensor shaped like x.
    """
    check_choice("variance", variance, ("fixed_small", "fixed_large"))
    check_float_tensor("x", x)
    t = check_timesteps(t, schedule.T, batch=x.shape[0] if x.dim() else None, device=x.device)
    logvar = schedule.posterior_log_variance_clipped if variance == "fixed_small" else torch.log(schedule.betas)
    return extract(logvar, t, x) * torch.ones_like(x)


def learned_range_log_variance(v: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
    """log Σ_θ = u log β_t + (1−u) log β̃_t with u = (v+1)/2, in at least float32.

    Nichol & Dhariwal (2021), Eq. (15); chapter "What should the network predict?". v: (B, ...) the
    network's variance output; t: int or (B,) in [1, T]. Returns a tensor shaped like v.
    """
    check_float_tensor("v", v)
    v = at_least_float32(v)
    t = check_timesteps(t, schedule.T, batch=v.shape[0] if v.dim() else None, x_name="v", device=v.device)
    min_log = extract(schedule.posterior_log_variance_clipped, t, v)
    max_log = extract(torch.log(schedule.betas), t, v)
    u = (v + 1) / 2
    return u * max_log + (1 - u) * min_log


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
    (B, 2C, ...) for ``learned_range``; xt: (B, C, ...); t: int or (B,) in [1, T]. Computed in at
    least float32 whatever the output's dtype (:func:`split_output`).
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_float_tensor("xt", xt)
    xt = at_least_float32(xt)
    out, var_out = split_output(output, xt, variance)
    t = check_timesteps(t, schedule.T, batch=xt.shape[0] if xt.dim() else None, x_name="xt", device=xt.device)
    x0 = to_x0(out, xt, t, schedule, parameterization)
    if clip_x0 is not None:
        c = check_real("clip_x0", clip_x0, gt=0.0)
        x0 = x0.clamp(-c, c)
        out, parameterization = x0, "x0"  # the clipped x̂_0 now defines the mean and ε̂
    mean = out if parameterization == "mu" else mu_from_x0(xt, x0, t, schedule)
    eps = to_eps(out, xt, t, schedule, parameterization)
    if var_out is None:
        log_var = fixed_log_variance(xt, t, schedule, variance)
    else:
        log_var = learned_range_log_variance(var_out, t, schedule)
    return ReverseStep(mean, log_var.exp(), log_var, x0, eps)
