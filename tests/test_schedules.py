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
    assert linear.alpha_bars[-1].item() == pytest.approx(expected, rel=1e-10)
    assert 3.9e-5 < linear.alpha_bars[-1].item() < 4.1e-5  # the well-known ≈ 4.0e-5
    assert linear.betas.dtype == torch.float64


def test_cosine_schedule_matches_closed_form():
    T, s = 1000, 0.008
    sch = md.get_schedule("cosine", T)

    def f(t: float) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    expected = np.array([f(t) / f(0) for t in range(1, T + 1)])
    unclipped = sch.betas.numpy() < 0.999  # β is clipped at 0.999 only at the very end
    assert unclipped[: T - 5].all()
    first_clip = int(np.argmin(unclipped)) if not unclipped.all() else T
    np.testing.assert_allclose(sch.alpha_bars.numpy()[:first_clip], expected[:first_clip], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", md.SCHEDULES)
def test_alpha_bar_strictly_decreasing_for_every_schedule(name):
    sch = md.get_schedule(name, 1000)
    ab = sch.alpha_bars
    assert bool((ab[1:] < ab[:-1]).all())
    assert 0 < ab[-1] < ab[0] < 1
    assert bool(((sch.betas > 0) & (sch.betas < 1)).all())


def test_custom_betas_any_T():
    for T in (1, 2, 7):
        sch = md.Schedule.from_betas(torch.full((T,), 0.1))
        assert sch.T == T
        assert sch.alpha_bars[-1].item() == pytest.approx(0.9**T)
        assert bool(torch.isfinite(sch.posterior_log_variance_clipped).all())


def test_posterior_coefficients_match_eq7(linear):
    b = linear.betas.numpy()
    a = 1 - b
    ab = np.cumprod(a)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    np.testing.assert_allclose(linear.posterior_variance.numpy(), b * (1 - ab_prev) / (1 - ab), rtol=1e-12)
    np.testing.assert_allclose(linear.posterior_mean_coef1.numpy(), np.sqrt(ab_prev) * b / (1 - ab), rtol=1e-12)
    np.testing.assert_allclose(linear.posterior_mean_coef2.numpy(), np.sqrt(a) * (1 - ab_prev) / (1 - ab), rtol=1e-12)
    np.testing.assert_allclose(linear.log_snr.numpy(), np.log(ab / (1 - ab)), rtol=1e-12)
    assert linear.posterior_variance[0].item() == 0.0
    assert linear.posterior_log_variance_clipped[0].item() == pytest.approx(math.log(linear.posterior_variance[1]))


def test_respaced_schedule_keeps_alpha_bars(linear):
    ts = md.respace_timesteps(1000, 50, "uniform")
    sub = linear.respaced(ts)
    np.testing.assert_allclose(sub.alpha_bars.numpy(), linear.alpha_bars[ts].numpy(), rtol=1e-10)
    full = linear.respaced(torch.arange(1000))
    np.testing.assert_allclose(full.betas.numpy(), linear.betas.numpy(), rtol=1e-8)


@pytest.mark.parametrize("spacing", md.SPACINGS)
@pytest.mark.parametrize("K", [1, 2, 5, 50, 999, 1000])
def test_respace_timesteps_are_increasing_and_in_range(spacing, K):
    ts = md.respace_timesteps(1000, K, spacing)
    assert ts.numel() == K
    assert ts[-1].item() == 999
    assert bool((ts[1:] > ts[:-1]).all()) and ts[0].item() >= 0
    if K > 1:
        assert ts[0].item() == 0
