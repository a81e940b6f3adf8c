"""Schedules (Sec. 4 of Ho et al.; Nichol & Dhariwal 2021, Eq. 17) and their derived quantities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import minidiff as md


def test_linear_alpha_bar_T_matches_product_formula(linear):
    betas = np.linspace(1e-4, 0.02, 1000)
    expected = np.prod(1.0 - betas)
    assert linear.alpha_bars[linear.T].item() == pytest.approx(expected, rel=1e-10)
    assert 3.9e-5 < linear.alpha_bars[1000].item() < 4.1e-5  # the well-known ≈ 4.0e-5
    assert linear.betas.dtype == torch.float64


def test_arrays_are_indexed_by_the_papers_t(linear):
    """Index t is the paper's t: β_1 = 1e-4, β_T = 0.02, ᾱ_t = Π_{s=1}^t α_s, and entry 0 is t = 0 (the data)."""
    assert linear.T == 1000 and linear.betas.shape == (1001,)
    assert linear.betas[1].item() == pytest.approx(1e-4, rel=1e-12)
    assert linear.betas[1000].item() == pytest.approx(0.02, rel=1e-12)
    for t in (1, 2, 500, 1000):
        assert linear.alpha_bars[t].item() == pytest.approx(torch.prod(linear.alphas[1:t + 1]).item(), rel=1e-12)
    assert linear.alpha_bars[0].item() == 1.0 and linear.betas[0].item() == 0.0
    assert linear.sqrt_one_minus_alpha_bars[0].item() == 0.0
    assert linear.alpha_bars_prev[1].item() == 1.0  # ᾱ_0
    assert linear.alpha_bars_prev[501].item() == linear.alpha_bars[500].item()


def test_first_noisy_step_has_variance_beta_1(linear):
    """q(x_1 | x_0) = N(√α_1 x_0, β_1 I): the first step of the chain, by both routes (Eq. 2 and Eq. 4)."""
    x0 = torch.full((1, 3), 2.0, dtype=torch.float64)
    mean, var = md.q_mean_variance(x0, 1, linear)
    torch.testing.assert_close(var, torch.full_like(x0, 1e-4), rtol=1e-12, atol=0)
    torch.testing.assert_close(mean, x0 * math.sqrt(1 - 1e-4), rtol=1e-12, atol=0)
    mean0, var0 = md.q_mean_variance(x0, 0, linear)  # t = 0 is the data itself
    assert torch.equal(mean0, x0) and bool((var0 == 0).all())
    assert torch.equal(md.q_sample(x0, 0, linear), x0)


def test_zero_indexed_helpers_are_inverse_and_shift_by_one():
    t = torch.tensor([1, 2, 1000])
    assert md.schedules.to_zero_indexed(t).tolist() == [0, 1, 999]
    assert md.schedules.from_zero_indexed([999, 0]).tolist() == [1000, 1]
    assert torch.equal(md.schedules.from_zero_indexed(md.schedules.to_zero_indexed(t)), t)


def test_cosine_schedule_matches_closed_form():
    T, s = 1000, 0.008
    sch = md.get_schedule("cosine", T)

    def f(t: float) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    expected = np.array([f(t) / f(0) for t in range(0, T + 1)])  # t = 0..T
    unclipped = sch.betas.numpy()[1:] < 0.999  # β_1..β_T; clipped at 0.999 only at the very end
    assert unclipped[: T - 5].all()
    first_clip = 1 + (int(np.argmin(unclipped)) if not unclipped.all() else T)  # the first clipped t
    np.testing.assert_allclose(sch.alpha_bars.numpy()[:first_clip], expected[:first_clip], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", md.schedules.SCHEDULES)
def test_alpha_bar_strictly_decreasing_for_every_schedule(name):
    sch = md.get_schedule(name, 1000)
    ab = sch.alpha_bars
    assert bool((ab[1:] < ab[:-1]).all())
    assert 0 < ab[1000] < ab[1] < ab[0] == 1
    assert bool(((sch.betas[1:] > 0) & (sch.betas[1:] < 1)).all())


def test_custom_betas_any_T():
    for T in (1, 2, 7):
        sch = md.Schedule.from_betas(torch.full((T,), 0.1))
        assert sch.T == T and sch.alpha_bars.shape == (T + 1,)
        assert sch.alpha_bars[T].item() == pytest.approx(0.9**T)
        assert bool(torch.isfinite(sch.posterior_log_variance_clipped).all())


def test_posterior_coefficients_match_eq7(linear):
    b = np.linspace(1e-4, 0.02, 1000)  # β_1..β_T; the schedule's entries 1..T
    a = 1 - b
    ab = np.cumprod(a)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    for got, want in ((linear.posterior_variance, b * (1 - ab_prev) / (1 - ab)),
                      (linear.posterior_mean_coef1, np.sqrt(ab_prev) * b / (1 - ab)),
                      (linear.posterior_mean_coef2, np.sqrt(a) * (1 - ab_prev) / (1 - ab)),
                      (linear.log_snr, np.log(ab / (1 - ab)))):
        np.testing.assert_allclose(got.numpy()[1:], want, rtol=1e-10)
    assert linear.posterior_variance[1].item() == 0.0  # β̃_1 = 0: q(x_0 | x_1, x_0) is a point mass
    assert linear.posterior_mean_coef1[1].item() == pytest.approx(1.0) and linear.posterior_mean_coef2[1] == 0
    assert linear.posterior_log_variance_clipped[1].item() == pytest.approx(math.log(linear.posterior_variance[2]))


def test_respaced_schedule_keeps_alpha_bars_and_the_convention(linear):
    ts = md.respace_timesteps(1000, 50, "uniform")
    sub = linear.respaced(ts)
    assert sub.T == 50 and sub.alpha_bars[0].item() == 1.0  # step i of the respaced schedule is the paper's τ_i
    np.testing.assert_allclose(sub.alpha_bars.numpy()[1:], linear.alpha_bars[ts].numpy(), rtol=1e-10)
    assert sub.betas[1].item() == pytest.approx(1 - linear.alpha_bars[ts[0]].item(), rel=1e-12)
    full = linear.respaced(torch.arange(1, 1001))
    np.testing.assert_allclose(full.betas.numpy(), linear.betas.numpy(), rtol=1e-8)


@pytest.mark.parametrize("spacing", md.samplers.SPACINGS)
@pytest.mark.parametrize("K", [1, 2, 5, 50, 999, 1000])
def test_respace_timesteps_are_increasing_and_in_range(spacing, K):
    ts = md.respace_timesteps(1000, K, spacing)
    assert ts.numel() == K
    assert ts[-1].item() == 1000
    assert bool((ts[1:] > ts[:-1]).all()) and ts[0].item() >= 1
    if K > 1:
        assert ts[0].item() == 1
