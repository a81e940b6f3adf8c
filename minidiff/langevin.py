"""Scores and annealed Langevin dynamics (Song & Ermon 2019) on the DDPM noise levels.

An ε-predictor is a scaled score. Tweedie's formula for x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (Eq. 4) gives

    ∇_x log q(x_t) = −E[ε | x_t] / √(1−ᾱ_t),

so a trained ε_θ yields s_θ(x_t, t) = −ε_θ(x_t, t)/√(1−ᾱ_t) (the link of Ho et al., Sec. 3.2, after
Eq. 11). Annealed Langevin dynamics samples with a score alone: for noise levels from high to low,
repeat x ← x + (α_t/2) s(x, t) + √α_t z, z ~ N(0, I), with the step size α_t = step_lr · σ_t²/σ_min²
and σ_t² = 1−ᾱ_t (Song & Ermon 2019, Algorithm 1). Chapter "Scores and Langevin dynamics".
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator

import torch

from ._checks import check_choice, check_float_tensor, check_real, check_same_shape, check_timesteps
from .parameterization import PARAMETERIZATIONS, to_eps
from .reverse import VARIANCES, split_output
from .samplers import SampleState, initial_noise, respace_timesteps
from .schedules import Schedule, extract

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def score_from_eps(model: Callable[..., torch.Tensor], schedule: Schedule, parameterization: str = "eps",
                   variance: str = "fixed_small") -> ScoreFn:
    """Turn a network into a score function s(x_t, t) = −ε_θ(x_t, t)/√(1−ᾱ_t) ≈ ∇ log q(x_t).

    The marginal-score identity ∇ log q(x_t) = E[∇ log q(x_t | x_0) | x_t] applied to Eq. (4)
    (Ho et al., Sec. 3.2); chapter "Scores and Langevin dynamics"
    (derivation: "Scores, denoising score matching and Langevin dynamics").
    ``model(x_t, t)`` returns its output in ``parameterization`` (ε, x_0, v or μ̃; converted to ε
    first); with ``variance="learned_range"`` its variance half is dropped. x_t: (B, ...) floating
    point; t: int or (B,) in [1, T], the paper's (checked at every call; no host sync on a GPU). Works for
    :class:`minidiff.ExactEps` too, which gives the exact score.
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("variance", variance, VARIANCES)

    def score(xt: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        check_float_tensor("xt", xt)
        t = check_timesteps(t, schedule.T, batch=xt.shape[0] if xt.dim() else None, x_name="xt", device=xt.device)
        out, _ = split_output(model(xt, t), xt, variance, name="model output")
        eps = to_eps(out, xt, t, schedule, parameterization)
        return -eps / extract(schedule.sqrt_one_minus_alpha_bars, t, xt)

    return score


def langevin_step_sizes(timesteps: torch.Tensor, schedule: Schedule, step_lr: float) -> torch.Tensor:
    """α_t = step_lr · σ_t²/σ_min² with σ_t² = 1−ᾱ_t, σ_min² its value at the lowest level.

    Song & Ermon (2019), Algorithm 1: the step shrinks with the noise so that the signal-to-noise
    ratio of each update stays the same at every level. ``timesteps``: (K,) the paper's t in [1, T];
    ``step_lr`` > 0. Returns (K,) float64. Chapter "Scores and Langevin dynamics".
    """
    check_real("step_lr", step_lr, gt=0.0)
    ts = torch.as_tensor(timesteps)
    if ts.dim() != 1 or ts.numel() < 1:
        raise ValueError(f"timesteps must be a 1-D list of K >= 1 steps, got shape {tuple(ts.shape)}")
    ts = check_timesteps(ts, schedule.T, name="timesteps")
    sigma2 = 1.0 - schedule.alpha_bars[ts.cpu()]
    return step_lr * sigma2 / sigma2.min()


@torch.no_grad()
def annealed_langevin_loop(
    score_fn: ScoreFn, shape: tuple[int, ...], schedule: Schedule, *, levels: int | None = None,
    spacing: str = "uniform", n_steps_each: int = 5, step_lr: float = 2e-5,
    x_T: torch.Tensor | None = None, generator: torch.Generator | None = None, seed: int | None = None,
    device: torch.device | str = "cpu", progress: bool = False,
) -> Iterator[SampleState]:
    """Annealed Langevin dynamics from x ~ N(0, I) down the noise levels, yielding each level's end state.

    Song & Ermon (2019), Algorithm 1, with the DDPM marginals q(x_t) as the levels; chapter "Scores
    and Langevin dynamics". ``score_fn(x, t)`` returns ∇ log q(x_t) for x (B, ...), t (B,) the
    paper's t (e.g. :func:`score_from_eps`). ``levels``: K of the T noise levels (default all T),
    chosen by :func:`minidiff.respace_timesteps`; at each, ``n_steps_each`` updates
    x ← x + (α_t/2) s(x, t) + √α_t z with α_t from :func:`langevin_step_sizes`.
    Yields :class:`minidiff.SampleState` (step = updates so far, t = the paper's index of the level,
    x, x0 = None); the first state is the initial noise with t = T. Reproducible with ``seed``.
    """
    from tqdm.auto import tqdm

    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable as score_fn(x, t), got {type(score_fn).__name__}")
    if isinstance(n_steps_each, bool) or not isinstance(n_steps_each, numbers.Integral) or n_steps_each < 1:
        raise ValueError(f"n_steps_each must be a positive int, got n_steps_each = {n_steps_each!r}")
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if levels is not None and (isinstance(levels, bool) or not isinstance(levels, numbers.Integral)
                               or not 1 <= levels <= schedule.T):
        raise ValueError(f"levels must be an int in [1, T] = [1, {schedule.T}]: one level per step, and steps "
                         f"must be at most T; got levels = {levels!r}")
    taus = respace_timesteps(schedule.T, schedule.T if levels is None else levels, spacing)
    step_sizes = langevin_step_sizes(taus, schedule, step_lr)
    device = torch.device(x_T.device if isinstance(x_T, torch.Tensor) else device)
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else generator
    x = initial_noise(shape, x_T, gen, device)
    x = x.clone() if x is x_T else x
    yield SampleState(0, schedule.T, x, None)
    n = 0
    for i in tqdm(range(len(taus) - 1, -1, -1), disable=not progress, desc="annealed Langevin"):
        t = torch.full((x.shape[0],), int(taus[i]), dtype=torch.long, device=device)
        alpha = float(step_sizes[i])
        for _ in range(n_steps_each):
            z = torch.randn(x.shape, generator=gen, device=device, dtype=x.dtype)
            s = check_float_tensor("score_fn(x, t)", score_fn(x, t))
            check_same_shape("score_fn(x, t)", s, "x", x)
            x = x + 0.5 * alpha * s + alpha**0.5 * z
            n += 1
        yield SampleState(n, int(taus[i]), x, None)


def annealed_langevin(score_fn: ScoreFn, shape: tuple[int, ...], schedule: Schedule, **kwargs) -> torch.Tensor:
    """Only the final samples of :func:`annealed_langevin_loop` (same arguments).

    Song & Ermon (2019), Algorithm 1, on the DDPM levels; chapter "Scores and Langevin dynamics".
    """
    last = None
    for last in annealed_langevin_loop(score_fn, shape, schedule, **kwargs):  # noqa: B007 (we want the final state)
        pass
    return last.x
