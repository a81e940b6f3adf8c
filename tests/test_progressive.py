"""The paper's Sec. 4.3 tools (minidiff.progressive) and sample_loop's start_t (chapter "DDPM on MNIST").

Ground truth: Gaussian data N(μ, s²) per dimension, whose optimal ε* is known in closed form
(md.gaussian_eps_model), so E[x_0 | x_t] and the posterior variance are known too.
"""

from __future__ import annotations

import math

import pytest
import torch

import minidiff as md
from minidiff.progressive import interpolate_q, predicted_x0_along_chain, rate_distortion, shared_latent_samples

MU, S = 0.3, 0.4  # the Gaussian data of these tests: N(MU, S²) in every dimension


@pytest.fixture(scope="module")
def short() -> md.Schedule:
    return md.get_schedule("linear", 100)


def _gaussian(D: int, schedule: md.Schedule) -> md.ExactEps:
    return md.gaussian_eps_model(torch.full((D,), MU), S, schedule)


def _data(B: int, D: int, seed: int = 0) -> torch.Tensor:
    return MU + S * torch.randn(B, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _posterior_var(t, schedule: md.Schedule) -> torch.Tensor:
    """Var[x_0 | x_t] = s²(1−ᾱ_t)/(ᾱ_t s² + 1 − ᾱ_t) for N(μ, s²) data: the distortion² of E[x_0 | x_t]."""
    ab = schedule.alpha_bars[t]
    return S**2 * (1 - ab) / (ab * S**2 + 1 - ab)


# --- sample_loop(start_t=...) -------------------------------------------------------------------------------


def test_start_t_equal_to_T_is_the_ordinary_chain(short):
    model, x_T = _gaussian(3, short), torch.randn(5, 3, dtype=torch.float64)
    full = md.sample(model, (5, 3), short, x_T=x_T, seed=1)
    assert torch.equal(md.sample(model, (5, 3), short, x_T=x_T, seed=1, start_t=short.T), full)


def test_start_t_continues_a_deterministic_chain_exactly(short):
    """DDIM with η = 0 is deterministic: continuing from a chain's own x_t at t reproduces its x_0."""
    model, x_T = _gaussian(3, short), torch.randn(4, 3, dtype=torch.float64)
    states = list(md.sample_loop(model, (4, 3), short, sampler="ddim", steps=20, x_T=x_T))
    mid = states[8]
    rest = list(md.sample_loop(model, (4, 3), short, sampler="ddim", steps=20, x_T=mid.x, start_t=mid.t))
    assert rest[0].t == mid.t and len(rest) == len(states) - 8
    torch.testing.assert_close(rest[-1].x, states[-1].x)


def test_start_t_errors_name_the_bad_value(short):
    model, x = _gaussian(2, short), torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="needs x_T"):
        md.sample(model, (3, 2), short, start_t=50)
    with pytest.raises(ValueError, match="start_t = 50"):
        md.sample(model, (3, 2), short, x_T=x, start_t=50, sampler="ddim", steps=7)
    with pytest.raises(ValueError, match="start_t"):
        md.sample(model, (3, 2), short, x_T=x, start_t=101)


# --- progressive generation (Fig. 6) and shared latents (Fig. 7) --------------------------------------------


def test_predicted_x0_is_eq15_of_the_chains_own_state(short):
    model = _gaussian(3, short)
    snap = predicted_x0_along_chain(model, (6, 3), [80, 20, 50, 1], short, seed=3)
    assert snap.t == [80, 50, 20, 1] and snap.xt.shape == snap.x0.shape == (4, 6, 3)
    for k, t in enumerate(snap.t):
        ab = short.alpha_bars[t]
        eq15 = (snap.xt[k] - (1 - ab).sqrt() * model(snap.xt[k], t)) / ab.sqrt()
        torch.testing.assert_close(snap.x0[k], eq15)


def test_shared_latent_samples_follow_the_posterior_of_the_frozen_xt(short):
    """From one frozen x_t the continuations are draws of q(x_0 | x_t): mean E[x_0 | x_t], variance Var[x_0 | x_t]."""
    t, n = 60, 4000
    model = _gaussian(1, short)
    xt = torch.tensor([[0.8]], dtype=torch.float64)
    draws = shared_latent_samples(model, xt, t, short, n=n, seed=5)
    assert draws.shape == (n, 1, 1)
    ab = short.alpha_bars[t]
    var = _posterior_var(t, short)
    mean = MU + ab.sqrt() * S**2 / (ab * S**2 + 1 - ab) * (0.8 - ab.sqrt() * MU)
    se_mean, se_var = math.sqrt(var / n), var * math.sqrt(2 / n)
    # 5 standard errors, plus 2 % for the Gaussian-step approximation of the T = 100 reverse chain
    assert abs(float(draws.mean()) - float(mean)) < 5 * se_mean + 0.02 * math.sqrt(var)
    assert abs(float(draws.var()) - float(var)) < 5 * se_var + 0.02 * float(var)


def test_shared_latent_samples_of_a_deterministic_sampler_coincide(short):
    model = _gaussian(2, short)
    xt = torch.randn(3, 2, dtype=torch.float64)
    draws = shared_latent_samples(model, xt, 40, short, n=3, sampler="ddim", steps=short.T)
    torch.testing.assert_close(draws[0], draws[2])


# --- interpolation (Fig. 8) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 2), (2, 1, 3, 3)])
def test_interpolation_ends_are_the_decodes_of_each_end_with_the_same_noise(short, shape):
    D = math.prod(shape[1:])
    model = _gaussian(D, short)
    flat = lambda x, t: model(x.reshape(len(x), -1), t).reshape(x.shape)  # noqa: E731 (any batch shape)
    a, b = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    noise = torch.randn(shape, dtype=torch.float64)
    out = interpolate_q(flat, a, b, 50, short, [0.0, 0.5, 1.0], noise=noise, seed=7)
    assert out.shape == (3, *shape)
    for lam_index, x0 in ((0, a), (2, b)):
        decode = md.sample(flat, shape, short, x_T=md.q_sample(x0, 50, short, noise), start_t=50, seed=7)
        torch.testing.assert_close(out[lam_index], decode)
    assert not torch.allclose(out[1], out[0])


def test_interpolation_with_a_deterministic_decoder_of_equal_ends_is_constant(short):
    model = _gaussian(2, short)
    a = torch.randn(3, 2, dtype=torch.float64)
    out = interpolate_q(model, a, a.clone(), 30, short, [0.0, 0.3, 1.0], generator=torch.Generator().manual_seed(0),
                        sampler="ddim", steps=short.T)
    torch.testing.assert_close(out[1], out[0])


def test_interpolation_rejects_mismatched_ends(short):
    with pytest.raises(ValueError, match="x0_b"):
        interpolate_q(_gaussian(2, short), torch.zeros(3, 2), torch.zeros(2, 2), 10, short)


# --- progressive coding: rate and distortion (Fig. 5, Algorithms 3-4) --------------------------------------


def _grid_data(B: int, D: int) -> torch.Tensor:
    """Data on the 256 levels of [−1, 1], as images are, for the discretized decoder."""
    levels = torch.randint(0, 256, (B, D), generator=torch.Generator().manual_seed(2))
    return levels.double() / 127.5 - 1


def test_rate_at_zero_is_the_negative_elbo_and_rate_at_T_is_the_prior_term(short):
    x0 = _grid_data(8, 5)
    model = md.gaussian_eps_model(torch.zeros(5), 0.6, short)
    rd = rate_distortion(model, x0, short, generator=torch.Generator().manual_seed(4))
    elbo = md.negative_elbo(model, x0, short, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(rd.rate_per_image[:, 0], elbo["total"])
    torch.testing.assert_close(rd.rate[0], elbo["total"].mean())
    # L_T in closed form: KL(N(√ᾱ_T x_0, 1 − ᾱ_T) || N(0, 1)) = ½(ᾱ_T (x_0² − 1) − log(1 − ᾱ_T)), per dim
    abT = short.alpha_bars[short.T]
    closed = (0.5 * (abT * (x0**2 - 1) - torch.log(1 - abT))).mean(1) / math.log(2)
    torch.testing.assert_close(rd.rate_per_image[:, short.T], closed)
    assert rd.t.tolist() == list(range(short.T + 1)) and float(rd.distortion[0]) == 0.0


def test_rate_grows_as_t_decreases(short):
    x0 = _grid_data(6, 4)
    rd = rate_distortion(md.gaussian_eps_model(torch.zeros(4), 0.6, short), x0, short,
                         generator=torch.Generator().manual_seed(0))
    steps = rd.rate_per_image[:, :-1] - rd.rate_per_image[:, 1:]  # L_t >= 0: each term is a KL or −log of a probability
    assert bool((steps >= -1e-12).all())


def test_distortion_and_rate_terms_match_their_gaussian_closed_forms(short):
    """Exact ε*: distortion(t)² = Var[x_0 | x_t], and E L_{t−1} = c_t² Var[x_0 | x_t]/(2 β̃_t) nats (t ≥ 2)."""
    B, D = 400, 50
    n = B * D
    x0 = _data(B, D)
    rd = rate_distortion(_gaussian(D, short), x0, short, decoder="continuous", scale=1.0,
                         generator=torch.Generator().manual_seed(1))
    t = torch.arange(1, short.T + 1)
    var = _posterior_var(t, short)
    mse = rd.distortion[1:] ** 2
    assert bool(((mse - var).abs() < 5 * var * math.sqrt(2 / n)).all()), (mse / var)
    t2 = torch.arange(2, short.T + 1)
    coef, post = short.posterior_mean_coef1[t2], short.posterior_variance[t2]
    expected_bits = coef**2 * _posterior_var(t2, short) / (2 * post) / math.log(2)
    measured_bits = rd.rate[t2 - 1] - rd.rate[t2]  # rate[t−1] − rate[t] = L_{t−1}
    assert bool(((measured_bits - expected_bits).abs() < 5 * expected_bits * math.sqrt(2 / n)).all())


def test_distortion_scale_is_the_papers_0_255_scale(short):
    x0 = _grid_data(4, 3)
    model = md.gaussian_eps_model(torch.zeros(3), 0.6, short)
    a = rate_distortion(model, x0, short, generator=torch.Generator().manual_seed(0))
    b = rate_distortion(model, x0, short, scale=1.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.distortion, 127.5 * b.distortion)


def test_unit_variance_rate_term_simplifies_as_on_the_book_page(linear):
    """Exercise 1 of "Progressive coding and rate–distortion": c_t²(1−ᾱ_t)/(2β̃_t) = ᾱ_{t−1}β_t/(2(1−ᾱ_{t−1}))."""
    t = torch.arange(2, linear.T + 1)
    ab, ab_prev, beta = linear.alpha_bars[t], linear.alpha_bars_prev[t], linear.betas[t]
    general = linear.posterior_mean_coef1[t] ** 2 * (1 - ab) / (2 * linear.posterior_variance[t])
    torch.testing.assert_close(general, ab_prev * beta / (2 * (1 - ab_prev)))
