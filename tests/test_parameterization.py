"""Parameterizations ε, x_0, v, μ̃ (Eqs. 7, 11; Salimans & Ho 2022) and their conversions."""

from __future__ import annotations

import itertools

import pytest
import torch

import minidiff as md


@pytest.fixture
def batch(linear, gen):
    x0 = torch.randn(32, 3, 4, 4, generator=gen, dtype=torch.float64)
    eps = torch.randn(32, 3, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.randint(1, linear.T + 1, (32,), generator=gen)
    t[0], t[1] = 1, linear.T  # both ends of the chain
    return x0, eps, t, md.q_sample(x0, t, linear, eps)


@pytest.mark.parametrize("src,dst", list(itertools.product(md.PARAMETERIZATIONS, repeat=2)))
def test_every_conversion_round_trips(linear, batch, src, dst):
    x0, eps, t, xt = batch
    out = md.from_x0_eps(x0, eps, xt, t, linear, src)
    x0_hat = md.to_x0(out, xt, t, linear, src)
    eps_hat = md.to_eps(out, xt, t, linear, src)
    # x_0 is recoverable everywhere; ε only where √(1−ᾱ_t) is not ~0 (t = 1 has 1−ᾱ = 1e-4).
    torch.testing.assert_close(x0_hat, x0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(eps_hat[1:], eps[1:], rtol=1e-6, atol=1e-6)
    back = md.from_x0_eps(x0_hat, eps_hat, xt, t, linear, dst)
    torch.testing.assert_close(md.to_x0(back, xt, t, linear, dst), x0, rtol=1e-6, atol=1e-6)


def test_eps_posterior_mean_equals_eq11(linear, batch):
    """μ_θ = (x_t − β_t/√(1−ᾱ_t) ε_θ)/√α_t (Eq. 11) equals μ̃_t(x_t, x̂_0(ε_θ)) (Eq. 7)."""
    _, eps, t, xt = batch
    eps_theta = eps + 0.1
    p = md.p_mean_variance(eps_theta, xt, t, linear, parameterization="eps")
    b = md.schedules.extract(linear.betas, t, xt)
    eq11 = (xt - b / md.schedules.extract(linear.sqrt_one_minus_alpha_bars, t, xt) * eps_theta) / md.schedules.extract(
        linear.alphas.sqrt(), t, xt)
    torch.testing.assert_close(p.mean, eq11, rtol=1e-9, atol=1e-9)


def test_variances_of_the_reverse_process(linear, batch):
    _, eps, t, xt = batch
    small = md.p_mean_variance(eps, xt, t, linear, variance="fixed_small")
    large = md.p_mean_variance(eps, xt, t, linear, variance="fixed_large")
    torch.testing.assert_close(large.variance, md.schedules.extract(linear.betas, t, xt).expand_as(xt))
    assert bool((small.variance <= large.variance + 1e-15).all())  # β̃_t ≤ β_t
    v = torch.cat([eps, torch.ones_like(eps)], dim=1)  # v = 1 → the upper end, β_t
    learned = md.p_mean_variance(v, xt, t, linear, variance="learned_range")
    torch.testing.assert_close(learned.log_variance, large.log_variance)
    v = torch.cat([eps, -torch.ones_like(eps)], dim=1)  # v = −1 → the lower end, clipped β̃_t
    learned = md.p_mean_variance(v, xt, t, linear, variance="learned_range")
    torch.testing.assert_close(learned.log_variance, small.log_variance)


def test_clip_x0_bounds_the_prediction(linear, batch):
    _, eps, t, xt = batch
    p = md.p_mean_variance(eps * 50, xt, t, linear, clip_x0=1.0)
    assert p.x0.abs().max().item() <= 1.0


def test_a_single_timestep_equals_the_same_timestep_per_example(linear, batch):
    x0, eps, _, xt = batch
    t_all = torch.full((xt.shape[0],), 300)
    for p in md.PARAMETERIZATIONS:
        out = md.from_x0_eps(x0, eps, xt, 300, linear, p)
        torch.testing.assert_close(out, md.from_x0_eps(x0, eps, xt, t_all, linear, p))
        torch.testing.assert_close(md.to_x0(out, xt, 300, linear, p), md.to_x0(out, xt, t_all, linear, p))
        eps_all = md.to_eps(out, xt, t_all, linear, p)
        torch.testing.assert_close(md.to_eps(out, xt, torch.tensor(300), linear, p), eps_all)
    p = md.p_mean_variance(eps, xt, 300, linear)
    torch.testing.assert_close(p.mean, md.p_mean_variance(eps, xt, t_all, linear).mean)
