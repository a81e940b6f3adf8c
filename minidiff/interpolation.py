"""Interpolation as in Ho et al. (2020), Sec. 4.3: encode two data points with q, mix, decode with p_θ.

Both endpoints are noised to the same t with the stochastic encoder q(x_t | x_0) of Eq. (4),

    x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε,   x'_t = √ᾱ_t x'_0 + √(1−ᾱ_t) ε',

mixed linearly, x̄_t = (1−λ) x_t + λ x'_t, and decoded by the reverse process from t down to 0. A small t
keeps the result close to the linear blend of the two points; a large t forgets them and gives new samples.
By default one noise draw serves both endpoints (ε = ε'), so x̄_t = √ᾱ_t x̄_0 + √(1−ᾱ_t) ε with
x̄_0 = (1−λ) x_0 + λ x'_0 is itself a draw of q(x_t | x̄_0); and the reverse process reuses the same noise
for every λ, as in the paper, so the decoded points move smoothly with λ. Chapter "Sampling faster"
(compare DDIM's interpolation of noise codes, :func:`minidiff.ddim_inversion.slerp`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checks import check_batched, check_float_tensor, check_int, check_same_shape
from .forward import q_sample
from .samplers import sample
from .schedules import Schedule


def truncated(schedule: Schedule, t: int) -> Schedule:
    """The first t steps of ``schedule``: the same β_1..β_t, so its ᾱ_s equals the original's for s ≤ t.

    A reverse chain run on it from x_t calls the network at the original paper times t, t−1, ..., 1.
    """
    t = check_int("t", t, ge=1, le=schedule.T)
    return Schedule.from_betas(schedule.betas[1:t + 1].cpu())


@torch.no_grad()
def q_interpolate(
    model: Callable[..., torch.Tensor], x0_a: torch.Tensor, x0_b: torch.Tensor, lambdas: torch.Tensor | list[float],
    t: int, schedule: Schedule, *, noise_a: torch.Tensor | None = None, noise_b: torch.Tensor | None = None,
    seed: int = 0, **sample_kwargs,
) -> torch.Tensor:
    """Decode (1−λ) x_t + λ x'_t for each λ, where x_t, x'_t ~ q(x_t | x_0) of ``x0_a``, ``x0_b`` (Sec. 4.3).

    x0_a, x0_b: (B, ...) data points, paired row by row; lambdas: K mixing weights (λ = 0 is x0_a's side);
    t: the paper's time in [1, T] to encode to. ``noise_a``/``noise_b``: the ε of each endpoint (default:
    one N(0, I) draw from ``seed`` shared by both). The reverse chain (:func:`minidiff.sample`, any of its
    options in ``sample_kwargs``, e.g. ``sampler="ddim"``) runs on the first t steps of ``schedule`` with the
    same ``seed`` for every λ. Returns (K, B, ...): the decoded x_0 for each λ. Eq. (4) to encode,
    Algorithm 2 to decode; chapter "Sampling faster".
    """
    check_float_tensor("x0_a", x0_a)
    check_batched("x0_a", x0_a)
    check_same_shape("x0_b", x0_b, "x0_a", x0_a)
    lam = torch.as_tensor(lambdas, dtype=x0_a.dtype).cpu()
    if lam.dim() != 1 or lam.numel() < 1 or not bool(torch.isfinite(lam).all()):
        raise ValueError(f"lambdas must be a 1-D list of K >= 1 finite numbers, got {lam.tolist()}")
    sub = truncated(schedule, t)
    if noise_a is None:
        noise_a = torch.randn(x0_a.shape, generator=torch.Generator().manual_seed(seed), dtype=x0_a.dtype)
        noise_a = noise_a.to(x0_a.device)
    noise_b = noise_a if noise_b is None else noise_b
    check_same_shape("noise_a", noise_a, "x0_a", x0_a)
    check_same_shape("noise_b", noise_b, "x0_a", x0_a)
    xt_a, xt_b = q_sample(x0_a, t, schedule, noise=noise_a), q_sample(x0_b, t, schedule, noise=noise_b)
    out = []
    for v in lam.tolist():
        mixed = (1 - v) * xt_a + v * xt_b
        out.append(sample(model, tuple(mixed.shape), sub, x_T=mixed, seed=seed, **sample_kwargs))
    return torch.stack(out)
