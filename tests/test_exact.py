"""Ground truth: the exact ε-predictor of Gaussian(-mixture) data and the ideal denoiser."""

from __future__ import annotations

import math

import pytest
import torch

import minidiff as md


def test_exact_eps_matches_monte_carlo_posterior_mean(linear, gen):
    """ε*(x_t) = E[ε | x_t]: the residual ε − ε*(x_t) is orthogonal to every function of x_t."""
    mix = md.toy_mixture()
    n, t = 200_000, 200
    x0 = mix.sample(n, generator=gen).double()
    eps = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    tt = torch.full((n,), t)
    xt = md.q_sample(x0, tt, linear, eps)
    resid = eps - mix.eps(xt, tt, linear)
    for h in (xt, xt**2, torch.sin(3 * xt), torch.ones_like(xt)):
        prod = resid * h
        se = prod.std(0) / math.sqrt(n)
        assert bool((prod.mean(0).abs() < 5 * se).all()), (prod.mean(0), se)


def test_exact_eps_is_scaled_score(linear, gen):
    """ε*(x_t, t) = −√(1−ᾱ_t) ∇ log q(x_t), with the gradient taken by autograd."""
    mix = md.toy_mixture()
    t = torch.tensor([1, 11, 301, 1000]).repeat_interleave(8)
    x = (2 * torch.randn(32, 2, generator=gen, dtype=torch.float64)).requires_grad_()
    (grad,) = torch.autograd.grad(mix.log_prob(x, t, linear).sum(), x)
    expected = -md.schedules.extract(linear.sqrt_one_minus_alpha_bars, t, x) * grad
    torch.testing.assert_close(mix.eps(x.detach(), t, linear), expected, rtol=1e-8, atol=1e-10)


def test_gaussian_eps_closed_form(linear, gen):
    m = md.gaussian_eps_model([1.0], [0.5], linear)
    x = torch.randn(16, 1, generator=gen, dtype=torch.float64)
    t = torch.randint(1, 1001, (16,), generator=gen)
    ab = md.schedules.extract(linear.alpha_bars, t, x)
    expected = (1 - ab).sqrt() * (x - ab.sqrt() * 1.0) / (ab * 0.25 + 1 - ab)
    torch.testing.assert_close(m(x, t), expected)


def test_ideal_denoiser_memorizes_training_set(linear):
    # 20 training points on a 5 x 4 grid, 0.5 apart: far apart compared with the last step's noise.
    data = torch.cartesian_prod(torch.arange(5.0), torch.arange(4.0)) * 0.5 - 1.0
    model = md.ideal_denoiser(data, linear)
    samples = md.sample(model, (200, 2), linear, seed=0)
    dist = torch.cdist(samples.double(), data.double()).min(dim=1).values
    assert dist.max().item() < 1e-3  # every sample is (a copy of) a training point
    assert len(set(torch.cdist(samples.double(), data.double()).argmin(1).tolist())) > 10  # and many of them


def test_mixture_sampling_moments(gen):
    mix = md.GaussianMixture(torch.tensor([[0.0], [4.0]]), torch.tensor([1.0, 0.5]), torch.tensor([0.25, 0.75]))
    x = mix.sample(100_000, generator=gen).double()
    mean = 0.25 * 0 + 0.75 * 4
    var = 0.25 * 1 + 0.75 * 0.25 + 0.25 * 0.75 * 16
    assert x.mean().item() == pytest.approx(mean, abs=5 * math.sqrt(var / 1e5))
