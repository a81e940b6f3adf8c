"""Deterministic DDIM as an encoder: data x_0 → noise x_T and back, and interpolation in noise space.

With η = 0 the DDIM update (Song et al. 2021, Eq. 12)

    x_{t−1} = √ᾱ_{t−1} x̂_0(x_t) + √(1−ᾱ_{t−1}) ε_θ(x_t, t),   x̂_0 = (x_t − √(1−ᾱ_t) ε_θ)/√ᾱ_t,

is an Euler step of an ODE (DDIM, Sec. 4.3), so it can be run the other way: from x_0 up to x_T,
evaluating ε_θ at the lower level. Decoding x_T with :func:`minidiff.sample` (``sampler="ddim"``,
``eta=0``) and the same ``steps`` gives x_0 back up to the discretization error (reconstruction,
DDIM Sec. 5.4). Chapter "Sampling faster".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from ._checks import check_batched, check_choice, check_float_tensor, check_steps
from .parameterization import PARAMETERIZATIONS, to_eps
from .reverse import VARIANCES, split_output
from .samplers import SampleState, respace_timesteps
from .schedules import Schedule


@torch.no_grad()
def ddim_encode_loop(
    model: Callable[..., torch.Tensor], x0: torch.Tensor, schedule: Schedule, *, steps: int | None = None,
    spacing: str = "uniform", parameterization: str = "eps", variance: str = "fixed_small",
    model_kwargs: dict | None = None, progress: bool = False,
) -> Iterator[SampleState]:
    """DDIM inversion: run the η = 0 update of DDIM Eq. 12 forward, x_0 → x_{τ_0} → ... → x_T.

    Chapter "Sampling faster". ``steps``: K of the T levels (default all), the same
    :func:`minidiff.respace_timesteps` grid that ``sample(..., sampler="ddim", steps=K)`` decodes on.
    At step i the network sees the current state with the level τ_i it is moving to,
    ε̂ = ε_θ(x_{τ_{i−1}}, τ_i), and x_{τ_i} = √ᾱ_{τ_i} x̂_0 + √(1−ᾱ_{τ_i}) ε̂ with
    x̂_0 = (x_{τ_{i−1}} − √(1−ᾱ_{τ_{i−1}}) ε̂)/√ᾱ_{τ_{i−1}} (ᾱ = 1 before the first level).
    x0: (B, ...). Yields :class:`minidiff.SampleState` (step, the paper's t of x, x, x̂_0); the last
    state holds the code x_T.
    """
    from tqdm.auto import tqdm

    check_float_tensor("x0", x0)
    check_batched("x0", x0)
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("variance", variance, VARIANCES)
    K = schedule.T if steps is None else check_steps("steps", steps, schedule.T)
    taus = respace_timesteps(schedule.T, K, spacing)
    sub = schedule.respaced(taus).to(x0.device)  # K steps: sub-step i is the paper's time taus[i]
    times = torch.cat([torch.zeros(1, dtype=torch.long), taus]).tolist()  # times[i] = τ_i, τ_0 = 0 (the data)
    ab = sub.alpha_bars.to(x0.dtype)  # ᾱ_{τ_i}, with ᾱ_{τ_0} = 1
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        x = x0
        yield SampleState(0, 0, x, None)
        B = x.shape[0]
        for i in tqdm(range(1, K + 1), disable=not progress, desc="DDIM encoding"):
            t = torch.full((B,), times[i], dtype=torch.long, device=x.device)  # the level it moves to
            out, _ = split_output(model(x, t, **(model_kwargs or {})), x, variance, name="model output",
                                  xt_name="x0")
            eps = to_eps(out, x, torch.full((B,), i, dtype=torch.long, device=x.device), sub, parameterization)
            x0_hat = (x - (1 - ab[i - 1]).sqrt() * eps) / ab[i - 1].sqrt()
            x = ab[i].sqrt() * x0_hat + (1 - ab[i]).sqrt() * eps
            yield SampleState(i, times[i], x, x0_hat)
    finally:
        if was_training:
            model.train()


def ddim_encode(model: Callable[..., torch.Tensor], x0: torch.Tensor, schedule: Schedule, **kwargs) -> torch.Tensor:
    """Only the code x_T of :func:`ddim_encode_loop` (same arguments).

    DDIM Eq. 12 with η = 0, run from x_0 to x_T; chapter "Sampling faster".
    """
    last = None
    for last in ddim_encode_loop(model, x0, schedule, **kwargs):  # noqa: B007 (we want the final state)
        pass
    return last.x


def slerp(z0: torch.Tensor, z1: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation sin((1−α)θ)/sin θ · z0 + sin(αθ)/sin θ · z1, θ = ∠(z0, z1).

    Used to interpolate between noise codes (DDIM, Sec. 5.3); chapter "Sampling faster".
    Rows of z0, z1 (B, ...) are interpolated separately (a 1-D z is one vector). ``alpha``: a
    number, or a 1-D tensor of K values giving an output (K, *z0.shape). α = 0 returns z0 and α = 1
    returns z1 exactly; nearly parallel rows fall back to linear interpolation.
    """
    check_float_tensor("z0", z0)
    check_float_tensor("z1", z1)
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    a = torch.as_tensor(alpha, dtype=z0.dtype, device=z0.device)
    if a.dim() > 1:
        raise ValueError(f"alpha must be a number or a 1-D tensor, got shape {tuple(a.shape)}")
    if not bool(torch.isfinite(a).all()):
        raise ValueError(f"alpha must be finite, got {a.tolist()}")
    u0, u1 = (z.reshape(1, -1) if z.dim() == 1 else z.reshape(z.shape[0], -1) for z in (z0, z1))
    cos = (u0 * u1).sum(1) / (u0.norm(dim=1) * u1.norm(dim=1)).clamp(min=torch.finfo(z0.dtype).tiny)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))  # (B,)
    aa = a.reshape(-1, 1)  # (K or 1, 1)
    sin = torch.sin(theta)
    parallel = sin < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    w0 = torch.where(parallel, 1 - aa, torch.sin((1 - aa) * theta) / safe)  # (K, B)
    w1 = torch.where(parallel, aa, torch.sin(aa * theta) / safe)
    w0 = torch.where(aa == 0, torch.ones_like(w0), torch.where(aa == 1, torch.zeros_like(w0), w0))
    w1 = torch.where(aa == 0, torch.zeros_like(w1), torch.where(aa == 1, torch.ones_like(w1), w1))
    out = w0[..., None] * u0 + w1[..., None] * u1  # (K, B, n)
    out = out.reshape(a.numel(), *z0.shape)
    return out[0] if a.dim() == 0 else out
