"""Noise schedules and every quantity derived from them.

Conventions (also on the book's notation page). The paper indexes time t = 1, ..., T; code
indexes it ``t = 0, ..., T-1``, so ``betas[t]`` is the paper's β_{t+1}. Every array is computed
in float64 and cast to the data's dtype on use (:func:`extract`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from ._checks import check_choice, check_timesteps

SCHEDULES = ("linear", "cosine", "quadratic", "sigmoid")


def _check_T(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, int):
        raise TypeError(f"T must be an int, got {type(T).__name__} {T!r}")
    if T < 1:
        raise ValueError(f"T must be >= 1, got T = {T}")
    return T


def _check_beta_range(beta_start: float, beta_end: float) -> None:
    for name, b in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not 0.0 < b < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {b}")
    if beta_start > beta_end:
        raise ValueError(f"beta_start must be <= beta_end, got {beta_start} > {beta_end}")


def linear_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """The paper's schedule: β_t rising linearly from 1e-4 to 0.02 (Ho et al. 2020, Sec. 4).

    For T != 1000 the end points are rescaled by 1000/T (as in Nichol & Dhariwal 2021) only if
    you ask for it; here they are used as given. Returns (T,) float64.
    """
    _check_T(T)
    _check_beta_range(beta_start, beta_end)
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def quadratic_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """β_t linear in √β, from beta_start to beta_end (the DDPM repo's ``quad`` schedule)."""
    _check_T(T)
    _check_beta_range(beta_start, beta_end)
    return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2


def sigmoid_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """β_t following a sigmoid from beta_start to beta_end over x in [-6, 6] (DDPM repo)."""
    _check_T(T)
    _check_beta_range(beta_start, beta_end)
    x = torch.linspace(-6.0, 6.0, T, dtype=torch.float64)
    return torch.sigmoid(x) * (beta_end - beta_start) + beta_start


def cosine_alpha_bar(u: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """f(u)/f(0) with f(u) = cos²((u + s)/(1 + s) · π/2), u = t/T (Nichol & Dhariwal 2021, Eq. 17)."""
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    return f / f0


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """β_t = 1 − ᾱ_t/ᾱ_{t−1} from the cosine ᾱ of Nichol & Dhariwal 2021 (Eq. 17), clipped at 0.999."""
    _check_T(T)
    if not 0.0 < max_beta < 1.0:
        raise ValueError(f"max_beta must be in (0, 1), got {max_beta}")
    u = torch.arange(T + 1, dtype=torch.float64) / T
    ab = cosine_alpha_bar(u, s)
    return (1 - ab[1:] / ab[:-1]).clamp(max=max_beta)


def make_betas(name: str = "linear", T: int = 1000, **kwargs: float) -> torch.Tensor:
    """β_1..β_T for a named schedule: one of ``linear`` (default), ``cosine``, ``quadratic``, ``sigmoid``."""
    check_choice("schedule", name, SCHEDULES)
    fn = {"linear": linear_betas, "cosine": cosine_betas,
          "quadratic": quadratic_betas, "sigmoid": sigmoid_betas}[name]
    return fn(T, **kwargs)


@dataclass(frozen=True)
class Schedule:
    """A noise schedule β_1..β_T and everything the paper derives from it (all (T,) float64).

    Build one with :func:`get_schedule` (named) or :meth:`Schedule.from_betas` (any β array).
    Chapter "The forward process".
    """

    betas: torch.Tensor
    alphas: torch.Tensor  # α_t = 1 − β_t
    alpha_bars: torch.Tensor  # ᾱ_t = Π_{s≤t} α_s
    alpha_bars_prev: torch.Tensor  # ᾱ_{t−1}, with ᾱ_0 = 1
    sqrt_alpha_bars: torch.Tensor  # √ᾱ_t   (Eq. 4 mean)
    sqrt_one_minus_alpha_bars: torch.Tensor  # √(1−ᾱ_t)  (Eq. 4 std)
    posterior_variance: torch.Tensor  # β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t) β_t  (Eq. 7)
    posterior_log_variance_clipped: torch.Tensor  # log β̃_t with β̃_1 replaced by β̃_2
    posterior_mean_coef1: torch.Tensor  # √ᾱ_{t−1} β_t/(1−ᾱ_t), multiplies x_0  (Eq. 7)
    posterior_mean_coef2: torch.Tensor  # √α_t (1−ᾱ_{t−1})/(1−ᾱ_t), multiplies x_t  (Eq. 7)
    snr: torch.Tensor  # ᾱ_t/(1−ᾱ_t)
    log_snr: torch.Tensor  # log SNR(t)

    @property
    def T(self) -> int:
        """Number of diffusion steps."""
        return int(self.betas.shape[0])

    @classmethod
    def from_betas(cls, betas: torch.Tensor | list[float]) -> Schedule:
        """Build a schedule from any β_1..β_T with every β_t in (0, 1)."""
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if betas.dim() != 1 or betas.numel() < 1:
            raise ValueError(f"betas must be a 1-D array with T >= 1 entries, got shape {tuple(betas.shape)}")
        bad = (betas <= 0) | (betas >= 1) | ~torch.isfinite(betas)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(f"every beta must be in (0, 1), got betas[{i}] = {betas[i].item()}")
        alphas = 1.0 - betas
        alpha_bars = torch.cumprod(alphas, 0)
        alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        post_var = betas * (1.0 - alpha_bars_prev) / (1.0 - alpha_bars)
        # β̃ at the first step is 0; its log is clipped to the next value (as in the DDPM code).
        clip_src = post_var[1] if betas.numel() > 1 else betas[0]
        post_logvar = torch.log(torch.cat([clip_src.reshape(1), post_var[1:]]))
        snr = alpha_bars / (1.0 - alpha_bars)
        return cls(
            betas=betas, alphas=alphas, alpha_bars=alpha_bars, alpha_bars_prev=alpha_bars_prev,
            sqrt_alpha_bars=alpha_bars.sqrt(), sqrt_one_minus_alpha_bars=(1.0 - alpha_bars).sqrt(),
            posterior_variance=post_var, posterior_log_variance_clipped=post_logvar,
            posterior_mean_coef1=alpha_bars_prev.sqrt() * betas / (1.0 - alpha_bars),
            posterior_mean_coef2=alphas.sqrt() * (1.0 - alpha_bars_prev) / (1.0 - alpha_bars),
            snr=snr, log_snr=torch.log(snr),
        )

    def respaced(self, timesteps: torch.Tensor | list[int]) -> Schedule:
        """The schedule restricted to an increasing subset τ of steps (Nichol & Dhariwal 2021, Sec. 4).

        Keeps ᾱ at the kept steps and sets β'_i = 1 − ᾱ_{τ_i}/ᾱ_{τ_{i−1}}; chapter "Sampling faster".
        """
        ts = torch.as_tensor(timesteps, dtype=torch.long)
        check_timesteps(ts, self.T)
        if ts.numel() > 1 and not bool((ts[1:] > ts[:-1]).all()):
            raise ValueError(f"timesteps must be strictly increasing, got {ts.tolist()}")
        ab = self.alpha_bars[ts]
        prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        return Schedule.from_betas(1.0 - ab / prev)

    def to(self, device: torch.device | str) -> Schedule:
        """A copy with every array moved to ``device`` (still float64)."""
        return Schedule(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def get_schedule(name: str = "linear", T: int = 1000, **kwargs: float) -> Schedule:
    """A :class:`Schedule` for a named β schedule (default: the paper's linear 1e-4 → 0.02, T=1000)."""
    return Schedule.from_betas(make_betas(name, T, **kwargs))


def extract(a: torch.Tensor, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
    """Gather ``a[t]`` and shape it to broadcast against ``x`` (B, ...), cast to x's dtype/device."""
    if isinstance(t, int):
        t = torch.tensor(t)
    out = a.to(device=x.device)[t.to(x.device)].to(x.dtype)
    if out.dim() == 0:
        return out
    return out.reshape(out.shape[0], *([1] * (x.dim() - 1)))
