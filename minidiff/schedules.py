"""Noise schedules and every quantity derived from them.

Conventions (also on the book's notation page). Time is the paper's everywhere: t = 1, ..., T, and
t = 0 is the data x_0. Every per-step array of a :class:`Schedule` has T + 1 entries and is indexed
by that t, so ``schedule.alpha_bars[t]`` is ᾱ_t; entry 0 holds the value at t = 0 (ᾱ_0 = 1, β_0 = 0).
The one place where a 0-indexed timestep appears is :func:`to_zero_indexed`, used by the networks'
sinusoidal embeddings (to stay weight-compatible with the official DDPM code and diffusers) and for
diffusers-style timestep lists. Every array is computed in float64 and cast to the data's dtype on
use (:func:`extract`). Chapter "The forward process".
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, fields

import torch

from ._checks import check_choice, check_float_tensor, check_int, check_real, check_timesteps

SCHEDULES = ("linear", "cosine", "quadratic", "sigmoid")


def _check_T(T: int) -> int:
    return check_int("T", T, ge=1)


def _check_beta_range(beta_start: float, beta_end: float) -> None:
    for name, b in (("beta_start", beta_start), ("beta_end", beta_end)):
        check_real(name, b)
        if not 0.0 < b < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {b}")
    if beta_start > beta_end:
        raise ValueError(f"beta_start must be <= beta_end, got {beta_start} > {beta_end}")


def linear_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """The paper's schedule: β_t rising linearly from 1e-4 to 0.02 (Ho et al. 2020, Sec. 4).

    No numbered equation; chapter "The forward process". For T != 1000 the end points are used as
    given (Nichol & Dhariwal 2021 rescale them by 1000/T; pass the rescaled values if you want that).
    Returns (T,) float64.
    """
    _check_T(T)
    _check_beta_range(beta_start, beta_end)
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def quadratic_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """β_t linear in √β, from beta_start to beta_end: the ``quad`` schedule of the DDPM code.

    No equation: it is in Ho et al.'s released code, not in the paper; chapter "The forward
    process" (section "Four schedules"). Returns (T,) float64.
    """
    _check_T(T)
    _check_beta_range(beta_start, beta_end)
    return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2


def sigmoid_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """β_t following a sigmoid over [−6, 6] from beta_start to beta_end: the ``sigmoid`` schedule.

    No equation: it is in the released code of DDIM (Song et al. 2021, ``get_beta_schedule``), not
    in a paper (Ho et al.'s code has ``quad`` but not this one); chapter "The forward process"
    (section "Four schedules"). Returns (T,) float64.
    """
    _check_T(T)
    _check_beta_range(beta_start, beta_end)
    x = torch.linspace(-6.0, 6.0, T, dtype=torch.float64)
    return torch.sigmoid(x) * (beta_end - beta_start) + beta_start


def cosine_alpha_bar(u: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """ᾱ(u) = f(u)/f(0), f(u) = cos²((u + s)/(1 + s) · π/2) at u = t/T ∈ [0, 1].

    Nichol & Dhariwal (2021), Eq. (17); chapter "The forward process". ``s`` ≥ 0 is the small
    offset that keeps β_t from being tiny near t = 0 (0.008 in the paper).
    """
    check_float_tensor("u", u)
    check_real("s", s, ge=0.0)
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    return f / f0


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """β_t = 1 − ᾱ_t/ᾱ_{t−1} from the cosine ᾱ, clipped at ``max_beta`` (0.999 in the paper).

    Nichol & Dhariwal (2021), Eq. (17) and the clipping below it; chapter "The forward process".
    Returns (T,) float64.
    """
    _check_T(T)
    check_real("s", s, ge=0.0)
    check_real("max_beta", max_beta)
    if not 0.0 < max_beta < 1.0:
        raise ValueError(f"max_beta must be in (0, 1), got {max_beta}")
    u = torch.arange(T + 1, dtype=torch.float64) / T
    ab = cosine_alpha_bar(u, s)
    return (1 - ab[1:] / ab[:-1]).clamp(max=max_beta)


_BETA_FNS = {"linear": linear_betas, "cosine": cosine_betas, "quadratic": quadratic_betas, "sigmoid": sigmoid_betas}


def make_betas(name: str = "linear", T: int = 1000, **kwargs: float) -> torch.Tensor:
    """β_1..β_T for a named schedule: ``linear`` (the paper's, default), ``cosine``, ``quadratic``, ``sigmoid``.

    Ho et al. (2020), Sec. 4 (linear); Nichol & Dhariwal (2021), Eq. (17) (cosine); chapter "The
    forward process". ``kwargs`` go to the schedule's function (``beta_start``, ``beta_end``; for
    ``cosine``: ``s``, ``max_beta``). Returns (T,) float64.
    """
    check_choice("schedule", name, SCHEDULES)
    fn = _BETA_FNS[name]
    allowed = [p for p in inspect.signature(fn).parameters if p != "T"]
    for key in kwargs:
        if key not in allowed:
            raise TypeError(f"schedule {name!r} has no argument {key!r} (got {key}={kwargs[key]!r}); "
                            f"valid arguments are: {', '.join(map(repr, allowed))}")
    return fn(T, **kwargs)


@dataclass(frozen=True)
class Schedule:
    """A noise schedule β_1..β_T and everything the paper derives from it, indexed by the paper's t.

    Every array is (T + 1,) float64 and entry t is the quantity at the paper's t = 1..T
    (``alpha_bars[t]`` is ᾱ_t, ``alpha_bars[T]`` = Π_{s=1}^T α_s). Entry 0 is t = 0, the data:
    β_0 = 0, α_0 = ᾱ_0 = 1, √(1−ᾱ_0) = 0, SNR_0 = +inf. Quantities not defined at t = 0 hold a
    harmless placeholder that no formula reads: ᾱ_{−1} := 1 in ``alpha_bars_prev``, β̃_0 := 0,
    ``posterior_log_variance_clipped[0]`` := its value at t = 1, and coefficients (1, 0) that make
    μ̃_0 = x_0. ᾱ_t of Eq. (4) and β̃_t, μ̃_t's coefficients of Eq. (7); chapter "The forward
    process" (and "The reverse process and the ELBO" for the posterior). Build one with
    :func:`get_schedule` (named) or :meth:`Schedule.from_betas` (any β_1..β_T).
    """

    betas: torch.Tensor  # β_t  (β_0 = 0)
    alphas: torch.Tensor  # α_t = 1 − β_t
    alpha_bars: torch.Tensor  # ᾱ_t = Π_{s≤t} α_s  (ᾱ_0 = 1)
    alpha_bars_prev: torch.Tensor  # ᾱ_{t−1}  (placeholder 1 at t = 0)
    sqrt_alpha_bars: torch.Tensor  # √ᾱ_t   (Eq. 4 mean)
    sqrt_one_minus_alpha_bars: torch.Tensor  # √(1−ᾱ_t)  (Eq. 4 std)
    posterior_variance: torch.Tensor  # β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t) β_t  (Eq. 7; β̃_1 = 0)
    posterior_log_variance_clipped: torch.Tensor  # log β̃_t with log β̃_1 replaced by log β̃_2
    posterior_mean_coef1: torch.Tensor  # √ᾱ_{t−1} β_t/(1−ᾱ_t), multiplies x_0  (Eq. 7)
    posterior_mean_coef2: torch.Tensor  # √α_t (1−ᾱ_{t−1})/(1−ᾱ_t), multiplies x_t  (Eq. 7)
    snr: torch.Tensor  # ᾱ_t/(1−ᾱ_t)  (+inf at t = 0)
    log_snr: torch.Tensor  # log SNR(t)

    @property
    def T(self) -> int:
        """Number of diffusion steps (the arrays have T + 1 entries, t = 0..T)."""
        return int(self.betas.shape[0]) - 1

    @classmethod
    def from_betas(cls, betas: torch.Tensor | list[float]) -> Schedule:
        """Build a schedule from any β_1..β_T, a list of T ≥ 1 values in (0, 1).

        ᾱ_t = Π_{s≤t}(1 − β_s) (Eq. 4) and the posterior's β̃_t and coefficients (Eq. 7); chapter
        "The forward process". The result's arrays are indexed by t = 0..T (:class:`Schedule`).
        """
        if isinstance(betas, torch.Tensor) and (betas.is_complex() or betas.dtype == torch.bool):
            raise TypeError(f"betas must hold real numbers, got dtype {betas.dtype}")
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if betas.dim() != 1 or betas.numel() < 1:
            raise ValueError(f"betas must be a 1-D array with T >= 1 entries, got shape {tuple(betas.shape)}")
        bad = (betas <= 0) | (betas >= 1) | ~torch.isfinite(betas)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(f"every beta must be in (0, 1), got beta_{i + 1} = {betas[i].item()}")
        zero, one = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
        b = betas  # β_1..β_T; every formula below is the paper's at t = 1..T
        alphas = 1.0 - b
        ab = torch.cumprod(alphas, 0)
        ab_prev = torch.cat([one, ab[:-1]])
        post_var = b * (1.0 - ab_prev) / (1.0 - ab)
        # β̃_1 = 0; its log is clipped to log β̃_2 (as in the DDPM code), to log β_1 when T = 1.
        clip_src = post_var[1] if b.numel() > 1 else b[0]
        post_logvar = torch.log(torch.cat([clip_src.reshape(1), post_var[1:]]))
        snr = ab / (1.0 - ab)

        def with_t0(at_0: torch.Tensor | float, values: torch.Tensor) -> torch.Tensor:
            """Prepend the entry for t = 0, so that index t is the paper's t."""
            return torch.cat([torch.as_tensor(at_0, dtype=torch.float64).reshape(1), values])

        return cls(
            betas=with_t0(zero, b), alphas=with_t0(one, alphas), alpha_bars=with_t0(one, ab),
            alpha_bars_prev=with_t0(one, ab_prev), sqrt_alpha_bars=with_t0(one, ab.sqrt()),
            sqrt_one_minus_alpha_bars=with_t0(zero, (1.0 - ab).sqrt()),
            posterior_variance=with_t0(zero, post_var),
            posterior_log_variance_clipped=with_t0(post_logvar[0], post_logvar),
            posterior_mean_coef1=with_t0(one, ab_prev.sqrt() * b / (1.0 - ab)),
            posterior_mean_coef2=with_t0(zero, alphas.sqrt() * (1.0 - ab_prev) / (1.0 - ab)),
            snr=with_t0(math.inf, snr), log_snr=with_t0(math.inf, torch.log(snr)),
        )

    def respaced(self, timesteps: torch.Tensor | list[int]) -> Schedule:
        """The schedule restricted to increasing steps τ_1 < ... < τ_K (Nichol & Dhariwal 2021, Sec. 4).

        Keeps ᾱ at the kept steps: the result has K steps with ᾱ'_i = ᾱ_{τ_i}, i.e.
        β'_i = 1 − ᾱ_{τ_i}/ᾱ_{τ_{i−1}} (ᾱ_{τ_0} = ᾱ_0 = 1); chapter "Sampling faster".
        timesteps: K ≥ 1 strictly increasing paper times in [1, T].
        """
        ts = torch.as_tensor(timesteps)
        if ts.is_floating_point() and bool((ts == ts.round()).all()):
            ts = ts.long()  # whole numbers given as floats (e.g. np.linspace(...).round())
        if ts.dim() != 1 or ts.numel() < 1:
            raise ValueError(f"timesteps must be a 1-D list of K >= 1 steps, got shape {tuple(ts.shape)}")
        ts = check_timesteps(ts, self.T, name="timesteps")
        if ts.numel() > 1 and not bool((ts[1:] > ts[:-1]).all()):
            raise ValueError(f"timesteps must be strictly increasing, got {ts.tolist()}")
        ab = self.alpha_bars.cpu()[torch.cat([torch.zeros(1, dtype=torch.long), ts.cpu()])]  # ᾱ_{τ_0 = 0}, ᾱ_{τ_i}
        return Schedule.from_betas(1.0 - ab[1:] / ab[:-1])

    def to(self, device: torch.device | str) -> Schedule:
        """A copy with every array moved to ``device`` (still float64)."""
        return Schedule(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def get_schedule(name: str = "linear", T: int = 1000, **kwargs: float) -> Schedule:
    """A :class:`Schedule` for a named β schedule (default: the paper's linear 1e-4 → 0.02, T = 1000).

    Ho et al. (2020), Sec. 4, and the quantities of Eqs. (4) and (7); chapter "The forward process".
    ``name`` and ``kwargs`` as in :func:`make_betas`.
    """
    return Schedule.from_betas(make_betas(name, T, **kwargs))


def extract(a: torch.Tensor, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
    """Gather ``a[t]`` and shape it to broadcast against ``x`` (B, ...), cast to x's dtype and device.

    No equation: the lookup of a per-step quantity (β_t, ᾱ_t, ...) at each example's t that every
    formula uses. a: (T + 1,) a :class:`Schedule` array, indexed by the paper's t; t: int or (B,)
    in [0, T] (t = 0 reads the value at the data); x: (B, ...) floating point. Returns
    (B, 1, ..., 1), or a 0-d tensor for an int t and a 0-d x. Checks t (no host sync on a GPU).
    """
    if not isinstance(a, torch.Tensor) or a.dim() != 1:
        raise ValueError(f"a must be a 1-D tensor of per-step values (T + 1,), got {type(a).__name__} "
                         f"of shape {tuple(getattr(a, 'shape', ()))}")
    check_float_tensor("x", x)
    t = check_timesteps(t, a.shape[0] - 1, batch=x.shape[0] if x.dim() else None, lo=0)
    out = a.to(device=x.device)[t.to(x.device)].to(x.dtype)
    if out.dim() == 0:
        return out
    return out.reshape(out.shape[0], *([1] * (x.dim() - 1)))


def to_zero_indexed(t: torch.Tensor) -> torch.Tensor:
    """The paper's t = 1..T as the 0-indexed timestep t − 1 = 0..T−1 of the official DDPM code and diffusers.

    No equation: the single place where minidiff meets 0-indexed time (book page "Notation"). The
    networks' sinusoidal embeddings embed ``to_zero_indexed(t)``, so their weights are interchangeable
    with the official DDPM code and diffusers' ``UNet2DModel``, which are fed 0-indexed timesteps.
    Also use it to pass minidiff's t to a diffusers model or scheduler. t: a tensor of any shape.
    """
    return t - 1


def from_zero_indexed(timesteps: torch.Tensor | list[int]) -> torch.Tensor:
    """A diffusers-style 0-indexed timestep list (e.g. ``scheduler.timesteps``) as the paper's t = 1..T.

    The inverse of :func:`to_zero_indexed` (book page "Notation"). Returns a long tensor.
    """
    return torch.as_tensor(timesteps).long() + 1
