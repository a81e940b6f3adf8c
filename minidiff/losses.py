"""Training objectives: L_simple (Eq. 14), the variational bound L_vlb (Eq. 5), L_hybrid, the ELBO.

Chapters "Training a denoiser", "What should the network predict?" and the math chapter
"The ELBO and its decomposition". Per-example values are means over the data dimensions
("per dim"); divide nats by log 2 for bits/dim.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import check_choice, check_float_tensor, check_timesteps
from .forward import q_mean_variance, q_posterior_mean_variance, q_sample, q_sample_unchecked
from .parameterization import from_x0_eps
from .reverse import p_mean_variance, split_variance_output

LOSSES = ("simple", "vlb", "hybrid")
DECODERS = ("discrete", "continuous")

Model = Callable[..., torch.Tensor]


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the batch: (B, ...) -> (B,)."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats.

    The closed form of each L_{t−1} of Eq. 5; with a fixed variance σ_t² it is Eq. 8,
    ‖μ̃_t − μ_θ‖²/(2σ_t²) + C.
    """
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                        bins: int = 256) -> torch.Tensor:
    """log p(x_0 | x_1) for data on ``bins`` levels scaled to [−1, 1]  (the decoder of Eq. 13).

    Integrates N(mean, e^{2 log_scale}) over each bin [x − 1/(bins−1), x + 1/(bins−1)], with the
    edge bins extended to ±∞. Elementwise, in nats.
    """
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
    """log N(x; mean, e^log_var), elementwise, in nats: the L_0 decoder for real-valued data."""
    return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var))


def prior_kl(x0: torch.Tensor, schedule) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per example, mean over dims, in nats (Eq. 5)."""
    t = torch.full((x0.shape[0],), schedule.T - 1, dtype=torch.long, device=x0.device)
    mean, var = q_mean_variance(x0, t, schedule)
    return mean_flat(normal_kl(mean, torch.log(var), torch.zeros_like(mean), torch.zeros_like(mean)))


def vlb_term(
    output: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, schedule, *,
    parameterization: str = "eps", variance: str = "fixed_small", decoder: str = "discrete",
) -> torch.Tensor:
    """One term of Eq. 5 per example (mean over dims, nats).

    For t ≥ 1 (code index): L_{t} = KL(q(x_{t−1} | x_t, x_0) || p_θ(x_{t−1} | x_t)), by
    :func:`normal_kl`; with a fixed variance this is Eq. 8, and with ε-prediction Eq. 12.
    For t = 0: L_0 = −log p_θ(x_0 | x_1) under the chosen ``decoder``.
    """
    check_choice("decoder", decoder, DECODERS)
    p = p_mean_variance(output, xt, t, schedule, parameterization=parameterization, variance=variance)
    q_mean, _, q_logvar = q_posterior_mean_variance(x0, xt, t, schedule)
    kl = mean_flat(normal_kl(q_mean, q_logvar, p.mean, p.log_variance))
    if decoder == "discrete":
        nll = -discretized_gaussian_log_likelihood(x0, p.mean, 0.5 * p.log_variance)
    else:
        nll = -continuous_gaussian_log_likelihood(x0, p.mean, p.log_variance)
    return torch.where(t == 0, mean_flat(nll), kl)


def training_losses(
    model: Model, x0: torch.Tensor, schedule, *, t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None, loss: str = "simple", parameterization: str = "eps",
    variance: str = "fixed_small", decoder: str = "discrete", lambda_vlb: float = 1e-3,
    generator: torch.Generator | None = None, model_kwargs: dict | None = None,
) -> torch.Tensor:
    """Per-example training loss at uniformly drawn t (Algorithm 1). Returns (B,).

    - ``simple``: L_simple = ‖target − f_θ(x_t, t)‖² (Eq. 14), target per ``parameterization``.
    - ``vlb``: T · L_t, an unbiased estimate of L_vlb − L_T (Eq. 5); all of it trains the network.
    - ``hybrid``: L_simple + λ T · L_t with the mean's gradient stopped in the vlb part
      (Nichol & Dhariwal 2021, Sec. 3.1; λ = 0.001).
    """
    check_float_tensor("x0", x0)
    check_choice("loss", loss, LOSSES)
    B = x0.shape[0]
    if t is None:  # drawn here, so valid: skip the check (it would cost a GPU sync every step)
        t = torch.randint(0, schedule.T, (B,), device=x0.device, generator=generator)
    else:
        check_timesteps(t, schedule.T, batch=B)
    if noise is None:
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0, {tuple(x0.shape)}, got {tuple(noise.shape)}")
    xt = q_sample_unchecked(x0, t, schedule, noise)
    output = model(xt, t, **(model_kwargs or {}))
    mean_out, var_out = split_variance_output(output, variance)
    if mean_out.shape != x0.shape:
        raise ValueError(f"network output has shape {tuple(mean_out.shape)}, expected {tuple(x0.shape)}")
    if loss == "simple" and var_out is not None:
        raise ValueError("variance='learned_range' needs loss='hybrid' or loss='vlb'; L_simple cannot train it")
    target = from_x0_eps(x0, noise, xt, t, schedule, parameterization)
    mse = mean_flat((target - mean_out) ** 2)
    if loss == "simple":
        return mse
    kw = dict(parameterization=parameterization, variance=variance, decoder=decoder)
    if loss == "vlb":
        return schedule.T * vlb_term(output, x0, xt, t, schedule, **kw)
    frozen = output.detach() if var_out is None else torch.cat([mean_out.detach(), var_out], dim=1)
    return mse + lambda_vlb * schedule.T * vlb_term(frozen, x0, xt, t, schedule, **kw)


@torch.no_grad()
def negative_elbo(
    model: Model, x0: torch.Tensor, schedule, *, parameterization: str = "eps",
    variance: str = "fixed_small", decoder: str = "discrete", generator: torch.Generator | None = None,
    model_kwargs: dict | None = None, progress: bool = False,
) -> dict[str, torch.Tensor]:
    """The negative ELBO, the bound L of Eq. 3, as L_T + Σ_{t>1} L_{t−1} + L_0 (Eq. 5), in bits/dim.

    Each L_{t−1} is evaluated at one x_t ~ q(x_t | x_0). Returns per-example tensors:
    ``total`` (B,), ``prior`` (B,) = L_T, ``terms`` (B, T) with terms[:, 0] = L_0.
    """
    from tqdm.auto import tqdm

    check_float_tensor("x0", x0)
    B, T = x0.shape[0], schedule.T
    terms = torch.zeros(B, T, dtype=torch.float64, device=x0.device)
    for i in tqdm(range(T), disable=not progress, desc="ELBO terms"):
        t = torch.full((B,), i, dtype=torch.long, device=x0.device)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        xt = q_sample(x0, t, schedule, noise)
        out = model(xt, t, **(model_kwargs or {}))
        terms[:, i] = vlb_term(out, x0, xt, t, schedule, parameterization=parameterization,
                               variance=variance, decoder=decoder).double()
    prior = prior_kl(x0, schedule).double()
    ln2 = math.log(2.0)
    return {"total": (terms.sum(1) + prior) / ln2, "prior": prior / ln2, "terms": terms / ln2}
