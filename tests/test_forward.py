"""The forward process: one step (Eq. 2), the closed form (Eq. 4) and the posterior (Eqs. 6-7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import minidiff as md


def test_one_step_has_eq2_moments(linear, gen):
    n, t = 200_000, 500
    x_prev = torch.full((n, 1), 1.7)
    x = md.q_step_sample(x_prev, t, linear, generator=gen)
    beta = linear.betas[t].item()
    se_mean = math.sqrt(beta / n)
    assert x.mean().item() == pytest.approx(math.sqrt(1 - beta) * 1.7, abs=5 * se_mean)
    se_var = beta * math.sqrt(2 / n)
    assert x.var().item() == pytest.approx(beta, abs=5 * se_var)


@pytest.mark.parametrize("t", [1, 10, 100, 1000])
def test_closed_form_matches_iterated_forward_chain(linear, gen, t):
    n = 20_000
    x0 = torch.randn(n, 1, generator=gen) * 0.5 + 2.0  # data N(2, 0.25)
    x = x0.double()
    sch = linear
    for s in range(1, t + 1):  # x_1, ..., x_t by Eq. 2, one step at a time
        x = md.q_step_sample(x, s, sch, generator=gen)
    direct = md.q_sample(x0.double(), t, sch, generator=gen)
    ab = sch.alpha_bars[t].item()
    mean, var = math.sqrt(ab) * 2.0, ab * 0.25 + (1 - ab)  # Eq. 4 pushed through N(2, 0.25)
    for y in (x, direct):
        assert y.mean().item() == pytest.approx(mean, abs=5 * math.sqrt(var / n))
        assert y.var().item() == pytest.approx(var, abs=5 * var * math.sqrt(2 / n))
    assert stats.ks_2samp(x.flatten().numpy(), direct.flatten().numpy()).pvalue > 1e-3


@pytest.mark.parametrize("t", [2, 11, 301, 1000])
def test_posterior_matches_bayes_rule_for_gaussian_data(linear, t):
    """q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0), integrated numerically on a grid."""
    x0, xt = torch.tensor([[0.8]], dtype=torch.float64), torch.tensor([[-0.3]], dtype=torch.float64)
    mean, var, _ = md.q_posterior_mean_variance(x0, xt, torch.tensor([t]), linear)
    a, ab_prev = linear.alphas[t].item(), linear.alpha_bars_prev[t].item()
    sd = math.sqrt(min(1 - ab_prev, 1 - a))
    grid = np.linspace(-12 * sd, 12 * sd, 400_001) + mean.item()
    log_lik = stats.norm.logpdf(xt.item(), math.sqrt(a) * grid, math.sqrt(1 - a))
    log_prior = stats.norm.logpdf(grid, math.sqrt(ab_prev) * x0.item(), math.sqrt(1 - ab_prev))
    w = np.exp(log_lik + log_prior - (log_lik + log_prior).max())
    w /= w.sum()
    num_mean = (w * grid).sum()
    num_var = (w * (grid - num_mean) ** 2).sum()
    assert mean.item() == pytest.approx(num_mean, abs=1e-6 * max(1.0, sd))
    assert var.item() == pytest.approx(num_var, rel=1e-5)


def test_posterior_at_t_equal_1_is_the_point_mass_at_x0(linear):
    """q(x_0 | x_1, x_0) = δ(x_0): μ̃_1 = x_0 and β̃_1 = 0 (Eq. 7 with ᾱ_0 = 1)."""
    x0, xt = torch.tensor([[0.8, -2.0]], dtype=torch.float64), torch.tensor([[-0.3, 0.1]], dtype=torch.float64)
    mean, var, _ = md.q_posterior_mean_variance(x0, xt, 1, linear)
    torch.testing.assert_close(mean, x0, rtol=1e-12, atol=1e-12)
    assert bool((var == 0).all())


def test_q_sample_works_on_image_batches_and_any_dtype(linear, gen):
    x0 = torch.randn(4, 3, 8, 8, generator=gen)
    t = torch.tensor([0, 10, 500, 1000])
    noise = torch.randn_like(x0)
    xt = md.q_sample(x0, t, linear, noise)
    assert xt.shape == x0.shape and xt.dtype == torch.float32
    expected = linear.sqrt_alpha_bars[1000].float() * x0[3] + linear.sqrt_one_minus_alpha_bars[1000].float() * noise[3]
    torch.testing.assert_close(xt[3], expected)
    assert torch.equal(xt[0], x0[0])  # t = 0 is the data
    assert md.q_sample(x0.double(), t, linear).dtype == torch.float64


def test_x_T_is_nearly_standard_normal(linear, gen):
    """x_T = √ᾱ_T x_0 + √(1−ᾱ_T) ε (Eq. 4) is N(0, 1) up to a bias that Eq. 4 itself gives.

    Given the data, the values of x_T have mean √ᾱ_T x̄_0 and variance ᾱ_T s_0² + 1 − ᾱ_T (x̄_0, s_0²:
    the mean and variance of the data's values). Those deviations from (0, 1) are the allowance
    beyond 5 standard errors of n values; the last lines show they are below one standard error.
    """
    x0 = md.make_toy("moons", 20_000, seed=0).double()
    xT = md.q_sample(x0, linear.T, linear, generator=gen)
    n, ab = xT.numel(), linear.alpha_bars[-1].item()
    bias_mean = abs(math.sqrt(ab) * x0.mean().item())
    bias_std = abs(math.sqrt(ab * x0.var().item() + 1 - ab) - 1)
    assert xT.mean().item() == pytest.approx(0.0, abs=5 / math.sqrt(n) + bias_mean)
    assert xT.std().item() == pytest.approx(1.0, abs=5 / math.sqrt(2 * n) + bias_std)
    assert bias_mean < 1 / math.sqrt(n) and bias_std < 1 / math.sqrt(2 * n)  # x_T: as good as N(0, 1) here
