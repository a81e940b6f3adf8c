"""q-interpolation (Ho et al. 2020, Sec. 4.3): encode with q to t, mix linearly, decode with p_θ."""

from __future__ import annotations

import pytest
import torch

import minidiff as md
from minidiff.interpolation import q_interpolate, truncated

MEAN, STD = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.3])


def gaussian_data(n: int, seed: int) -> torch.Tensor:
    return MEAN + STD * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_truncated_schedule_keeps_the_first_t_steps(linear):
    sub = truncated(linear, 300)
    assert sub.T == 300
    torch.testing.assert_close(sub.alpha_bars, linear.alpha_bars[:301])
    torch.testing.assert_close(sub.posterior_variance, linear.posterior_variance[:301])


@pytest.mark.parametrize(("lam", "t"), [(0.0, 300), (1.0, 300), (0.5, 1000)])
def test_decoded_points_follow_the_data_distribution(linear, lam, t):
    """With the exact ε* of Gaussian data, decoding x_t ~ q(x_t | x_0) from t gives back the data law.

    At λ = 0 or 1 the mixed x_t is a draw of q(x_t) itself; at t = T it is N(0, I) whatever λ. Mean and
    standard deviation per axis must match N(MEAN, STD²) within 4 standard errors (n = 4,000).
    """
    n = 4000
    model = md.gaussian_eps_model(MEAN, STD, linear)
    out = q_interpolate(model, gaussian_data(n, 1), gaussian_data(n, 2), [lam], t, linear, seed=3)
    assert out.shape == (1, n, 2)
    x = out[0]
    assert ((x.mean(0) - MEAN).abs() < 4 * STD / n ** 0.5).all(), x.mean(0)
    assert ((x.std(0) - STD).abs() < 4 * STD / (2 * n) ** 0.5).all(), x.std(0)


def test_small_t_keeps_the_linear_blend_and_shared_noise_makes_it_a_q_draw(linear):
    """With ε shared by both ends, (1−λ)x_t + λx'_t = q_sample(x̄_0, t, ε), x̄_0 = (1−λ)x_0 + λx'_0, so the
    decoded midpoint equals decoding that draw; at t = 1 the result stays within a few √β_1 of x̄_0."""
    model = md.gaussian_eps_model(MEAN, STD, linear)
    a, b = gaussian_data(50, 4), gaussian_data(50, 5)
    noise = torch.randn(50, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    mid = q_interpolate(model, a, b, [0.5], 200, linear, noise_a=noise, seed=7)[0]
    direct = md.sample(model, (50, 2), truncated(linear, 200), x_T=md.q_sample((a + b) / 2, 200, linear, noise=noise),
                       seed=7)
    torch.testing.assert_close(mid, direct)
    near = q_interpolate(model, a, b, [0.25], 1, linear, seed=8)[0]
    assert (near - (0.75 * a + 0.25 * b)).abs().max() < 0.05  # sqrt(beta_1) = 0.01, times a few


def test_the_same_reverse_noise_serves_every_lambda(linear):
    """Decoding is a continuous map of λ: neighbouring λ give nearby points (the reverse noise is fixed)."""
    model = md.gaussian_eps_model(MEAN, STD, linear)
    out = q_interpolate(model, gaussian_data(20, 9), gaussian_data(20, 10), torch.linspace(0, 1, 41), 500, linear)
    steps = (out[1:] - out[:-1]).norm(dim=-1)
    ends = (out[-1] - out[0]).norm(dim=-1)
    assert steps.max() < 0.25 * ends.max()


def test_q_interpolate_names_bad_arguments(linear):
    model = md.gaussian_eps_model(MEAN, STD, linear)
    a = gaussian_data(4, 0)
    with pytest.raises(ValueError, match="t must be"):
        q_interpolate(model, a, a, [0.5], 0, linear)
    with pytest.raises(ValueError, match="t must be"):
        q_interpolate(model, a, a, [0.5], 1001, linear)
    with pytest.raises(ValueError, match="lambdas must be a 1-D"):
        q_interpolate(model, a, a, [[0.5]], 10, linear)
    with pytest.raises(ValueError, match="x0_b"):
        q_interpolate(model, a, a[:3], [0.5], 10, linear)
