"""The paper's Sec. 4.3 figures: progressive generation, shared latents, progressive coding, interpolation.

Ho, Jain & Abbeel (2020), Sec. 4.3 and Appendix D; chapter "DDPM on MNIST" (derivation of the rate and
the distortion: "Progressive coding and rate–distortion").

- :func:`predicted_x0_along_chain`: the x̂_0 of Eq. (15) read off the reverse chain at several t (Fig. 6);
- :func:`shared_latent_samples`: several x_0 ~ p_θ(x_0 | x_t) continued from one frozen x_t (Fig. 7);
- :func:`rate_distortion`: progressive lossy coding (Algorithms 3 and 4): the rate, L_T plus the KL terms
  sent so far, in bits/dim, and the distortion, the RMSE of x̂_0(x_t), at every t (Fig. 5);
- :func:`interpolate_q`: encode two data points with q(x_t | x_0) (same noise), interpolate linearly, and
  decode with the reverse process (Fig. 8).

Every function takes (model, tensors, t, schedule, options), works on any batch shape (B, ...) and
on CPU and CUDA. The model is called as model(x_t, t) with the paper's t in [1, T].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from ._checks import check_batched, check_choice, check_float_tensor, check_int, check_noise, check_same_shape
from .forward import q_sample
from .losses import DECODERS, Model, prior_kl, vlb_term
from .parameterization import PARAMETERIZATIONS
from .reverse import VARIANCES, p_mean_variance
from .samplers import sample, sample_loop
from .schedules import Schedule


class ChainSnapshots(NamedTuple):
    """States of one reverse chain at the times ``t`` (K,): x_t (K, B, ...) and the x̂_0 predicted from it."""

    t: list[int]
    xt: torch.Tensor
    x0: torch.Tensor


def _times(name: str, ts: Sequence[int] | int, T: int) -> list[int]:
    ts = [ts] if isinstance(ts, int) else list(ts)
    if not ts:
        raise ValueError(f"{name} must hold at least one time in [1, T] = [1, {T}], got {ts!r}")
    return [check_int(name, t, ge=1, le=T) for t in ts]


@torch.no_grad()
def predicted_x0_along_chain(model: Model, shape: tuple[int, ...], ts: Sequence[int], schedule: Schedule, *,
                             seed: int | None = None, **sample_options) -> ChainSnapshots:
    """Progressive generation (Sec. 4.3, Fig. 6): run Algorithm 2 once and keep x_t and x̂_0(x_t) at ``ts``.

    x̂_0 = (x_t − √(1−ᾱ_t) ε_θ(x_t, t))/√ᾱ_t is Eq. (15) (for other parameterizations the network's own
    x̂_0, clipped if ``clip_x0`` is passed); early in the chain it shows the large-scale features the
    sample will have, late in the chain the details. ``shape``: (B, ...); ``ts``: times in [1, T];
    ``sample_options`` go to :func:`minidiff.sample_loop` (``parameterization``, ``variance``,
    ``clip_x0``, ``device``, ``progress``, ...). Returns :class:`ChainSnapshots`, in decreasing t.
    """
    wanted = sorted(set(_times("ts", ts, schedule.T)), reverse=True)
    xts, x0s, prev = {}, {}, None
    for state in sample_loop(model, shape, schedule, seed=seed, **sample_options):
        if prev is not None and prev.t in wanted:  # this state's x0 was predicted from the previous state's x
            xts[prev.t], x0s[prev.t] = prev.x, state.x0
        prev = state
    missing = [t for t in wanted if t not in x0s]
    if missing:
        raise ValueError(f"ts {missing} are not steps of this sampler (pass times of respace_timesteps)")
    return ChainSnapshots(wanted, torch.stack([xts[t] for t in wanted]), torch.stack([x0s[t] for t in wanted]))


@torch.no_grad()
def shared_latent_samples(model: Model, xt: torch.Tensor, t: int, schedule: Schedule, n: int = 4, *,
                          seed: int | None = None, **sample_options) -> torch.Tensor:
    """Fig. 7 of the paper: ``n`` samples x_0 ~ p_θ(x_0 | x_t) continued from each frozen x_t.

    Sec. 4.3: "when t is small, all but fine details are preserved, and when t is large, only large
    scale features are preserved". xt: (B, ...) the states at time t in [1, T]; the n·B chains run as
    one batch through :func:`minidiff.sample` (``start_t=t``), each with its own reverse-process noise.
    Returns (n, B, ...): entry [j, b] is the j-th continuation of xt[b].
    """
    check_float_tensor("xt", xt)
    B = check_batched("xt", xt)
    t = check_int("t", t, ge=1, le=schedule.T)
    n = check_int("n", n, ge=1)
    start = xt.repeat(n, *([1] * (xt.dim() - 1)))
    x0 = sample(model, tuple(start.shape), schedule, x_T=start, start_t=t, seed=seed, **sample_options)
    return x0.reshape(n, B, *xt.shape[1:])


@torch.no_grad()
def interpolate_q(model: Model, x0_a: torch.Tensor, x0_b: torch.Tensor, t: int, schedule: Schedule,
                  lambdas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), *, noise: torch.Tensor | None = None,
                  seed: int = 0, generator: torch.Generator | None = None, **sample_options) -> torch.Tensor:
    """Interpolation in the latent x_t (Sec. 4.3, Fig. 8; Appendix D.2).

    Encode both ends with Eq. (4) and the same noise ε (``noise``, default drawn from ``generator``),
    x_t = √ᾱ_t x0_a + √(1−ᾱ_t) ε and x'_t = √ᾱ_t x0_b + √(1−ᾱ_t) ε, mix x̄_t = (1−λ) x_t + λ x'_t, and
    decode x̄_t with the reverse process from t (:func:`minidiff.sample`, ``start_t=t``). Every λ is
    decoded with the same reverse-process noise (``seed``), so λ = 0 and λ = 1 are the decodes of the
    two ends and the rows differ only through λ, as in the paper ("we fixed the noise for different
    values of λ"). x0_a, x0_b: (B, ...) of the same shape, any data (images in [−1, 1], 2D points).
    Returns (L, B, ...) for the L lambdas.
    """
    check_float_tensor("x0_a", x0_a)
    check_batched("x0_a", x0_a)
    check_float_tensor("x0_b", x0_b)
    check_same_shape("x0_b", x0_b, "x0_a", x0_a)
    t = check_int("t", t, ge=1, le=schedule.T)
    lambdas = [float(v) for v in lambdas]
    if not lambdas or not all(math.isfinite(v) for v in lambdas):
        raise ValueError(f"lambdas must be a non-empty list of finite numbers, got {lambdas!r}")
    noise = check_noise(noise, x0_a, "x0_a", generator)
    xt_a, xt_b = q_sample(x0_a, t, schedule, noise), q_sample(x0_b, t, schedule, noise)
    out = [sample(model, tuple(x0_a.shape), schedule, x_T=(1 - lam) * xt_a + lam * xt_b, start_t=t, seed=seed,
                  **sample_options) for lam in lambdas]
    return torch.stack(out)


class RateDistortion(NamedTuple):
    """Progressive coding of x_0 (Algorithms 3 and 4), read at every t = 0, 1, ..., T.

    t: (T+1,) the times 0..T; rate: (T+1,) mean bits/dim needed to know x_t, L_T + Σ_{k=t}^{T−1} L_k
    (rate[0] is the whole negative ELBO, Eq. 5, and rate[T] = L_T); distortion: (T+1,) the RMSE of
    x̂_0(x_t) against x_0, on the data scale times ``scale`` (0 at t = 0, when x_0 itself is sent);
    rate_per_image: (B, T+1).
    """

    t: torch.Tensor
    rate: torch.Tensor
    distortion: torch.Tensor
    rate_per_image: torch.Tensor


@torch.no_grad()
def rate_distortion(model: Model, x0: torch.Tensor, schedule: Schedule, *, parameterization: str = "eps",
                    variance: str = "fixed_small", decoder: str = "discrete", clip_x0: float | None = None,
                    scale: float = 127.5, generator: torch.Generator | None = None, model_kwargs: dict | None = None,
                    progress: bool = False) -> RateDistortion:
    """Rate (bits/dim) and distortion (RMSE) of progressive lossy coding at every t (Sec. 4.3, Fig. 5).

    Algorithm 3 sends x_T ~ q(x_T | x_0) coded with p(x_T), then x_{T−1}, ..., x_1 ~ q(x_{t−1} | x_t, x_0)
    coded with p_θ(x_{t−1} | x_t), then x_0 with p_θ(x_0 | x_1); with minimal random coding each
    costs about its KL, so knowing x_t costs L_T + Σ_{k=t}^{T−1} L_k (the terms of Eq. 5) on average.
    Algorithm 4 decodes: at any t the receiver can estimate x̂_0 = (x_t − √(1−ᾱ_t) ε_θ(x_t, t))/√ᾱ_t
    (Eq. 15). The distortion at t is √(mean over images and dims of (x_0 − x̂_0)²) · ``scale``
    (127.5 turns images in [−1, 1] into the paper's [0, 255] scale; use 1 for other data).
    Like :func:`minidiff.negative_elbo`, each term is evaluated at its own x_t ~ q(x_t | x_0), with the
    same draws from ``generator``, so ``rate[0]`` equals its ``total`` averaged over the batch; the
    x̂_0 at t comes from the same network call as L_{t−1}. One network call per t (T in all).
    x0: (B, ...) in [−1, 1] for the discretized decoder (Eq. 13).
    """
    from tqdm.auto import tqdm

    check_float_tensor("x0", x0)
    B, T = check_batched("x0", x0), schedule.T
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("variance", variance, VARIANCES)
    check_choice("decoder", decoder, DECODERS)
    terms = torch.zeros(B, T, dtype=torch.float64, device=x0.device)
    sq_err = torch.zeros(T + 1, dtype=torch.float64)
    for t in tqdm(range(1, T + 1), disable=not progress, desc="rate-distortion"):
        tt = torch.full((B,), t, dtype=torch.long, device=x0.device)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        xt = q_sample(x0, tt, schedule, noise)
        output = model(xt, tt, **(model_kwargs or {}))
        terms[:, t - 1] = vlb_term(output, x0, xt, tt, schedule, parameterization=parameterization,
                                   variance=variance, decoder=decoder).double()
        x0_hat = p_mean_variance(output, xt, tt, schedule, parameterization=parameterization, variance=variance,
                                 clip_x0=clip_x0).x0
        sq_err[t] = float(((x0_hat.double() - x0.double()) ** 2).mean())
    ln2 = math.log(2.0)
    prior = prior_kl(x0, schedule).double() / ln2
    # rate[:, t] = L_T + Σ_{k=t}^{T−1} L_k: a reversed cumulative sum of the terms, plus the prior.
    tail = terms.flip(1).cumsum(1).flip(1) / ln2  # tail[:, k] = Σ_{j=k}^{T−1} L_j
    per_image = torch.cat([tail, torch.zeros(B, 1, dtype=tail.dtype, device=tail.device)], 1) + prior[:, None]
    per_image = per_image.cpu()
    return RateDistortion(torch.arange(T + 1), per_image.mean(0), sq_err.sqrt() * scale, per_image)


__all__ = ["ChainSnapshots", "RateDistortion", "interpolate_q", "predicted_x0_along_chain", "rate_distortion",
           "shared_latent_samples"]
