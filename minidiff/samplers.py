"""Sampling: one loop for ancestral DDPM (Algorithm 2) and DDIM (Song et al. 2021), with respacing.

The two samplers differ only in how x_{t−1} is drawn from (x_t, x̂_0, ε̂):
- ``ddpm``: x_{t−1} ~ p_θ(x_{t−1} | x_t) = N(μ_θ, σ_t²), σ_t² from ``variance`` (Eq. 11, Algorithm 2);
- ``ddim``: x_{t−1} = √ᾱ_{t−1} x̂_0 + √(1−ᾱ_{t−1}−σ_t²) ε̂ + σ_t z with σ_t² = η² β̃_t
  (DDIM Eq. 12, with σ_t(η) of their Eq. 16); η = 0 is deterministic and η = 1 gives DDPM with σ_t² = β̃_t.
Running on a subset of K of the T steps ("respacing") works for both. Chapter "Sampling faster".
Time is the paper's: the network is called as model(x_t, t) with t in [1, T], and
:class:`SampleState` carries the t of its x (T for the initial noise, 0 for the final sample).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch

from ._checks import check_choice, check_float_tensor, check_int, check_real, check_shape, check_steps
from .parameterization import PARAMETERIZATIONS
from .reverse import VARIANCES, p_mean_variance, split_output
from .schedules import Schedule, extract

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


def initial_noise(shape: tuple[int, ...], x_T: torch.Tensor | None, generator: torch.Generator | None,
                  device: torch.device | str) -> torch.Tensor:
    """x_T ~ N(0, I) of ``shape`` (Algorithm 2, line 1), or the given ``x_T`` after checking it."""
    shape = check_shape(shape)
    if x_T is None:
        return torch.randn(shape, generator=generator, device=device)
    check_float_tensor("x_T", x_T)
    if tuple(x_T.shape) != shape:
        raise ValueError(f"x_T must have shape {shape}, got {tuple(x_T.shape)}")
    return x_T.to(device)


def respace_timesteps(T: int, K: int, spacing: str = "uniform") -> torch.Tensor:
    """K increasing timesteps (the paper's t) out of 1..T, always including 1 and T.

    Nichol & Dhariwal (2021), Sec. 4 (``uniform``: evenly spaced) and Song et al. (2021), App. D.2
    (``quadratic``: τ_i − 1 ∝ i², denser near the data); chapter "Sampling faster". Returns (K,) long.
    """
    check_choice("spacing", spacing, SPACINGS)
    check_int("T", T, ge=1)
    K = check_steps("K", K, T)
    if K == 1:
        return torch.tensor([T])
    u = torch.linspace(0.0, 1.0, K, dtype=torch.float64)
    ts = 1 + torch.round((T - 1) * (u if spacing == "uniform" else u**2)).long()  # from t = 1 to t = T
    for i in range(1, K):  # quadratic spacing may repeat small times: push them apart
        ts[i] = max(int(ts[i]), int(ts[i - 1]) + 1)
    for i in range(K - 2, -1, -1):  # ...without running past T
        ts[i] = min(int(ts[i]), int(ts[i + 1]) - 1)
    return ts


def _make_generator(generator: torch.Generator | None, seed: int | None,
                    device: torch.device) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is not None:
        return torch.Generator(device=device).manual_seed(check_int("seed", seed))
    return generator


@torch.no_grad()
def sample_loop(
    model: Callable[..., torch.Tensor], shape: tuple[int, ...], schedule: Schedule, *, sampler: str = "ddpm",
    steps: int | None = None, spacing: str = "uniform", eta: float = 0.0,
    parameterization: str = "eps", variance: str = "fixed_small", clip_x0: float | None = None,
    x_T: torch.Tensor | None = None, generator: torch.Generator | None = None, seed: int | None = None,
    device: torch.device | str | None = None, model_kwargs: dict | None = None, progress: bool = False,
    start_t: int | None = None,
) -> Iterator[SampleState]:
    """Run the reverse chain from x_T ~ N(0, I), yielding every intermediate :class:`SampleState`.

    ``sampler="ddpm"`` is Algorithm 2 of Ho et al. (2020): x_{t−1} = μ_θ(x_t, t) + σ_t z, z = 0 at
    the last step, with μ_θ of Eq. (11) for ε-prediction; chapter "Training a denoiser" (derivation:
    "Predicting the noise: the ε-parameterization and L_simple"). ``sampler="ddim"``: Song et al.
    (2021), Eq. (12); chapter "Sampling faster". model(x_t, t, **model_kwargs) returns the network
    output (B, C, ...) for the paper's t (B,) in [1, T]. ``steps``: K ≤ T steps on the times
    τ_1 < ... < τ_K of :func:`respace_timesteps` (default: all T); ``eta`` ≥ 0 is DDIM's and must
    be 0 for ``ddpm``; ``clip_x0``: None or c > 0. ``x_T``: a float tensor of ``shape`` (default:
    drawn). Reproducible: pass ``seed`` or a ``torch.Generator`` on the sampling device. The
    arguments are checked once, up front; each step's math checks only what needs no host sync.
    ``start_t``: continue the chain from a given x_t instead of from x_T ~ N(0, I) (default: T).
    ``x_T`` is then that x_t, and start_t must be one of the sampler's timesteps; the first state has
    t = start_t. The paper's Figs. 7 and 8 (chapter "DDPM on MNIST", :mod:`minidiff.progressive`).
    """
    from tqdm.auto import tqdm

    check_choice("sampler", sampler, SAMPLERS)
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("variance", variance, VARIANCES)
    check_real("eta", eta, ge=0.0)
    if sampler == "ddpm" and eta != 0:
        raise ValueError(f"eta is used by sampler='ddim' only, got eta = {eta} with sampler='ddpm'")
    if clip_x0 is not None:
        clip_x0 = check_real("clip_x0", clip_x0, gt=0.0)
    if device is None:
        device = x_T.device if isinstance(x_T, torch.Tensor) else _model_device(model)
    device = torch.device(device)
    K = schedule.T if steps is None else check_steps("steps", steps, schedule.T)
    taus = respace_timesteps(schedule.T, K, spacing)
    sub = schedule.respaced(taus).to(device)  # K steps: sub-step i is the paper's time taus[i]
    times = torch.cat([torch.zeros(1, dtype=torch.long), taus]).tolist()  # times[i] = τ_i, τ_0 = 0 (the data)
    start = K
    if start_t is not None:
        start_t = check_int("start_t", start_t, ge=1, le=schedule.T)
        if start_t not in times[1:]:
            raise ValueError(f"start_t must be one of the sampler's {K} timesteps (respace_timesteps), "
                             f"got start_t = {start_t}")
        if x_T is None:
            raise ValueError(f"start_t = {start_t} needs x_T, the x_t to continue from")
        start = times.index(start_t)
    gen = _make_generator(generator, seed, device)
    x = initial_noise(shape, x_T, gen, device)
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        yield SampleState(0, times[start], x, None)
        B = x.shape[0]
        for n, i in enumerate(tqdm(range(start, 0, -1), disable=not progress, desc=f"{sampler} sampling")):
            t = torch.full((B,), times[i], dtype=torch.long, device=device)  # the paper's t = τ_i
            i_sub = torch.full((B,), i, dtype=torch.long, device=device)  # step i of the respaced schedule
            out = model(x, t, **(model_kwargs or {}))
            split_output(out, x, variance, name="model output", xt_name="x")  # an error names the network
            p = p_mean_variance(out, x, i_sub, sub, parameterization=parameterization, variance=variance,
                                clip_x0=clip_x0)
            z = torch.randn(x.shape, generator=gen, device=device, dtype=x.dtype) if i > 1 else None
            if sampler == "ddpm":
                x = p.mean if z is None else p.mean + torch.exp(0.5 * p.log_variance) * z
            else:
                x = ddim_step(p.x0, p.eps, i_sub, sub, eta, z)
            yield SampleState(n + 1, times[i - 1], x, p.x0)
    finally:
        if was_training:
            model.train()


def ddim_step(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int, schedule: Schedule, eta: float = 0.0,
              z: torch.Tensor | None = None) -> torch.Tensor:
    """x_{t−1} = √ᾱ_{t−1} x̂_0 + √(1−ᾱ_{t−1}−σ_t²) ε̂ + σ_t z with σ_t² = η² β̃_t.

    Song et al. (2021), Eq. (12) with σ_t(η) of their Eq. (16); chapter "Sampling faster". x0, eps:
    (B, ...) the x̂_0 and ε̂ at x_t; t: int or (B,) in [1, T]; z: N(0, I) like x0, or None (no noise,
    as at the last step).
    """
    ab_prev = extract(schedule.alpha_bars_prev, t, x0)
    var = eta**2 * extract(schedule.posterior_variance, t, x0)
    x = ab_prev.sqrt() * x0 + (1.0 - ab_prev - var).clamp(min=0).sqrt() * eps
    return x if z is None else x + var.sqrt() * z


def sample(model: Callable[..., torch.Tensor], shape: tuple[int, ...], schedule: Schedule, **kwargs) -> torch.Tensor:
    """Only the final samples x_0 of :func:`sample_loop` (same arguments).

    Algorithm 2 of Ho et al. (2020) with ``sampler="ddpm"`` (chapter "Training a denoiser"), DDIM
    (Song et al. 2021, Eq. 12) with ``sampler="ddim"`` (chapter "Sampling faster").
    """
    last = None
    for last in sample_loop(model, shape, schedule, **kwargs):  # noqa: B007 (we want the final state)
        pass
    return last.x


def _model_device(model: Callable[..., torch.Tensor]) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")
