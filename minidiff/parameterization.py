"""What the network predicts: ε, x_0, v or μ̃, and every conversion between them, in one place.

With x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (Eq. 4):
- ε-prediction (the paper's choice, Eq. 11);
- x_0-prediction;
- v = √ᾱ_t ε − √(1−ᾱ_t) x_0 (Salimans & Ho 2022);
- μ̃-prediction: the posterior mean μ̃_t(x_t, x_0) of Eq. 7 directly.
Chapter "What should the network predict?"; the math chapter "Predicting the noise: the
ε-parameterization and L_simple". Every function takes its tensors first (in the order the
equation reads them), then t (the paper's, in [1, T]), then the schedule, then options; each
checks its inputs (floating-point tensors of x_t's shape, t with x_t's batch size). The samplers
and losses call these same functions.
"""

from __future__ import annotations

import torch

from ._checks import check_choice, check_float_tensor, check_same_shape, check_timesteps
from .schedules import Schedule, extract

PARAMETERIZATIONS = ("eps", "x0", "v", "mu")


def _check(t: torch.Tensor | int, schedule: Schedule, ref_name: str, ref: torch.Tensor,
           **others: torch.Tensor) -> torch.Tensor:
    """Check ``ref`` and ``others`` (floating point, shaped like ref) and t; return t as (B,)."""
    check_float_tensor(ref_name, ref)
    for name, y in others.items():
        check_float_tensor(name, y)
        check_same_shape(name, y, ref_name, ref)
    return check_timesteps(t, schedule.T, batch=ref.shape[0] if ref.dim() else None, x_name=ref_name,
                           device=ref.device)


def x0_from_eps(xt: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
    """x_0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t: Eq. (4) solved for x_0, the x_0 inside μ̃_t in Eq. (9).

    Chapter "What should the network predict?" (derivation: "Predicting the noise: the
    ε-parameterization and L_simple"). xt, eps: (B, ...); t: int or (B,) in [1, T].
    """
    t = _check(t, schedule, "xt", xt, eps=eps)
    return (xt - extract(schedule.sqrt_one_minus_alpha_bars, t, xt) * eps) / extract(schedule.sqrt_alpha_bars, t, xt)


def eps_from_x0(xt: torch.Tensor, x0: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
    """ε = (x_t − √ᾱ_t x_0)/√(1−ᾱ_t): Eq. (4) solved for ε.

    Chapter "What should the network predict?". xt, x0: (B, ...); t: int or (B,) in [1, T].
    """
    t = _check(t, schedule, "xt", xt, x0=x0)
    return (xt - extract(schedule.sqrt_alpha_bars, t, xt) * x0) / extract(schedule.sqrt_one_minus_alpha_bars, t, xt)


def v_from_x0_eps(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
    """v = √ᾱ_t ε − √(1−ᾱ_t) x_0, the v-prediction target.

    Salimans & Ho (2022), Sec. 4 (v ≡ α_t ε − σ_t x in their notation); chapter "What should the
    network predict?". x0, eps: (B, ...); t: int or (B,) in [1, T].
    """
    t = _check(t, schedule, "x0", x0, eps=eps)
    return extract(schedule.sqrt_alpha_bars, t, x0) * eps - extract(schedule.sqrt_one_minus_alpha_bars, t, x0) * x0


def x0_from_v(xt: torch.Tensor, v: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
    """x_0 = √ᾱ_t x_t − √(1−ᾱ_t) v: the v target solved for x_0 with Eq. (4).

    Salimans & Ho (2022), Sec. 4 (x̂ = α_t z_t − σ_t v̂ in their notation); chapter "What should the
    network predict?". xt, v: (B, ...); t: int or (B,) in [1, T].
    """
    t = _check(t, schedule, "xt", xt, v=v)
    return extract(schedule.sqrt_alpha_bars, t, xt) * xt - extract(schedule.sqrt_one_minus_alpha_bars, t, xt) * v


def eps_from_v(xt: torch.Tensor, v: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
    """ε = √(1−ᾱ_t) x_t + √ᾱ_t v: the v target solved for ε with Eq. (4), exact even where ᾱ_t → 0.

    Salimans & Ho (2022), Sec. 4; chapter "What should the network predict?". xt, v: (B, ...);
    t: int or (B,) in [1, T].
    """
    t = _check(t, schedule, "xt", xt, v=v)
    return extract(schedule.sqrt_one_minus_alpha_bars, t, xt) * xt + extract(schedule.sqrt_alpha_bars, t, xt) * v


def mu_from_x0(xt: torch.Tensor, x0: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
    """μ̃_t(x_t, x_0) = coef1 · x_0 + coef2 · x_t, the posterior mean.

    Eq. (7); chapter "The reverse process and the ELBO" (derivation: "The posterior q(xₜ₋₁ | xₜ, x₀)").
    Applied to x_0 from :func:`x0_from_eps` it is (x_t − β_t/√(1−ᾱ_t) ε)/√α_t, Eq. (10).
    xt, x0: (B, ...); t: int or (B,) in [1, T].
    """
    t = _check(t, schedule, "xt", xt, x0=x0)
    return extract(schedule.posterior_mean_coef1, t, xt) * x0 + extract(schedule.posterior_mean_coef2, t, xt) * xt


def x0_from_mu(xt: torch.Tensor, mu: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
    """x_0 = (μ̃ − coef2 · x_t)/coef1: Eq. (7) solved for x_0 (coef1 > 0 at every t ≥ 1).

    Chapter "What should the network predict?". xt, mu: (B, ...); t: int or (B,) in [1, T].
    """
    t = _check(t, schedule, "xt", xt, mu=mu)
    return (mu - extract(schedule.posterior_mean_coef2, t, xt) * xt) / extract(schedule.posterior_mean_coef1, t, xt)


def to_x0(output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule,
          parameterization: str = "eps") -> torch.Tensor:
    """The x_0 implied by a network output in the given parameterization.

    Eq. (4) solved for x_0 (ε), the identity (x_0), Salimans & Ho (2022), Sec. 4 (v) or Eq. (7)
    solved for x_0 (μ̃); chapter "What should the network predict?". output, xt: (B, ...);
    t: int or (B,) in [1, T].
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    _check(t, schedule, "xt", xt, output=output)
    if parameterization == "eps":
        return x0_from_eps(xt, output, t, schedule)
    if parameterization == "v":
        return x0_from_v(xt, output, t, schedule)
    if parameterization == "mu":
        return x0_from_mu(xt, output, t, schedule)
    return output


def to_eps(output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule,
           parameterization: str = "eps") -> torch.Tensor:
    """The ε implied by a network output in the given parameterization.

    Eq. (4) solved for ε after :func:`to_x0`; for v, :func:`eps_from_v` (Salimans & Ho 2022, Sec. 4).
    Chapter "What should the network predict?". output, xt: (B, ...); t: int or (B,) in [1, T].
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    _check(t, schedule, "xt", xt, output=output)
    if parameterization == "eps":
        return output
    if parameterization == "v":
        return eps_from_v(xt, output, t, schedule)
    return eps_from_x0(xt, to_x0(output, xt, t, schedule, parameterization), t, schedule)


def from_x0_eps(x0: torch.Tensor, eps: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule,
                parameterization: str = "eps") -> torch.Tensor:
    """The network output (the regression target of L_simple) for known x_0, ε in a parameterization.

    ε (Eq. 14's target), x_0, v (Salimans & Ho 2022, Sec. 4) or μ̃_t(x_t, x_0) (Eq. 7); chapter
    "What should the network predict?". x0, eps, xt: (B, ...); t: int or (B,) in [1, T].
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    _check(t, schedule, "xt", xt, x0=x0, eps=eps)
    if parameterization == "eps":
        return eps
    if parameterization == "x0":
        return x0
    if parameterization == "v":
        return v_from_x0_eps(x0, eps, t, schedule)
    return mu_from_x0(xt, x0, t, schedule)
