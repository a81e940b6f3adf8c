"""Fréchet distance and Inception Score: closed forms for Gaussians, an independent matrix square root,
hand-computed IS, a shifted distribution caught, and the small-n bias, with an injected feature extractor."""

import math

import pytest
import torch

from minidiff.metrics import (
    extract_features,
    frechet_distance,
    frechet_floor,
    frechet_from_stats,
    gaussian_stats,
    inception_score,
)

D_PIX, D_FEAT = 16, 4


def extractor() -> torch.nn.Module:
    """A small injected feature extractor: a fixed linear map from (B, 1, 4, 4) images to 4 features.

    Linear, so Gaussian images give Gaussian features with a known mean W μ and covariance W Σ Wᵀ.
    """
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(D_PIX, D_FEAT, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.randn(D_FEAT, D_PIX, generator=torch.Generator().manual_seed(7)) / 4)
    return net.double().eval()


def images(n: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    """n Gaussian 'images' (n, 1, 4, 4): pixels i.i.d. N(shift, scale²)."""
    g = torch.Generator().manual_seed(seed)
    return shift + scale * torch.randn(n, 1, 4, 4, generator=g, dtype=torch.float64)


def test_frechet_from_stats_equals_closed_form_for_diagonal_gaussians():
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([0.5, 1.0, 0.0])
    sd1, sd2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 2.0, 1.5])
    expected = float(((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum())  # 4.25 + 4 + 0 + 1
    assert frechet_from_stats(mu1, torch.diag(sd1**2), mu2, torch.diag(sd2**2)) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(9.25)


def test_frechet_from_stats_matches_scipy_sqrtm_for_non_commuting_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 6, generator=g, dtype=torch.float64), torch.randn(6, 6, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(6, dtype=torch.float64), b @ b.T
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    cross = linalg.sqrtm((s1 @ s2).numpy()).real.trace()
    expected = float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace()) - 2 * cross
    assert frechet_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_from_stats(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_of_injected_features_approaches_the_two_gaussians_closed_form():
    n, shift, scale = 20_000, 0.3, 1.5
    net = extractor()
    f1 = extract_features(net, images(n, 1), batch_size=1000)
    f2 = extract_features(net, images(n, 2, shift, scale), batch_size=1000)
    w = net[1].weight.detach()
    mu1, s1 = torch.zeros(D_FEAT, dtype=torch.float64), w @ w.T
    mu2, s2 = w @ torch.full((D_PIX,), shift, dtype=torch.float64), scale**2 * (w @ w.T)
    exact = frechet_from_stats(mu1, s1, mu2, s2)  # = ‖W·shift·1‖² + (1 − scale)² tr(W Wᵀ)
    assert exact == pytest.approx(float((mu2**2).sum() + (1 - scale) ** 2 * s1.trace()), rel=1e-9)
    # Standard error of the estimate: the mean term ‖m1 − m2‖² varies with sd 2 sqrt(Δμᵀ(Σ1+Σ2)Δμ / n);
    # each covariance entry with sd about λ_max sqrt(2/n), summed over D features. Bias: 2 tr Σ / n and less.
    dmu = mu2 - mu1
    lam = float(torch.linalg.eigvalsh(s2).max())
    se = 2 * math.sqrt(float(dmu @ (s1 + s2) @ dmu) / n) + D_FEAT * lam * math.sqrt(2 / n)
    bias = 2 * float(s1.trace() + s2.trace()) / n
    assert abs(frechet_distance(f1, f2) - exact) < 4 * se + bias


def test_frechet_catches_a_shifted_distribution_beyond_its_real_vs_real_floor():
    n, net = 500, extractor()
    real = extract_features(net, images(4 * n, 3))
    floors = frechet_floor(real, n, n_pairs=5, seed=0)
    same = frechet_distance(extract_features(net, images(n, 4)), real[:n])
    shifted = frechet_distance(extract_features(net, images(n, 5, shift=0.25)), real[:n])
    mean, sd = sum(floors) / len(floors), float(torch.tensor(floors).std())
    assert same < mean + 4 * sd  # a fresh real draw sits within the floor's spread
    assert shifted > mean + 10 * sd  # a shift of a quarter pixel sd is far outside it


def test_small_n_bias_real_vs_real_frechet_shrinks_with_n():
    """FID at different n is not comparable: the real-vs-real value falls roughly like 1/n."""
    net = extractor()
    real = extract_features(net, images(2000, 6))
    means = {n: sum(frechet_floor(real, n, n_pairs=8, seed=1)) / 8 for n in (100, 500, 1000)}
    assert means[100] > means[500] > means[1000] > 0
    # The mean term alone has expectation 2 tr Σ / n: the value at n = 100 is at least about that.
    tr = float(gaussian_stats(real).sigma.trace())
    assert means[100] > 0.5 * 2 * tr / 100
    assert means[100] / means[1000] > 4  # 1/n scaling would give 10


def test_extract_features_in_batches_equals_one_call():
    net, x = extractor(), images(37, 8)
    assert torch.allclose(extract_features(net, x, batch_size=5), net(x).double())


def test_inception_score_hand_computed_cases():
    assert inception_score(torch.eye(2), splits=1) == pytest.approx((2.0, 0.0))  # one-hot, balanced: IS = K
    assert inception_score(torch.full((6, 3), 1 / 3), splits=2) == pytest.approx((1.0, 0.0))  # all rows equal
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # each row against the marginal (0.5, 0.5)
    assert inception_score(p, splits=1)[0] == pytest.approx(math.exp(kl), rel=1e-12)
    # Two splits, in order: {e0, e1} scores 2 and {e0, e0} scores 1: mean 1.5, population sd 0.5.
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert inception_score(q, splits=2) == pytest.approx((1.5, 0.5))


@pytest.mark.parametrize("call, match", [
    (lambda: frechet_distance(torch.randn(10, 3), torch.randn(10, 4)), "same dimension"),
    (lambda: frechet_distance(torch.randn(10), torch.randn(10, 4)), r"features1 must have shape \(N, D\)"),
    (lambda: frechet_floor(torch.randn(10, 2), 6), "2n <= 10"),
    (lambda: inception_score(torch.tensor([[0.5, 0.6], [0.5, 0.5]])), "probabilities"),
    (lambda: inception_score(torch.eye(3), splits=4), "splits must be"),
    (lambda: frechet_from_stats(torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2)), "sigma1"),
])
def test_bad_input_names_the_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()
