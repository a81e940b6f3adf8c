"""2D metrics: zero on identical samples, within the noise floor on equal distributions, closed forms
for known shifts, symmetry, and errors that name the bad input."""

import math

import numpy as np
import pytest
import torch

from minidiff.metrics import (
    METRICS,
    FloorReport,
    energy_distance,
    get_metric,
    mmd_rbf,
    noise_floor,
    real_pair_values,
    sliced_wasserstein,
    versus_floor,
)


def gaussian(n: int, seed: int, shift: float = 0.0, dim: int = 2) -> torch.Tensor:
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[:, 0] += shift
    return x


def make_gaussian(n: int, seed: int) -> torch.Tensor:
    return gaussian(n, seed)


@pytest.mark.parametrize("name", list(METRICS))
def test_metric_is_exactly_zero_for_identical_samples(name):
    x = gaussian(300, 0)
    assert METRICS[name](x, x.clone()) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", list(METRICS))
def test_metric_on_same_distribution_stays_within_its_noise_floor(name):
    n = 500
    values = [METRICS[name](gaussian(n, 2 * s), gaussian(n, 2 * s + 1)) for s in range(8)]
    floor, spread = float(np.mean(values)), float(np.std(values, ddof=1))
    fresh = METRICS[name](gaussian(n, 100), gaussian(n, 101))
    assert 0.0 <= fresh <= floor + 4 * spread


@pytest.mark.parametrize("name", list(METRICS))
def test_metric_grows_monotonically_with_a_known_shift(name):
    x = gaussian(600, 0)
    values = [METRICS[name](x, gaussian(600, 1, shift=d)) for d in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("name", list(METRICS))
def test_metric_is_symmetric(name):
    x, y = gaussian(400, 0), gaussian(300, 1, shift=0.5)
    assert METRICS[name](x, y) == pytest.approx(METRICS[name](y, x), rel=1e-9, abs=1e-12)


def test_sliced_wasserstein_of_a_shift_matches_closed_form():
    # Shifting N(0, I) by δ e₁ moves every projection θᵀX by δθ₁, so SW₂² = δ² E[θ₁²] = δ²/2 in 2D
    # Shifting the same draw leaves no sampling noise: only the projections' randomness remains.
    delta, n = 1.0, 500
    x = gaussian(n, 0)
    y = x + torch.tensor([delta, 0.0], dtype=torch.float64)  # the same draw shifted: no sampling noise
    sw = sliced_wasserstein(x, y, n_projections=2000)
    se = delta**2 * math.sqrt(2 / 2000) / 2  # std of the mean of θ₁² (var(θ₁²) = 1/8 = (1/2)²/2)
    assert sw**2 == pytest.approx(delta**2 / 2, abs=4 * se)


def mean_and_standard_error(values: list) -> tuple:
    return float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(len(values)))


def test_energy_distance_of_a_1d_shift_matches_closed_form():
    # X ~ N(0, 1), Y ~ N(δ, 1): E|X−Y| = E|Z| with Z ~ N(δ, 2); E|X−X'| = 2/√π.
    delta, n = 1.0, 1000
    s = math.sqrt(2.0)
    e_xy = s * math.sqrt(2 / math.pi) * math.exp(-(delta**2) / (2 * s**2))
    e_xy += delta * math.erf(delta / (s * math.sqrt(2)))
    e_xx = 2 / math.sqrt(math.pi)
    # The V-statistic's within-sample means include the n zero diagonal terms: E = ED + 2 E|X−X'| / n.
    expected = 2 * e_xy - 2 * e_xx + 2 * e_xx / n
    values = [energy_distance(gaussian(n, 2 * i, dim=1), gaussian(n, 2 * i + 1, shift=delta, dim=1)) for i in range(8)]
    mean, se = mean_and_standard_error(values)
    assert mean == pytest.approx(expected, abs=4 * se)


def test_mmd_rbf_of_a_shift_matches_closed_form():
    # With k = exp(−‖a−b‖²/2h²) and X ~ N(0, I_D): E k(X, X') = c = (h²/(h²+2))^{D/2},
    # E k(X, Y) = c exp(−δ²/2(h²+2)), so MMD² = 2c(1 − exp(−δ²/2(h²+2))).
    delta, h, n, D = 1.0, 1.0, 1000, 2
    c = (h**2 / (h**2 + 2)) ** (D / 2)
    # The V-statistic's diagonal terms k(x, x) = 1 add 2(1 − c)/n in expectation.
    expected = 2 * c * (1 - math.exp(-(delta**2) / (2 * (h**2 + 2)))) + 2 * (1 - c) / n
    values = [mmd_rbf(gaussian(n, 2 * i), gaussian(n, 2 * i + 1, shift=delta), bandwidth=h) for i in range(6)]
    mean, se = mean_and_standard_error(values)
    assert mean == pytest.approx(expected, abs=4 * se)


def test_sliced_wasserstein_handles_unequal_sample_sizes():
    x, y = gaussian(1000, 0), gaussian(1000, 1, shift=1.0)
    assert sliced_wasserstein(x, y[:700]) == pytest.approx(sliced_wasserstein(x, y), rel=0.1)


def test_metrics_accept_numpy_and_float32():
    x, y = gaussian(200, 0), gaussian(200, 1)
    assert energy_distance(x.numpy(), y.float()) == pytest.approx(energy_distance(x, y), rel=1e-5)


def test_noise_floor_shrinks_with_sample_size():
    small = noise_floor(make_gaussian, "sliced_wasserstein", n=200)
    large = noise_floor(make_gaussian, "sliced_wasserstein", n=3200)
    # SW between two samples scales like 1/√n: 16x the points, about 1/4 of the floor.
    assert large < small / 2


def test_noise_floor_is_the_mean_metric_over_the_seed_pairs():
    pairs = ((1, 2), (3, 4))
    expected = np.mean([energy_distance(make_gaussian(100, a), make_gaussian(100, b)) for a, b in pairs])
    assert noise_floor(make_gaussian, energy_distance, n=100, seeds=pairs) == pytest.approx(expected)


def test_real_pair_values_has_one_value_per_default_pair_and_the_floor_is_their_mean():
    values = real_pair_values(make_gaussian, "sliced_wasserstein", n=100, n_pairs=4)
    assert len(values) == 4 and len(set(values)) == 4
    assert noise_floor(make_gaussian, "sliced_wasserstein", n=100, n_pairs=4) == pytest.approx(np.mean(values))


def test_versus_floor_averages_over_a_list_of_references():
    samples, refs = gaussian(300, 0), [gaussian(300, 1), gaussian(300, 2)]
    report = versus_floor(samples, refs, "energy_distance", floor=1.0)
    assert report.value == pytest.approx(np.mean([energy_distance(samples, r) for r in refs]))


def test_versus_floor_reports_the_ratio_to_the_floor():
    samples, ref = gaussian(500, 0, shift=1.0), gaussian(500, 1)
    report = versus_floor(samples, ref, "sliced_wasserstein", make_data=make_gaussian)
    assert isinstance(report, FloorReport)
    assert report.value == pytest.approx(sliced_wasserstein(samples, ref))
    assert report.ratio == pytest.approx(report.value / report.floor)
    assert report.ratio > 3  # a shift of 1 is far above the floor at n = 500 (~0.05)
    assert "ratio" in str(report) and "sliced_wasserstein" in str(report)


@pytest.mark.parametrize("name", list(METRICS))
def test_metric_rejects_bad_shapes(name):
    fn = METRICS[name]
    with pytest.raises(ValueError, match=r"x must have shape \(N, D\)"):
        fn(torch.zeros(10), torch.zeros(10, 2))
    with pytest.raises(ValueError, match="same dimension"):
        fn(torch.zeros(10, 2), torch.zeros(10, 3))
    with pytest.raises(ValueError, match="at least 2 points"):
        fn(torch.zeros(1, 2), torch.zeros(10, 2))


def test_metrics_reject_bad_types_and_values():
    x = gaussian(10, 0)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        energy_distance([[0.0, 1.0], [1.0, 0.0]], x)
    with pytest.raises(TypeError, match="dtype torch.bool"):
        energy_distance(x, torch.ones(10, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        energy_distance(x, torch.full((10, 2), float("nan")))
    with pytest.raises(ValueError, match="n_projections must be a positive int, got n_projections = 0"):
        sliced_wasserstein(x, x, n_projections=0)
    with pytest.raises(ValueError, match="bandwidth must be a positive number, got bandwidth = -1.0"):
        mmd_rbf(x, x, bandwidth=-1.0)
    with pytest.raises(ValueError, match="unknown metric 'fid'"):
        get_metric("fid")
    with pytest.raises(ValueError, match="n must be an int >= 2, got n = 1"):
        noise_floor(make_gaussian, n=1)
    with pytest.raises(ValueError, match="pairs of different seeds"):
        noise_floor(make_gaussian, n=10, seeds=((1, 1),))
    with pytest.raises(ValueError, match="n_pairs must be a positive int, got n_pairs = 0"):
        noise_floor(make_gaussian, n=10, n_pairs=0)
    with pytest.raises(ValueError, match="needs floor or make_data"):
        versus_floor(x, x)
