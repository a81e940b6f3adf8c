"""Training objectives: L_simple (Eq. 14), the variational bound L_vlb (Eq. 5), L_hybrid, the ELBO.

Chapters "Training a denoiser", "What should the network predict?" and the math chapter
"The ELBO and its decomposition". Per-example values are means over the data dimensions
("per dim"); divide nats by log 2 for bits/dim. t is the paper's, in [1, T]; everything after the
network output is computed in at least float32 (:func:`minidiff.reverse.split_output`).

One set of defaults for every entry point: the paper's (ε-prediction, L_simple, σ_t² = β̃_t for the
bound, the discretized decoder of Eq. 13). For real-valued toy data pass ``decoder="continuous"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import (
    check_batched,
    check_choice,
    check_float_tensor,
    check_int,
    check_noise,
    check_real,
    check_same_shape,
    check_timesteps,
)
from .forward import q_mean_variance, q_posterior_mean_variance, q_sample
from .parameterization import PARAMETERIZATIONS, from_x0_eps
from .reverse import VARIANCES, p_mean_variance, split_output
from .schedules import Schedule

LOSSES = ("simple", "vlb", "hybrid")
DECODERS = ("discrete", "continuous")

Model = Callable[..., torch.Tensor]


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the batch: (B, ...) -> (B,). No equation: the "per dim" average."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats.

    The closed form of each L_{t−1} of Eq. (5); with a fixed variance σ_t² it is Eq. (8),
    ‖μ̃_t − μ_θ‖²/(2σ_t²) + C. Chapter "The reverse process and the ELBO" (derivation: "The ELBO
    and its decomposition"). Floating-point tensors that broadcast together.
    """
    for name, a in (("mean1", mean1), ("logvar1", logvar1), ("mean2", mean2), ("logvar2", logvar2)):
        check_float_tensor(name, a)
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                        bins: int = 256) -> torch.Tensor:
    """log p(x_0 | x_1) for data on ``bins`` levels scaled to [−1, 1]: the decoder L_0.

    Eq. (13); derivation: "The ELBO and its decomposition" (no notebook chapter uses it: the toys
    are continuous). Integrates N(mean, e^{2 log_scale}) over each bin
    [x − 1/(bins−1), x + 1/(bins−1)], with the edge bins extended to ±∞. x must already be scaled
    to [−1, 1] (integer pixel values are rejected). Elementwise, in nats.
    """
    for name, a in (("x", x), ("mean", mean), ("log_scale", log_scale)):
        check_float_tensor(name, a)
    check_int("bins", bins, ge=2)
    half = 1.0 / (bins - 1)
    inv = torch.exp(-log_scale)
    cdf_plus = _std_normal_cdf(inv * (x - mean + half))
    cdf_minus = _std_normal_cdf(inv * (x - mean - half))
    tiny = 1e-12
    log_cdf_plus = torch.log(cdf_plus.clamp(min=tiny))
    log_one_minus_cdf_minus = torch.log((1.0 - cdf_minus).clamp(min=tiny))
    log_delta = torch.log((cdf_plus - cdf_minus).clamp(min=tiny))
    edge = 1.0 - half
    return torch.where(x < -edge, log_cdf_plus, torch.where(x > edge, log_one_minus_cdf_minus, log_delta))


def continuous_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, e^log_var), elementwise, in nats: the decoder L_0 for real-valued data.

    The L_0 = −log p_θ(x_0 | x_1) term of Eq. (5) with the Gaussian density itself in place of
    Eq. (13)'s discretization; chapter "The reverse process and the ELBO" (``decoder="continuous"``;
    derivation: "The ELBO and its decomposition"). Floating-point tensors that broadcast together.
    """
    for name, a in (("x", x), ("mean", mean), ("log_var", log_var)):
        check_float_tensor(name, a)
    return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var))


def prior_kl(x0: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per example, mean over dims, in nats.

    The L_T term of Eq. (5); chapters "The forward process" and "The reverse process and the ELBO".
    x0: (B, ...). Returns (B,).
    """
    check_float_tensor("x0", x0)
    check_batched("x0", x0)
    mean, var = q_mean_variance(x0, schedule.T, schedule)
    return mean_flat(normal_kl(mean, torch.log(var), torch.zeros_like(mean), torch.zeros_like(mean)))


def vlb_term(
    output: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule, *,
    parameterization: str = "eps", variance: str = "fixed_small", decoder: str = "discrete",
) -> torch.Tensor:
    """The term of Eq. (5) that x_t feeds, per example (mean over dims, nats). Returns (B,).

    For t ≥ 2: L_{t−1} = KL(q(x_{t−1} | x_t, x_0) || p_θ(x_{t−1} | x_t)), by :func:`normal_kl`; with a
    fixed variance this is Eq. (8), and with ε-prediction Eq. (12). For t = 1: L_0 = −log p_θ(x_0 | x_1)
    under the chosen ``decoder`` (Eq. 13 for ``discrete``). Chapter "The reverse process and the ELBO"
    (derivations: "The ELBO and its decomposition", "Predicting the noise: the ε-parameterization and
    L_simple"). output: the network's output at (xt, t), (B, C, ...) or (B, 2C, ...) for
    ``learned_range``; x0, xt: (B, C, ...); t: int or (B,) in [1, T].
    """
    check_choice("decoder", decoder, DECODERS)
    check_float_tensor("x0", x0)
    B = check_batched("x0", x0)
    check_float_tensor("xt", xt)
    check_same_shape("xt", xt, "x0", x0)
    t = check_timesteps(t, schedule.T, batch=B, x_name="x0", device=x0.device)
    p = p_mean_variance(output, xt, t, schedule, parameterization=parameterization, variance=variance)
    q_mean, _, q_logvar = q_posterior_mean_variance(x0, xt, t, schedule)
    kl = mean_flat(normal_kl(q_mean, q_logvar, p.mean, p.log_variance))
    if decoder == "discrete":
        nll = -discretized_gaussian_log_likelihood(x0, p.mean, 0.5 * p.log_variance)
    else:
        nll = -continuous_gaussian_log_likelihood(x0, p.mean, p.log_variance)
    return torch.where(t == 1, mean_flat(nll), kl)


def training_losses(
    model: Model, x0: torch.Tensor, schedule: Schedule, *, t: torch.Tensor | int | None = None,
    noise: torch.Tensor | None = None, loss: str = "simple", parameterization: str = "eps",
    variance: str = "fixed_small", decoder: str = "discrete", lambda_vlb: float = 1e-3,
    generator: torch.Generator | None = None, model_kwargs: dict | None = None,
) -> torch.Tensor:
    """Per-example training loss at uniformly drawn t (Algorithm 1). Returns (B,).

    - ``simple``: L_simple = ‖target − f_θ(x_t, t)‖², Eq. (14), target per ``parameterization``;
      chapter "Training a denoiser" (derivation: "Predicting the noise: the ε-parameterization and
      L_simple").
    - ``vlb``: T · L_{t−1}, an unbiased estimate of L_vlb − L_T (Eq. 5); all of it trains the network.
    - ``hybrid``: L_simple + λ T · L_{t−1} with the mean's gradient stopped in the vlb part
      (Nichol & Dhariwal 2021, Eq. (16) and Sec. 3.1; λ = 0.001).
    ``vlb`` and ``hybrid``: chapter "What should the network predict?". x0: (B, ...) floating point;
    ``t``: int or (B,) in [1, T] (default: drawn uniformly, t ~ Uniform({1, ..., T})); ``noise``:
    like x0 (default: drawn). ``model(x_t, t, **model_kwargs)`` gets t as (B,) and must return a
    float tensor shaped like x0 (twice the channels for ``variance="learned_range"``); the loss is
    computed in at least float32 even if the model ran in bf16. ``decoder`` (Eq. 13's ``discrete``,
    the paper's, or ``continuous`` for real-valued data) matters only for ``vlb``/``hybrid`` at t = 1.
    """
    check_float_tensor("x0", x0)
    B = check_batched("x0", x0)
    check_choice("loss", loss, LOSSES)
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("variance", variance, VARIANCES)
    check_choice("decoder", decoder, DECODERS)
    check_real("lambda_vlb", lambda_vlb, ge=0.0)
    if loss == "simple" and variance == "learned_range":
        raise ValueError("variance='learned_range' needs loss='hybrid' or loss='vlb'; L_simple cannot train it")
    if t is None:
        t = torch.randint(1, schedule.T + 1, (B,), device=x0.device, generator=generator)
    else:
        t = check_timesteps(t, schedule.T, batch=B, x_name="x0", device=x0.device)
    noise = check_noise(noise, x0, "x0", generator)
    xt = q_sample(x0, t, schedule, noise)
    output = model(xt, t, **(model_kwargs or {}))
    mean_out, var_out = split_output(output, x0, variance, name="model output", xt_name="x0")
    target = from_x0_eps(x0, noise, xt, t, schedule, parameterization)
    mse = mean_flat((target - mean_out) ** 2)
    if loss == "simple":
        return mse
    kw = dict(parameterization=parameterization, variance=variance, decoder=decoder)
    if loss == "vlb":
        return schedule.T * vlb_term(output, x0, xt, t, schedule, **kw)
    frozen = torch.cat([mean_out.detach(), var_out], dim=1) if var_out is not None else mean_out.detach()
    return mse + lambda_vlb * schedule.T * vlb_term(frozen, x0, xt, t, schedule, **kw)


@torch.no_grad()
def negative_elbo(
    model: Model, x0: torch.Tensor, schedule: Schedule, *, parameterization: str = "eps",
    variance: str = "fixed_small", decoder: str = "discrete", generator: torch.Generator | None = None,
    model_kwargs: dict | None = None, progress: bool = False,
) -> dict[str, torch.Tensor]:
    """The negative ELBO, the bound L of Eq. (3), as L_T + Σ_{t>1} L_{t−1} + L_0 (Eq. 5), in bits/dim.

    Chapter "The reverse process and the ELBO" (derivation: "The ELBO and its decomposition").
    Each L_{t−1} is evaluated at one x_t ~ q(x_t | x_0). x0: (B, ...) floating point. Returns
    per-example tensors: ``total`` (B,), ``prior`` (B,) = L_T, ``terms`` (B, T) with column k the L_k of
    Eq. (5) (k = 0..T−1; terms[:, 0] = L_0), computed from x_{k+1}. The model gets the paper's t.
    """
    from tqdm.auto import tqdm

    check_float_tensor("x0", x0)
    B, T = check_batched("x0", x0), schedule.T
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("variance", variance, VARIANCES)
    check_choice("decoder", decoder, DECODERS)
    terms = torch.zeros(B, T, dtype=torch.float64, device=x0.device)
    for t in tqdm(range(1, T + 1), disable=not progress, desc="ELBO terms"):
        tt = torch.full((B,), t, dtype=torch.long, device=x0.device)  # made on the device: no host copy per term
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        xt = q_sample(x0, tt, schedule, noise)
        output = model(xt, tt, **(model_kwargs or {}))
        split_output(output, x0, variance, name="model output", xt_name="x0")
        terms[:, t - 1] = vlb_term(output, x0, xt, tt, schedule, parameterization=parameterization, variance=variance,
                                   decoder=decoder).double()  # column k holds L_k, computed from x_{k+1}
    prior = prior_kl(x0, schedule).double()
    ln2 = math.log(2.0)
    return {"total": (terms.sum(1) + prior) / ln2, "prior": prior / ln2, "terms": terms / ln2}
