"""Losses: the Gaussian KL, Eq. 12's weighting, the decoders, and the ELBO (Eq. 5)."""

from __future__ import annotations

import math

import pytest
import torch

import minidiff as md


def test_gaussian_kl_matches_monte_carlo(gen):
    n = 400_000
    m1, lv1, m2, lv2 = 0.3, math.log(0.5), -0.4, math.log(1.7)
    x = m1 + math.exp(0.5 * lv1) * torch.randn(n, generator=gen, dtype=torch.float64)
    log_ratio = (md.losses.continuous_gaussian_log_likelihood(x, torch.tensor(m1), torch.tensor(lv1))
                 - md.losses.continuous_gaussian_log_likelihood(x, torch.tensor(m2), torch.tensor(lv2)))
    kl = md.losses.normal_kl(torch.tensor(m1), torch.tensor(lv1), torch.tensor(m2), torch.tensor(lv2)).item()
    se = log_ratio.std().item() / math.sqrt(n)
    assert kl == pytest.approx(log_ratio.mean().item(), abs=5 * se)
    assert md.losses.normal_kl(torch.tensor(m1), torch.tensor(lv1), torch.tensor(m1), torch.tensor(lv1)).item() == 0.0


@pytest.mark.parametrize("t", [2, 50, 1000])
def test_kl_term_equals_weighted_eps_mse(linear, gen, t):
    """Eq. 12: L_{t-1} = β_t² / (2σ_t² α_t (1-ᾱ_t)) ‖ε − ε_θ‖² when σ_t² = β̃_t (fixed_small)."""
    x0 = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    eps = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    eps_theta = eps + 0.3 * torch.randn(64, 5, generator=gen, dtype=torch.float64)
    tt = torch.full((64,), t)
    xt = md.q_sample(x0, tt, linear, eps)
    kl = md.vlb_term(eps_theta, x0, xt, tt, linear, variance="fixed_small", decoder="continuous")
    b, a, ab, var = (linear.betas[t], linear.alphas[t], linear.alpha_bars[t], linear.posterior_variance[t])
    weight = b**2 / (2 * var * a * (1 - ab))
    expected = weight * ((eps - eps_theta) ** 2).mean(1)
    torch.testing.assert_close(kl, expected, rtol=1e-7, atol=1e-10)


def test_discretized_decoder_sums_to_one():
    levels = torch.linspace(-1, 1, 256, dtype=torch.float64)  # every 8-bit value scaled to [-1, 1]
    for mean, log_scale in ((0.0, -2.0), (0.93, -5.0), (-1.2, 0.5)):
        ll = md.losses.discretized_gaussian_log_likelihood(levels, torch.tensor(mean), torch.tensor(log_scale))
        assert ll.exp().sum().item() == pytest.approx(1.0, abs=1e-9)


def _elbo_and_nll(sch, mean, std, variance, n, seed):
    g = torch.Generator().manual_seed(seed)
    model = md.gaussian_eps_model([mean], [std], sch)
    x0 = mean + std * torch.randn(n, 1, generator=g, dtype=torch.float64)
    nll_bits = -md.GaussianMixture(torch.tensor([[mean]]), std).log_prob(x0) / math.log(2)
    elbo = md.negative_elbo(model, x0, sch, variance=variance, decoder="continuous", generator=g)["total"]
    gap = elbo - nll_bits
    return gap.mean().item(), gap.std().item() / math.sqrt(n)


@pytest.mark.slow
def test_negative_elbo_matches_true_nll_for_gaussian_data(linear):
    """For N(0, 1) data the true reverse kernels are N(√α_t x_t, β_t): with the exact ε and
    fixed_large variance the model *is* the true reverse process, so the bound (Eq. 5) is tight."""
    gap, se = _elbo_and_nll(linear, 0.0, 1.0, "fixed_large", 1000, 0)
    # The expected gap is exactly 0 (no bias to allow for): the only error is the Monte Carlo one
    # of evaluating each L_{t−1} at one x_t, whose standard error over n = 1000 examples is se.
    assert abs(gap) < 5 * se, (gap, se)


@pytest.mark.slow
@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_negative_elbo_never_below_true_nll(linear, variance):
    gap, se = _elbo_and_nll(linear, 0.5, 0.5, variance, 1000, 1)
    assert gap > -5 * se, (gap, se)


def test_prior_term_is_tiny_for_the_linear_schedule(linear, gen):
    """L_T ≈ 0 (Sec. 3.1): per dimension L_T = ½(ᾱ_T x_0² − ᾱ_T − log(1−ᾱ_T)) ≤ ½ ᾱ_T (x_0² + ᾱ_T/(1−ᾱ_T))."""
    x0 = torch.randn(256, 3, generator=gen, dtype=torch.float64)
    prior_bits = md.prior_kl(x0, linear) / math.log(2)
    ab = linear.alpha_bars[-1].item()
    bound_bits = 0.5 * ab * ((x0**2).mean(1) + ab / (1 - ab)) / math.log(2)
    assert bool((prior_bits >= 0).all()) and bool((prior_bits <= bound_bits + 1e-14).all())  # + float64 rounding
    assert bound_bits.max().item() < 1e-3  # at most a thousandth of a bit per dimension for these x_0


@pytest.mark.parametrize("loss", md.losses.LOSSES)
def test_training_losses_shapes_and_gradients(linear, gen, loss):
    variance = "learned_range" if loss != "simple" else "fixed_small"
    model = md.MLPDenoiser(dim=2, hidden=16, n_blocks=1, learn_variance=variance == "learned_range")
    x0 = md.make_toy("moons", 32, seed=0)
    out = md.training_losses(model, x0, linear, loss=loss, variance=variance, decoder="continuous", generator=gen)
    assert out.shape == (32,) and bool(torch.isfinite(out).all())
    out.mean().backward()
    assert all(p.grad is not None for p in model.head.parameters())


def test_l_simple_is_zero_for_the_exact_target(linear, gen):
    x0 = torch.randn(16, 2, generator=gen)
    noise = torch.randn(16, 2, generator=gen)
    t = torch.randint(1, 1001, (16,), generator=gen)
    for p in md.PARAMETERIZATIONS:
        def oracle(xt, tt, p=p):
            return md.from_x0_eps(x0, noise, xt, tt, linear, p)
        loss = md.training_losses(oracle, x0, linear, t=t, noise=noise, parameterization=p)
        assert loss.abs().max().item() < 1e-10


def test_hybrid_vlb_part_does_not_train_the_mean(linear, gen):
    """L_hybrid stops the mean's gradient in its L_vlb part (Nichol & Dhariwal 2021, Sec. 3.1)."""
    torch.manual_seed(0)
    model = md.MLPDenoiser(dim=2, hidden=16, n_blocks=1, learn_variance=True)
    x0 = md.make_toy("moons", 64, seed=0)
    t = torch.randint(1, 1001, (64,), generator=gen)
    noise = torch.randn(64, 2, generator=gen)
    kw = dict(t=t, noise=noise, variance="learned_range", decoder="continuous")
    xt = md.q_sample(x0, t, linear, noise)
    simple_part = ((model(xt, t)[:, :2] - noise) ** 2).mean(1)  # L_simple on the mean head alone
    model_mean_only = model.head.weight
    hybrid = md.training_losses(model, x0, linear, loss="hybrid", **kw)
    g_hybrid = torch.autograd.grad(hybrid.mean(), model_mean_only, retain_graph=True)[0]
    g_simple = torch.autograd.grad(simple_part.mean(), model_mean_only, allow_unused=True)[0]
    assert g_simple is not None
    torch.testing.assert_close(g_hybrid, g_simple)


@pytest.mark.parametrize("t", [7, torch.tensor(7), torch.tensor([7])])
def test_a_single_timestep_is_used_for_the_whole_batch(linear, gen, t):
    """One t is broadcast to (B,) before the network sees it (the MLP needs one t per example)."""
    model = md.MLPDenoiser(dim=2, hidden=16, n_blocks=1)
    x0, noise = torch.randn(8, 2, generator=gen), torch.randn(8, 2, generator=gen)
    kw = dict(noise=noise, loss="vlb", decoder="continuous")
    full = md.training_losses(model, x0, linear, t=torch.full((8,), 7), **kw)
    torch.testing.assert_close(md.training_losses(model, x0, linear, t=t, **kw), full)
    xt = md.q_sample(x0, t, linear, noise)
    expected = md.vlb_term(noise, x0, xt, torch.full((8,), 7), linear)
    torch.testing.assert_close(md.vlb_term(noise, x0, xt, t, linear), expected)


def test_everything_after_a_bf16_network_is_float32(linear, gen):
    """Under bf16 autocast the network's output is bf16, but the learned-range log-variance (Eq. 15), the
    posterior mean, the loss and a sampler step are computed in float32: they match the float32
    computation on the same (bf16) network output to float32 precision (issue 15: bf16 put 0.07 into
    the log-variance). Float32 rounding of values of size ~10 gives the 1e-5 tolerance."""
    torch.manual_seed(0)
    model = md.MLPDenoiser(dim=2, hidden=32, n_blocks=1, learn_variance=True)
    x0 = md.make_toy("moons", 256, seed=0)
    t = torch.randint(1, 1001, (256,), generator=gen)
    noise = torch.randn(256, 2, generator=gen)
    xt = md.q_sample(x0, t, linear, noise)

    def bf16_net(x, tt):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x, tt)

    out = bf16_net(xt, t)
    assert out.dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = md.p_mean_variance(out, xt, t, linear, variance="learned_range")
    ref = md.p_mean_variance(out.float(), xt, t, linear, variance="learned_range")
    for a, r in zip(amp, ref, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)
    kw = dict(t=t, noise=noise, loss="hybrid", variance="learned_range", decoder="continuous")
    loss = md.training_losses(bf16_net, x0, linear, **kw)
    loss_ref = md.training_losses(lambda x, tt: bf16_net(x, tt).float(), x0, linear, **kw)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, loss_ref, rtol=1e-5, atol=1e-5)
    lv = md.reverse.learned_range_log_variance(out[:, 2:], t, linear)
    assert lv.dtype == torch.float32
    torch.testing.assert_close(lv, ref.log_variance, rtol=1e-5, atol=1e-5)
    x_amp = md.sample(bf16_net, (64, 2), linear, steps=10, seed=0, variance="learned_range", clip_x0=1.0)
    x_ref = md.sample(lambda x, tt: bf16_net(x, tt).float(), (64, 2), linear, steps=10, seed=0,
                      variance="learned_range", clip_x0=1.0)  # clipped: an untrained net diverges
    assert x_amp.dtype == torch.float32
    torch.testing.assert_close(x_amp, x_ref, rtol=1e-5, atol=1e-5)


def test_drawn_t_is_uniform_on_1_to_T_with_the_stream_of_randint_0_to_T(linear):
    """t ~ U{1..T} is drawn as randint(1, T + 1), which consumes the generator exactly as the former
    randint(0, T) + 1 did: every stored chapter output (trained networks included) reproduces."""
    x0, seen = torch.zeros(4096, 1), []
    g = torch.Generator().manual_seed(5)
    md.training_losses(lambda xt, t: seen.append(t) or torch.zeros_like(xt), x0, linear, generator=g)
    g_old = torch.Generator().manual_seed(5)
    assert torch.equal(seen[0], torch.randint(0, linear.T, (4096,), generator=g_old) + 1)
    torch.randn(x0.shape, generator=g_old)  # the noise training_losses draws next
    assert torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=g_old))  # same position afterwards
    assert seen[0].min() == 1 and seen[0].max() == linear.T
