"""Sampling: one loop for ancestral DDPM (Algorithm 2) and DDIM (Song et al. 2021), with respacing.

The two samplers differ only in how x_{t−1} is drawn from (x_t, x̂_0, ε̂):
- ``ddpm``: x_{t−1} ~ p_θ(x_{t−1} | x_t) = N(μ_θ, σ_t²), σ_t² from ``variance`` (Eq. 11, Algorithm 2);
- ``ddim``: x_{t−1} = √ᾱ_{t−1} x̂_0 + √(1−ᾱ_{t−1}−σ_t²) ε̂ + σ_t z with σ_t² = η² β̃_t
  (DDIM Eq. 12, with σ_t(η) of their Eq. 16); η = 0 is deterministic and η = 1 gives DDPM with σ_t² = β̃_t.
Running on a subset of K of the T steps ("respacing") works for both. Chapter "Sampling faster".
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import NamedTuple

import torch

from ._checks import check_choice, check_float_tensor, check_int, check_real
from .parameterization import PARAMETERIZATIONS
from .reverse import VARIANCES, _check_clip_x0, _check_output, _p_mean_variance
from .schedules import Schedule, _extract

SAMPLERS = ("ddpm", "ddim")
SPACINGS = ("uniform", "quadratic")


class SampleState(NamedTuple):
    """One state of the reverse chain (Algorithm 2's x_t); chapter "Training a denoiser".

    step: reverse steps taken so far (0 for the initial noise, K at the end);
    t: the paper's time index of ``x`` (T for pure noise, 0 for the final sample);
    x: the current sample (B, ...); x0: the network's x̂_0 that produced it (None at step 0).
    """

    step: int
    t: int
    x: torch.Tensor
    x0: torch.Tensor | None


def _check_steps(name: str, K: int, T: int) -> int:
    if isinstance(K, bool) or not isinstance(K, numbers.Integral) or not 1 <= K <= T:
        raise ValueError(f"{name} must be an int in [1, T] = [1, {T}], got {name} = {K!r}")
    return int(K)


def _check_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    ok = isinstance(shape, (tuple, list, torch.Size)) and len(shape) >= 1 and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in shape)
    if not ok:
        raise ValueError(f"shape must be a tuple of positive ints (B, ...), got shape = {shape!r}")
    return tuple(int(n) for n in shape)


def _initial_noise(shape, x_T: torch.Tensor | None, gen: torch.Generator | None, device: torch.device):
    """x_T ~ N(0, I) of ``shape``, or the given ``x_T`` after checking it."""
    shape = _check_shape(shape)
    if x_T is None:
        return torch.randn(shape, generator=gen, device=device)
    check_float_tensor("x_T", x_T)
    if tuple(x_T.shape) != shape:
        raise ValueError(f"x_T must have shape {shape}, got {tuple(x_T.shape)}")
    return x_T.to(device)


def respace_timesteps(T: int, K: int, spacing: str = "uniform") -> torch.Tensor:
    """K increasing timesteps (code indices) out of range(T), always including 0 and T−1.

    Nichol & Dhariwal (2021), Sec. 4 (``uniform``: evenly spaced) and Song et al. (2021), App. D.2
    (``quadratic``: τ_i ∝ i², denser near the data); chapter "Sampling faster". Returns (K,) long.
    """
    check_choice("spacing", spacing, SPACINGS)
    check_int("T", T, ge=1)
    K = _check_steps("K", K, T)
    if K == 1:
        return torch.tensor([T - 1])
    u = torch.linspace(0.0, 1.0, K, dtype=torch.float64)
    ts = torch.round((T - 1) * (u if spacing == "uniform" else u**2)).long()
    for i in range(1, K):  # quadratic spacing may repeat small indices: push them apart
        ts[i] = max(int(ts[i]), int(ts[i - 1]) + 1)
    for i in range(K - 2, -1, -1):  # ...without running past T−1
        ts[i] = min(int(ts[i]), int(ts[i + 1]) - 1)
    return ts


def _make_generator(generator: torch.Generator | None, seed: int | None, device: torch.device):
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is not None:
        return torch.Generator(device=device).manual_seed(check_int("seed", seed))
    return generator


@torch.no_grad()
def sample_loop(
    model, shape: tuple[int, ...], schedule: Schedule, *, sampler: str = "ddpm",
    steps: int | None = None, spacing: str = "uniform", eta: float = 0.0,
    parameterization: str = "eps", variance: str = "fixed_small", clip_x0: float | None = None,
    x_T: torch.Tensor | None = None, generator: torch.Generator | None = None, seed: int | None = None,
    device: torch.device | str | None = None, model_kwargs: dict | None = None, progress: bool = False,
) -> Iterator[SampleState]:
    """Run the reverse chain from x_T ~ N(0, I), yielding every intermediate :class:`SampleState`.

    ``sampler="ddpm"`` is Algorithm 2 of Ho et al. (2020): x_{t−1} = μ_θ(x_t, t) + σ_t z, z = 0 at
    the last step, with μ_θ of Eq. (11) for ε-prediction; chapter "Training a denoiser" (derivation:
    "Predicting the noise: the ε-parameterization and L_simple"). ``sampler="ddim"``: Song et al.
    (2021), Eq. (12); chapter "Sampling faster". model(x_t, t, **model_kwargs) returns the network
    output (B, C, ...) for integer t (B,). ``steps``: K ≤ T steps (default: all T); ``eta`` ≥ 0 is
    DDIM's and must be 0 for ``ddpm``; ``clip_x0``: None or c > 0. ``x_T``: a float tensor of
    ``shape`` (default: drawn). Reproducible: pass ``seed`` or a ``torch.Generator`` on the
    sampling device. The arguments are checked once, up front; the steps themselves check only the
    model output's dtype and shape, which needs no host sync.
    """
    from tqdm.auto import tqdm

    check_choice("sampler", sampler, SAMPLERS)
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("variance", variance, VARIANCES)
    check_real("eta", eta, ge=0.0)
    if sampler == "ddpm" and eta != 0:
        raise ValueError(f"eta is used by sampler='ddim' only, got eta = {eta} with sampler='ddpm'")
    clip_x0 = _check_clip_x0(clip_x0)
    if device is None:
        device = x_T.device if isinstance(x_T, torch.Tensor) else _model_device(model)
    device = torch.device(device)
    K = schedule.T if steps is None else _check_steps("steps", steps, schedule.T)
    taus = respace_timesteps(schedule.T, K, spacing)
    sub = schedule.respaced(taus).to(device)
    gen = _make_generator(generator, seed, device)
    x = _initial_noise(shape, x_T, gen, device)
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        yield SampleState(0, schedule.T, x, None)
        B = x.shape[0]
        for n, i in enumerate(tqdm(range(K - 1, -1, -1), disable=not progress, desc=f"{sampler} sampling")):
            t_sub = torch.full((B,), i, dtype=torch.long, device=device)
            t_model = torch.full((B,), int(taus[i]), dtype=torch.long, device=device)
            out = model(x, t_model, **(model_kwargs or {}))
            mean_out, var_out = _check_output(out, x, variance, "model output", "x")
            p = _p_mean_variance(mean_out, var_out, x, t_sub, sub, parameterization, variance, clip_x0)
            z = torch.randn(x.shape, generator=gen, device=device, dtype=x.dtype) if i > 0 else None
            if sampler == "ddpm":
                x = p.mean if z is None else p.mean + torch.exp(0.5 * p.log_variance) * z
            else:
                x = _ddim_step(p.x0, p.eps, t_sub, sub, eta, z)
            yield SampleState(n + 1, int(taus[i - 1]) + 1 if i > 0 else 0, x, p.x0)
    finally:
        if was_training:
            model.train()


def _ddim_step(x0, eps, t, sub: Schedule, eta: float, z):
    """DDIM Eq. 12: √ᾱ_{t−1} x̂_0 + √(1−ᾱ_{t−1}−σ²) ε̂ + σ z, σ² = η² β̃_t."""
    ab_prev = _extract(sub.alpha_bars_prev, t, x0)
    var = eta**2 * _extract(sub.posterior_variance, t, x0)
    x = ab_prev.sqrt() * x0 + (1.0 - ab_prev - var).clamp(min=0).sqrt() * eps
    return x if z is None else x + var.sqrt() * z


def sample(model, shape: tuple[int, ...], schedule: Schedule, **kwargs) -> torch.Tensor:
    """Only the final samples x_0 of :func:`sample_loop` (same arguments).

    Algorithm 2 of Ho et al. (2020) with ``sampler="ddpm"`` (chapter "Training a denoiser"), DDIM
    (Song et al. 2021, Eq. 12) with ``sampler="ddim"`` (chapter "Sampling faster").
    """
    last = None
    for last in sample_loop(model, shape, schedule, **kwargs):  # noqa: B007 (we want the final state)
        pass
    return last.x


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")
