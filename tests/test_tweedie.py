"""Tweedie's formula and the marginal-score identity, closed form against Monte Carlo (chapter 6).

Marginal-score identity: ∇ log q(x_t) = E[∇ log q(x_t | x_0) | x_t] = −E[ε | x_t]/√(1−ᾱ_t).
Tweedie's formula:       E[x_0 | x_t] = (x_t + (1−ᾱ_t) ∇ log q(x_t))/√ᾱ_t.
For Gaussian data x_0 ~ N(m, s²) both conditional means are linear in x_t, so a least-squares fit of x_0
(or of ∇ log q(x_t | x_0)) on x_t over many joint draws estimates them; the closed forms use the exact
score of q(x_t) (from :func:`minidiff.exact.gaussian_eps_model`).
"""

from __future__ import annotations

import pytest
import torch

import minidiff as md

MEAN, STD = torch.tensor([0.7, -0.4]), torch.tensor([0.5, 1.5])


def joint_draws(t: int, schedule: md.Schedule, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x0 = MEAN + STD * torch.randn(n, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return x0, eps, md.q_sample(x0, t, schedule, noise=eps)


def fit_line(y: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-axis least squares y ≈ a + b x; returns (a, b, residual std)."""
    xm, ym = x.mean(0), y.mean(0)
    b = ((x - xm) * (y - ym)).mean(0) / ((x - xm) ** 2).mean(0)
    a = ym - b * xm
    return a, b, (y - a - b * x).std(0)


def closed_form_line(fn, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Intercept and slope of a function that is affine in x_t, per axis, read off at x_t = 0 and 1."""
    z, o = torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    tt = torch.full((1,), t)
    f0, f1 = fn(z, tt)[0], fn(o, tt)[0]
    return f0, f1 - f0


@pytest.mark.parametrize("t", [10, 200, 700])
def test_tweedie_formula_matches_monte_carlo_conditional_mean(linear, t):
    n = 200_000
    x0, _, xt = joint_draws(t, linear, n, seed=t)
    score = md.score_from_eps(md.exact.gaussian_eps_model(MEAN, STD, linear), linear)
    ab = float(linear.alpha_bars[t])

    def tweedie(x, tt):
        return (x + (1 - ab) * score(x, tt)) / ab ** 0.5

    a, b = closed_form_line(tweedie, t)
    a_mc, b_mc, resid = fit_line(x0, xt)
    sd_x = xt.std(0)
    se_b = resid / (sd_x * n ** 0.5)              # standard error of a least-squares slope
    se_a = resid * (1 / n + (xt.mean(0) / sd_x) ** 2 / n) ** 0.5
    assert ((b - b_mc).abs() < 5 * se_b).all(), (b, b_mc)
    assert ((a - a_mc).abs() < 5 * se_a).all(), (a, a_mc)


@pytest.mark.parametrize("t", [10, 200, 700])
def test_marginal_score_is_the_conditional_mean_of_the_conditional_score(linear, t):
    """∇ log q(x_t) = E[−ε/√(1−ᾱ_t) | x_t]: fit the conditional score −ε/√(1−ᾱ_t) on x_t."""
    n = 200_000
    _, eps, xt = joint_draws(t, linear, n, seed=1000 + t)
    score = md.score_from_eps(md.exact.gaussian_eps_model(MEAN, STD, linear), linear)
    a, b = closed_form_line(score, t)
    cond_score = -eps / float(linear.sqrt_one_minus_alpha_bars[t])
    a_mc, b_mc, resid = fit_line(cond_score, xt)
    sd_x = xt.std(0)
    se_b = resid / (sd_x * n ** 0.5)
    se_a = resid * (1 / n + (xt.mean(0) / sd_x) ** 2 / n) ** 0.5
    assert ((b - b_mc).abs() < 5 * se_b).all(), (b, b_mc)
    assert ((a - a_mc).abs() < 5 * se_a).all(), (a, a_mc)


def test_tweedie_with_a_wrong_score_is_caught(linear):
    """The Monte Carlo check has power: dropping the (1−ᾱ_t) factor moves the slope by many standard errors."""
    t, n = 200, 200_000
    x0, _, xt = joint_draws(t, linear, n, seed=5)
    score = md.score_from_eps(md.exact.gaussian_eps_model(MEAN, STD, linear), linear)
    ab = float(linear.alpha_bars[t])
    _, b_wrong = closed_form_line(lambda x, tt: (x + score(x, tt)) / ab ** 0.5, t)
    _, b_mc, resid = fit_line(x0, xt)
    se_b = resid / (xt.std(0) * n ** 0.5)
    assert ((b_wrong - b_mc).abs() > 20 * se_b).any()
