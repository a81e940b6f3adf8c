"""The discretized decoder of Eq. (13) and the bits/dim number (book page "The discretized decoder and bits/dim").

Each formula on the page is checked here against an independent computation: the 256 bin probabilities are
differences of the normal CDF at the bin edges and sum to one; an interior bin's probability is the integral of the
Gaussian over the bin (quadrature); an edge bin holds the whole tail (Monte Carlo); for narrow bins the probability
is the density times the bin width, with the second-order correction of the midpoint rule; a continuous density
changes with the data's scale while bin probabilities do not; and bits/dim is the bound summed over the D dimensions
in nats, divided by D ln 2. The exact Gaussian case (the bound equals the true negative log-likelihood in bits/dim)
is tests/test_losses.py::test_negative_elbo_matches_true_nll_for_gaussian_data.
"""

from __future__ import annotations

import math

import pytest
import torch

import minidiff as md
from minidiff.losses import continuous_gaussian_log_likelihood, discretized_gaussian_log_likelihood, normal_kl

DELTA = 2 / 255  # the distance between neighbouring 8-bit values on [-1, 1]
LEVELS = torch.linspace(-1, 1, 256, dtype=torch.float64)
CASES = [(0.0, 0.1), (0.37, 0.02), (-0.95, 0.004), (1.3, 0.5)]


def decoder(x, mean, std):
    x = torch.as_tensor(x, dtype=torch.float64)
    return discretized_gaussian_log_likelihood(x, torch.tensor(mean, dtype=torch.float64),
                                               torch.tensor(math.log(std), dtype=torch.float64))


@pytest.mark.parametrize("mean,std", CASES)
def test_bin_probabilities_are_cdf_differences_at_the_edges_and_sum_to_one(mean, std):
    edges = torch.cat([torch.tensor([-math.inf]), (LEVELS[:-1] + LEVELS[1:]) / 2, torch.tensor([math.inf])])
    cdf = torch.special.ndtr((edges - mean) / std)
    p = decoder(LEVELS, mean, std).exp()
    big = p > 1e-10  # below that the decoder's log is clamped at log 1e-12
    torch.testing.assert_close(p[big], (cdf[1:] - cdf[:-1])[big], rtol=1e-9, atol=1e-12)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-9)  # the edges telescope: Φ(+∞) − Φ(−∞)


@pytest.mark.parametrize("mean,std", CASES)
def test_interior_bin_equals_the_gaussian_integrated_over_the_bin(mean, std):
    for k in (1, 60, 128, 200, 254):
        x = LEVELS[k].item()
        grid = torch.linspace(x - DELTA / 2, x + DELTA / 2, 4001, dtype=torch.float64)
        integral = torch.trapezoid(torch.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi)), grid)
        if integral > 1e-10:
            assert decoder(x, mean, std).exp().item() == pytest.approx(integral.item(), rel=1e-6)


def test_edge_bins_hold_the_whole_tail():
    mean, std, n = -0.97, 0.05, 400_000
    y = mean + std * torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for x, inside in ((-1.0, y < -1 + DELTA / 2), (1.0, y > 1 - DELTA / 2)):
        p = decoder(x, mean, std).exp().item()
        share = inside.double().mean().item()
        se = math.sqrt(max(share * (1 - share), 1e-12) / n)
        assert abs(p - share) < 5 * se + 1e-12, (x, p, share)
    lowest = decoder(-1.0, mean, std).exp().item()  # the tail below −1 + Δ/2, not only [−1 − Δ/2, −1 + Δ/2]
    bin_only = (torch.special.ndtr(torch.tensor((-1 + DELTA / 2 - mean) / std))
                - torch.special.ndtr(torch.tensor((-1 - DELTA / 2 - mean) / std))).item()
    assert lowest > bin_only + 0.1


@pytest.mark.parametrize("mean,std", [(0.1, 0.3), (-0.4, 0.1)])
def test_narrow_bins_give_density_times_bin_width(mean, std):
    """log P(x) = log(Δ p(x)) + Δ² p''(x) / (24 p(x)) + O(Δ⁴), p''/p = (z² − 1) / σ², z = (x − μ)/σ.

    Within |z| ≤ 2 the neglected terms are at most the fourth-order one of the midpoint rule,
    Δ⁴ |p/p| / 1920 with p/p = (z⁴ − 6z² + 3)/σ⁴ (|·| ≤ 6), plus the square of the correction (log(1 + a) = a + O(a²)).
    """
    x = LEVELS[(LEVELS - mean).abs() <= 2 * std]
    z = (x - mean) / std
    log_density = continuous_gaussian_log_likelihood(x, torch.tensor(mean, dtype=torch.float64),
                                                      torch.tensor(2 * math.log(std), dtype=torch.float64))
    correction = DELTA**2 / 24 * (z**2 - 1) / std**2
    tolerance = DELTA**4 / 1920 * 6 / std**4 + (DELTA**2 / 24 * 3 / std**2) ** 2
    error = decoder(x, mean, std) - (log_density + math.log(DELTA) + correction)
    assert error.abs().max().item() < tolerance
    assert correction.abs().max().item() > 10 * tolerance  # the correction term is resolved, not lost in the error


def test_a_density_changes_with_the_data_scale_and_a_bin_probability_does_not():
    x, mean, std, a = torch.tensor(0.2, dtype=torch.float64), 0.205, 0.01, 127.5  # [-1, 1] vs [0, 255] pixel units
    f64 = dict(dtype=torch.float64)
    ll = continuous_gaussian_log_likelihood(x, torch.tensor(mean, **f64), torch.tensor(2 * math.log(std), **f64))
    scaled = continuous_gaussian_log_likelihood(a * x, torch.tensor(a * mean, **f64),
                                                torch.tensor(2 * math.log(a * std), **f64))
    assert (ll - scaled).item() == pytest.approx(math.log(a), rel=1e-12)  # −log a per dimension
    assert ll.item() > 0  # a narrow density exceeds 1: a "negative" bits/dim
    half = DELTA / 2
    p = decoder(x.item(), mean, std).exp().item()
    p_scaled = (torch.special.ndtr((a * (x + half) - a * mean) / (a * std))
                - torch.special.ndtr((a * (x - half) - a * mean) / (a * std))).item()
    assert p == pytest.approx(p_scaled, rel=1e-12) and 0 < p <= 1
    near_point_mass = decoder(x.item(), x.item(), 1e-4).item()  # σ → 0 on a value: probability → 1, 0 bits
    assert -1e-12 <= -near_point_mass < 1e-9


def test_bits_per_dim_is_the_bound_summed_over_dimensions_in_nats_over_d_ln2():
    """Recompute Eq. (5) per image by hand, summing nats over the D pixels, then divide by D ln 2."""
    torch.manual_seed(0)
    sch = md.get_schedule("linear", 6)
    net = torch.nn.Conv2d(1, 1, 3, padding=1).double()
    model = lambda x, t: net(x) * (t.double() / 6)[:, None, None, None]  # noqa: E731
    x0 = torch.randint(0, 256, (3, 1, 4, 4), generator=torch.Generator().manual_seed(1)).double() / 127.5 - 1
    D = x0[0].numel()
    bits = md.negative_elbo(model, x0, sch, variance="fixed_large", generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(2)
    nats = torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():
        for t in range(1, sch.T + 1):
            tt = torch.full((3,), t)
            xt = md.q_sample(x0, tt, sch, torch.randn(x0.shape, generator=gen, dtype=torch.float64))
            p = md.p_mean_variance(model(xt, tt), xt, tt, sch, variance="fixed_large")
            if t == 1:
                term = -discretized_gaussian_log_likelihood(x0, p.mean, 0.5 * p.log_variance)
            else:
                q_mean, _, q_logvar = md.q_posterior_mean_variance(x0, xt, tt, sch)
                term = normal_kl(q_mean, q_logvar, p.mean, p.log_variance)
            nats += term.flatten(1).sum(1)
        mean_T, var_T = md.q_mean_variance(x0, sch.T, sch)
        nats += normal_kl(mean_T, var_T.log(), torch.zeros_like(x0), torch.zeros_like(x0)).flatten(1).sum(1)
    torch.testing.assert_close(bits["total"], nats / (D * math.log(2)), rtol=1e-10, atol=1e-12)
