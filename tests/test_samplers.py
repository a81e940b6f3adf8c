"""Samplers: ancestral DDPM (Algorithm 2), DDIM (Song et al. 2021, Eq. 12) and respacing.

With the exact ε-predictor for N(μ, s²) data, every update is affine in x plus Gaussian noise, so
the sampler's output is exactly Gaussian with moments we can propagate step by step here,
independently of minidiff's code, and compare with the empirical samples.
"""

from __future__ import annotations

import math

import pytest
import torch

import minidiff as md

MU, S = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0])
N = 20_000


def _check_moments(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
    se_mean, se_std = std / math.sqrt(N), std / math.sqrt(2 * N)
    assert bool(((x.mean(0) - mean).abs() < 5 * se_mean).all()), (x.mean(0), mean)
    assert bool(((x.std(0) - std).abs() < 5 * se_std).all()), (x.std(0), std)


def _propagated_moments(sch: md.Schedule, K: int, spacing: str, sampler: str, eta: float = 0.0,
                        variance: str = "fixed_small"):
    """The exact output moments of the sampler for N(MU, S²) data, by pushing (mean, var) through each
    affine step. Written from the DDIM/DDPM update equations, not from minidiff's sampler code."""
    taus = md.respace_timesteps(sch.T, K, spacing).tolist()
    ab_all = sch.alpha_bars.tolist()
    mean, var = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    mu, s2 = MU.double(), S.double() ** 2
    for i in range(K - 1, -1, -1):
        ab = ab_all[taus[i]]
        abp = ab_all[taus[i - 1]] if i > 0 else 1.0
        # ε* = a x + b  and  x̂_0 = c x + d
        a = math.sqrt(1 - ab) / (ab * s2 + 1 - ab)
        b = -a * math.sqrt(ab) * mu
        c, d = (1 - math.sqrt(1 - ab) * a) / math.sqrt(ab), -math.sqrt(1 - ab) * b / math.sqrt(ab)
        beta = 1 - ab / abp
        post_var = (1 - abp) / (1 - ab) * beta
        if sampler == "ddim":
            sig2 = eta**2 * post_var
            k = math.sqrt(max(1 - abp - sig2, 0.0))
            A, B = math.sqrt(abp) * c + k * a, math.sqrt(abp) * d + k * b
        else:
            c1, c2 = math.sqrt(abp) * beta / (1 - ab), math.sqrt(1 - beta) * (1 - abp) / (1 - ab)
            A, B = c1 * c + c2, c1 * d
            sig2 = post_var if variance == "fixed_small" else beta
        if i == 0:
            sig2 = 0.0
        mean, var = A * mean + B, A**2 * var + sig2
    return mean.float(), var.sqrt().float()


def test_ddpm_with_exact_eps_reproduces_gaussian(linear):
    model = md.gaussian_eps_model(MU, S, linear)
    x = md.sample(model, (N, 2), linear, sampler="ddpm", seed=0)
    _check_moments(x, MU, S)


def test_ddim_eta0_is_deterministic_and_reproduces_gaussian(linear):
    model = md.gaussian_eps_model(MU, S, linear)
    xT = torch.randn(N, 2, generator=torch.Generator().manual_seed(0))
    a = md.sample(model, (N, 2), linear, sampler="ddim", eta=0.0, x_T=xT, seed=1)
    b = md.sample(model, (500, 2), linear, sampler="ddim", eta=0.0, x_T=xT[:500], seed=2)
    assert torch.equal(a[:500], b)  # η = 0: no noise after x_T, whatever the seed
    _check_moments(a, *_propagated_moments(linear, 1000, "uniform", "ddim"))
    _check_moments(a, MU, S)


def test_ddim_eta1_matches_ddpm(linear):
    """DDIM with η = 1 is ancestral DDPM with σ_t² = β̃_t: same noise in, same samples out."""
    model = md.gaussian_eps_model(MU, S, linear)
    a = md.sample(model, (512, 2), linear, sampler="ddim", eta=1.0, steps=100, seed=7)
    b = md.sample(model, (512, 2), linear, sampler="ddpm", variance="fixed_small", steps=100, seed=7)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sampler,eta,spacing", [("ddim", 0.0, "uniform"), ("ddim", 0.0, "quadratic"),
                                                 ("ddim", 0.5, "uniform"), ("ddpm", 0.0, "uniform")])
def test_respaced_samplers_reproduce_gaussian(linear, sampler, eta, spacing):
    """The K-step sampler draws exactly the intended update's distribution, and its bias is bounded.

    Its exact output moments (propagated, no sampling noise) differ from the data's N(MU, S²) by two
    biases, each with its own bound:
    - the mean: starting from N(0, I) instead of q(x_T) = N(√ᾱ_T MU, ᾱ_T S² + 1 − ᾱ_T) shifts x_T's
      mean by −√ᾱ_T MU; the reverse map carries it to x_0 scaled by its slope, which is at most
      S/√(1−ᾱ_T) (the exact, deterministic map's; noise injection only shrinks it);
    - the std: the K steps discretize the reverse process to first order, so the relative bias is at
      most Δτ times the T-step sampler's, Δτ the largest step in units of the T-step grid (about
      T/K for uniform spacing, twice that for quadratic). Measured: the ratio of the two sides stays
      between 0.26 and 0.92 for K = 10 to 500 and all four cases. The T-step bias itself is within
      the 5 standard errors of N samples that :func:`_check_moments` allows.
    """
    K, T = 50, linear.T
    model = md.gaussian_eps_model(MU, S, linear)
    x = md.sample(model, (N, 2), linear, sampler=sampler, eta=eta, steps=K, spacing=spacing, seed=3)
    mean, std = _propagated_moments(linear, K, spacing, sampler, eta)
    _check_moments(x, mean, std)  # the implementation is exactly the intended update...
    ab_T = linear.alpha_bars[-1].item()  # ...and its bias is within the bounds above
    assert bool(((mean - MU).abs() <= math.sqrt(ab_T) * MU.abs() * S / math.sqrt(1 - ab_T)).all()), mean
    _, std_T = _propagated_moments(linear, T, "uniform", sampler, eta)
    rel_bias_T = (std_T - S).abs() / S
    assert bool((rel_bias_T < 5 / math.sqrt(2 * N)).all()), rel_bias_T
    largest_step = torch.diff(md.respace_timesteps(T, K, spacing)).max().item()
    assert bool(((std - S).abs() / S <= largest_step * rel_bias_T).all()), (std, largest_step * rel_bias_T)


def test_sample_loop_yields_every_state(linear):
    model = md.gaussian_eps_model(MU, S, linear)
    states = list(md.sample_loop(model, (8, 2), linear, sampler="ddim", steps=10, seed=0))
    assert [s.step for s in states] == list(range(11))
    assert states[0].t == 1000 and states[-1].t == 0 and states[0].x0 is None
    ts = [s.t for s in states]
    assert ts == sorted(ts, reverse=True)
    assert all(s.x.shape == (8, 2) for s in states)


def test_sampling_is_reproducible_from_seed_or_generator(linear):
    model = md.gaussian_eps_model(MU, S, linear)
    a = md.sample(model, (16, 2), linear, steps=20, seed=5)
    b = md.sample(model, (16, 2), linear, steps=20, generator=torch.Generator().manual_seed(5))
    c = md.sample(model, (16, 2), linear, steps=20, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampler_restores_training_mode(linear):
    net = md.MLPDenoiser(hidden=8, n_blocks=1)
    net.train()
    md.sample(net, (4, 2), linear, steps=3, seed=0)
    assert net.training


@pytest.mark.parametrize("sampler,eta", [("ddim", 0.5), ("ddim", 1.0), ("ddpm", 0.0)])
def test_one_step_conditional_variance_is_eta_squared_posterior_variance(linear, sampler, eta):
    """From one fixed x_t, Var(x_{t−1} | x_t) is σ_t² = η² β̃_t for DDIM and β̃_t for DDPM (fixed_small)."""
    K, n = 20, 50_000
    model = md.gaussian_eps_model(MU, S, linear)
    xT = torch.tensor([[0.3, -0.7]]).expand(n, 2).contiguous()
    loop = md.sample_loop(model, (n, 2), linear, sampler=sampler, eta=eta, steps=K, x_T=xT, seed=0)
    next(loop)
    x1 = next(loop).x
    sub = linear.respaced(md.respace_timesteps(1000, K))
    sigma2 = (eta**2 if sampler == "ddim" else 1.0) * sub.posterior_variance[K].item()
    assert x1.var(0).double().numpy() == pytest.approx([sigma2] * 2, rel=5 * math.sqrt(2 / n))
