"""Classifier-free guidance: the formula of the derivation page "Guidance and the implicit classifier",
checked against exact scores of Gaussian mixtures (closed form vs autograd) and on a real U-Net."""

import math

import pytest
import torch
from _helpers import perturb

import minidiff as md
from minidiff.guidance import (
    ExactConditionalEps,
    guided_eps,
    implicit_classifier_gradient,
    tilted_gaussian,
)
from minidiff.nets import UNet, guided

SCH = md.get_schedule("linear", T=1000)


def three_class_mixture() -> ExactConditionalEps:
    """2D: class 0 two blobs, class 1 one wide blob, class 2 one narrow blob; unequal weights."""
    means = torch.tensor([[-2.0, 0.0], [-1.0, 1.5], [2.0, 0.5], [0.5, -2.0]])
    stds = torch.tensor([0.3, 0.4, 0.8, 0.2])
    mix = md.GaussianMixture(means, stds, torch.tensor([0.2, 0.15, 0.4, 0.25]))
    return ExactConditionalEps(mix, [0, 0, 1, 2], SCH)


def test_w0_is_the_conditional_model_and_the_null_label_is_the_unconditional_one():
    exact = three_class_mixture()
    x, t = torch.randn(12, 2, dtype=torch.float64) * 2, torch.randint(1, 1001, (12,))
    y = torch.arange(12) % 3
    torch.testing.assert_close(guided(exact, y, 0.0)(x, t), exact(x, t, y))
    null = torch.full_like(y, exact.num_classes)
    for w in (0.0, 0.5, 4.0):  # guiding the null label against itself changes nothing
        torch.testing.assert_close(guided(exact, null, w)(x, t), exact(x, t))
    # ...and the null label's ε* is the whole mixture's, not any class's
    assert not torch.allclose(exact(x, t, y), exact(x, t))


def test_guided_eps_is_affine_in_w_with_slope_the_implicit_classifier_direction():
    exact = three_class_mixture()
    x, t, y = torch.randn(8, 2, dtype=torch.float64), torch.full((8,), 300), torch.arange(8) % 3
    e = {w: guided(exact, y, w)(x, t) for w in (0.0, 1.0, 2.5)}
    slope = exact(x, t, y) - exact(x, t)
    torch.testing.assert_close(e[1.0] - e[0.0], slope)
    torch.testing.assert_close(e[2.5], e[0.0] + 2.5 * slope)
    # diffusers' guidance scale s = 1 + w: eps_u + s (eps_c - eps_u)
    torch.testing.assert_close(e[2.5], exact(x, t) + 3.5 * slope)


@pytest.mark.parametrize("t", [1, 50, 400, 999])
def test_implicit_classifier_is_the_bayes_posterior_gradient(t):
    """−(ε*(c) − ε*(∅))/√(1−ᾱ_t) = ∇ log p(c | x_t), with the posterior from Bayes' rule, by autograd."""
    exact = three_class_mixture()
    x = (torch.randn(16, 2, dtype=torch.float64) * 1.5).requires_grad_(True)
    for c in range(3):
        y = torch.full((16,), c)
        (grad,) = torch.autograd.grad(exact.class_log_posterior(x, t, c).sum(), x)
        implied = implicit_classifier_gradient(exact(x.detach(), t, y), exact(x.detach(), t), t, SCH)
        torch.testing.assert_close(implied, grad, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("w", [0.0, 0.5, 3.0])
def test_guided_eps_is_the_score_of_the_tilted_marginal(w):
    """ε̃ = −√(1−ᾱ_t) ∇ log [q(x_t | c) p(c | x_t)^w], from exact log densities by autograd."""
    exact, t, c = three_class_mixture(), 200, 0
    x = (torch.randn(10, 2, dtype=torch.float64) * 2).requires_grad_(True)
    log_tilted = exact.class_mixture(c).log_prob(x, t, SCH) + w * exact.class_log_posterior(x, t, c)
    (score,) = torch.autograd.grad(log_tilted.sum(), x)
    y = torch.full((10,), c)
    expected = -math.sqrt(1 - float(SCH.alpha_bars[t])) * score
    torch.testing.assert_close(guided(exact, y, w)(x.detach(), torch.full((10,), t)), expected)


@pytest.mark.parametrize("w", [0.0, 1.0, 4.0])
def test_tilted_gaussian_closed_form_matches_quadrature(w):
    mc, vc, mu, vu = 1.0, 0.25, 0.2, 1.5
    mean, var = tilted_gaussian(mc, vc, mu, vu, w)
    x = torch.linspace(-8, 8, 200_001, dtype=torch.float64)
    log_p = (1 + w) * (-(x - mc) ** 2 / (2 * vc)) - w * (-(x - mu) ** 2 / (2 * vu))
    p = torch.exp(log_p - log_p.max())
    p = p / torch.trapezoid(p, x)
    m_num = torch.trapezoid(x * p, x)
    v_num = torch.trapezoid((x - m_num) ** 2 * p, x)
    assert mean == pytest.approx(float(m_num), abs=1e-6)
    assert var == pytest.approx(float(v_num), rel=1e-6)


def test_larger_w_trades_diversity_for_fidelity_in_the_gaussian_case():
    """Class narrower than the data: the tilted variance falls and the mean moves away from the data mean."""
    means, variances = zip(*(tilted_gaussian(1.0, 0.25, 0.0, 1.5, w) for w in (0, 0.5, 1, 2, 4)))
    assert all(a > b for a, b in zip(variances, variances[1:]))
    assert all(a < b for a, b in zip(means, means[1:]))
    assert variances[0] == pytest.approx(0.25) and means[0] == pytest.approx(1.0)


def test_guided_sampling_with_exact_scores_concentrates_each_class():
    """Ancestral sampling with exact guided ε: larger w gives a smaller within-class spread and moves the
    samples deeper into their class (the exact Bayes posterior p(c | x) at t = 1 rises)."""
    exact, n = three_class_mixture(), 2000
    y = torch.full((n,), 1)
    spread, post = [], []
    for w in (0.0, 1.0, 4.0):
        x = md.sample(guided(exact, y, w), (n, 2), SCH, sampler="ddpm", steps=100, seed=0).double()
        spread.append(float(x.std(0).mean()))
        post.append(float(exact.class_log_posterior(x, 1, 1).exp().mean()))
    assert spread[2] < 0.95 * spread[0], spread
    assert post[0] < post[1] < post[2], post
    # w = 0 samples the class itself: its std is 0.8 per coordinate
    assert spread[0] == pytest.approx(0.8, rel=0.1)


@pytest.mark.parametrize("learn_variance", [False, True])
def test_guided_on_a_conditional_unet_uses_one_batched_call(learn_variance):
    torch.manual_seed(0)
    model = perturb(UNet(in_channels=1, ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(), num_classes=3,
                         num_groups=4, learn_variance=learn_variance))
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    x, t, y = torch.randn(5, 1, 8, 8), torch.full((5,), 10), torch.tensor([0, 1, 2, 0, 1])
    with torch.no_grad():
        out = guided(model, y, 2.0)(x, t)
        cond, uncond = model(x, t, y), model(x, t, torch.full_like(y, 3))
    assert calls[0] == 10
    assert (cond - uncond).abs().max() > 1e-3  # the label matters, so the check below is not 0 == 0
    if learn_variance:  # ε is guided; the variance output is the conditional one
        (cond, var), uncond = cond.chunk(2, dim=1), uncond.chunk(2, dim=1)[0]
        torch.testing.assert_close(out[:, 1:], var, atol=1e-5, rtol=1e-5)
        out = out[:, :1]
    torch.testing.assert_close(out, guided_eps(cond, uncond, 2.0), atol=1e-5, rtol=1e-5)


def test_the_tilted_marginals_are_not_the_forward_marginals_of_the_tilted_data():
    """Gaussian case in closed form: tilting q(x_t | c) and q(x_t) at ᾱ_t = 0.5 gives variance 0.417; noising the
    tilted data N(μ_w, v_w) by Eq. (4) gives ᾱ_t v_w + 1 − ᾱ_t = 0.568 (derivation "What guidance does not do")."""
    vc, vu, w, ab = 0.25, 1.5, 1.0, 0.5
    _, tilted_then_noised = tilted_gaussian(1.0, ab * vc + 1 - ab, 0.0, ab * vu + 1 - ab, w)
    _, v_w = tilted_gaussian(1.0, vc, 0.0, vu, w)
    noised_then_tilted = ab * v_w + 1 - ab
    assert tilted_then_noised == pytest.approx(1 / (2 / 0.625 - 1 / 1.25))
    assert noised_then_tilted == pytest.approx(0.5 / (8 - 1 / 1.5) + 0.5)
    assert abs(tilted_then_noised - noised_then_tilted) > 0.1


@pytest.mark.parametrize("w", [-0.5, float("nan"), float("inf")])
def test_bad_guidance_strength_is_named(w):
    with pytest.raises(ValueError, match="w = "):
        guided(three_class_mixture(), torch.zeros(2, dtype=torch.long), w)


def test_bad_labels_and_bad_tilts_are_named():
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        guided(three_class_mixture(), torch.tensor([0, 4]), 1.0)
    with pytest.raises(ValueError, match="not normalizable"):
        tilted_gaussian(0.0, 2.0, 0.0, 1.0, 2.0)  # class wider than the data: the tilt blows up
    with pytest.raises(ValueError, match="shape"):
        guided_eps(torch.zeros(2, 2), torch.zeros(2, 3), 1.0)
    with pytest.raises(ValueError, match="no gaps"):
        ExactConditionalEps(md.GaussianMixture(torch.zeros(2, 2), 1.0), [0, 2], SCH)


@pytest.mark.parametrize("w", [0.0, 2.0])
def test_classifier_guidance_with_the_exact_classifier_at_scale_1_plus_w_is_classifier_free_guidance(w):
    """ε(∅) − s √(1−ᾱ_t) ∇ log p(c | x_t) with s = 1 + w (Dhariwal & Nichol) = (1+w) ε(c) − w ε(∅)."""
    exact, t, c = three_class_mixture(), 120, 2
    x = (torch.randn(10, 2, dtype=torch.float64) * 2).requires_grad_(True)
    (grad,) = torch.autograd.grad(exact.class_log_posterior(x, t, c).sum(), x)
    x = x.detach()
    classifier_guided = exact(x, t) - (1 + w) * math.sqrt(1 - float(SCH.alpha_bars[t])) * grad
    torch.testing.assert_close(classifier_guided, guided(exact, torch.full((10,), c), w)(x, torch.full((10,), t)))
