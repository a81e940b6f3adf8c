"""Scores from ε-networks and annealed Langevin dynamics (chapter "Scores and Langevin dynamics")."""

from __future__ import annotations

import math

import pytest
import torch

import minidiff as md
from minidiff.langevin import annealed_langevin, annealed_langevin_loop, langevin_step_sizes, score_from_eps


def _points(gen, n=64):
    t = torch.tensor([1, 6, 101, 401, 1000]).repeat_interleave(n // 4 + 1)[:n]
    return 2 * torch.randn(n, 2, generator=gen, dtype=torch.float64), t


def test_score_from_exact_eps_matches_mixture_score(linear, gen):
    """−ε*/√(1−ᾱ_t) equals GaussianMixture.score on the 8-Gaussian ring at low and high noise."""
    mix = md.toy_mixture()
    x, t = _points(gen)
    score = score_from_eps(md.ExactEps(mix, linear), linear)
    torch.testing.assert_close(score(x, t), mix.score(x, t, linear), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("parameterization", ["x0", "v", "mu"])
def test_score_from_other_parameterizations_matches_mixture_score(linear, gen, parameterization):
    """A network predicting x_0, v or μ̃ (here: the exact one) is converted to the same score."""
    mix = md.toy_mixture()
    x, t = _points(gen)

    def model(xt, tt):
        eps = mix.eps(xt, tt, linear)
        x0 = md.parameterization.x0_from_eps(xt, eps, tt, linear)
        return md.from_x0_eps(x0, eps, xt, tt, linear, parameterization)

    score = score_from_eps(model, linear, parameterization=parameterization)
    torch.testing.assert_close(score(x, t), mix.score(x, t, linear), rtol=1e-6, atol=1e-6)


def test_score_from_eps_drops_the_learned_variance_half(linear, gen):
    mix = md.toy_mixture()
    x, t = _points(gen)

    def model(xt, tt):
        return torch.cat([mix.eps(xt, tt, linear), torch.full_like(xt, 7.0)], dim=1)

    score = score_from_eps(model, linear, variance="learned_range")
    torch.testing.assert_close(score(x, t), mix.score(x, t, linear), rtol=1e-8, atol=1e-8)


def test_step_sizes_follow_song_ermon_rule(linear):
    taus = md.respace_timesteps(1000, 10)
    alpha = langevin_step_sizes(taus, linear, 3e-5)
    sigma2 = 1 - linear.alpha_bars[taus]
    assert alpha[0].item() == pytest.approx(3e-5)  # the lowest level gets step_lr itself
    torch.testing.assert_close(alpha / alpha[0], sigma2 / sigma2[0])


def test_annealed_langevin_with_exact_gaussian_score_reproduces_mean_and_std(linear):
    """Data N(μ, diag s²): the final samples have mean μ and std s within 4 standard errors."""
    mu, s = torch.tensor([0.8, -0.5]), torch.tensor([0.5, 0.8])
    ab = linear.alpha_bars.float()

    def score(x, t):  # ∇ log q(x_t) for q(x_t) = N(√ᾱ_t μ, ᾱ_t s² + 1 − ᾱ_t), written out independently
        a = ab[t][:, None]
        return -(x - a.sqrt() * mu) / (a * s**2 + 1 - a)

    n = 2000
    x = annealed_langevin(score, (n, 2), linear, levels=100, n_steps_each=20, step_lr=2e-4, seed=0)
    se_mean, se_std = s / math.sqrt(n), s / math.sqrt(2 * n)
    assert bool(((x.mean(0) - mu).abs() < 4 * se_mean).all()), (x.mean(0), mu, se_mean)
    assert bool(((x.std(0) - s).abs() < 4 * se_std).all()), (x.std(0), s, se_std)


def test_annealed_langevin_is_reproducible_and_yields_each_level(linear):
    mix = md.toy_mixture()
    score = score_from_eps(md.ExactEps(mix, linear), linear)
    states = list(annealed_langevin_loop(score, (16, 2), linear, levels=4, n_steps_each=3, seed=7))
    assert [s.t for s in states] == [1000, 1000, 667, 334, 1]
    assert [s.step for s in states] == [0, 3, 6, 9, 12]
    again = annealed_langevin(score, (16, 2), linear, levels=4, n_steps_each=3, seed=7)
    torch.testing.assert_close(states[-1].x, again)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_steps_each": 0}, ValueError, "n_steps_each"),
        ({"step_lr": -1.0}, ValueError, "step_lr"),
        ({"levels": 2000}, ValueError, "steps must be"),
        ({"x_T": torch.zeros(3, 2)}, ValueError, "x_T must have shape"),
        ({"seed": 1, "generator": torch.Generator()}, ValueError, "either generator or seed"),
    ],
)
def test_annealed_langevin_rejects_bad_arguments(linear, kwargs, error, match):
    score = score_from_eps(md.ExactEps(md.toy_mixture(), linear), linear)
    with pytest.raises(error, match=match):
        annealed_langevin(score, (4, 2), linear, **kwargs)


def test_annealed_langevin_rejects_a_non_callable_score(linear):
    with pytest.raises(TypeError, match="score_fn must be callable"):
        annealed_langevin(torch.zeros(2), (4, 2), linear)


def test_score_from_eps_rejects_unknown_parameterization(linear):
    with pytest.raises(ValueError, match="parameterization"):
        score_from_eps(md.ExactEps(md.toy_mixture(), linear), linear, parameterization="score")
