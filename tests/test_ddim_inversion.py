"""DDIM inversion (data → noise → data) and spherical interpolation (chapter "Sampling faster")."""

from __future__ import annotations

import math

import pytest
import torch

import minidiff as md
from minidiff.ddim_inversion import ddim_encode, ddim_encode_loop, slerp


def _roundtrip_error(model, x0, schedule, K):
    z = ddim_encode(model, x0, schedule, steps=K)
    back = md.sample(model, tuple(x0.shape), schedule, sampler="ddim", steps=K, eta=0.0, x_T=z)
    return (back - x0).norm(dim=1)


def test_encode_then_decode_reconstructs_x0_with_first_order_error(linear, gen):
    """With the exact ε of the 8-Gaussian ring, the round trip error is small and halves when K doubles."""
    mix = md.toy_mixture()
    model = md.ExactEps(mix, linear)
    x0 = mix.sample(200, generator=gen).double()
    e50, e100 = _roundtrip_error(model, x0, linear, 50), _roundtrip_error(model, x0, linear, 100)
    assert e100.median() < 0.1 * 0.15  # a tenth of the modes' std
    assert e100.max() < 0.15
    assert 0.35 < float(e100.mean() / e50.mean()) < 0.65  # an Euler scheme: error ∝ 1/K


def test_encoded_codes_of_the_data_are_roughly_standard_normal(linear, gen):
    mix = md.toy_mixture()
    x0 = mix.sample(1000, generator=gen).double()
    z = ddim_encode(md.ExactEps(mix, linear), x0, linear, steps=20)
    se = 1 / math.sqrt(1000)
    assert bool((z.mean(0).abs() < 5 * se).all()), z.mean(0)
    assert bool(((z.std(0) - 1).abs() < 0.1).all()), z.std(0)  # up to the O(1/K) discretization error


def test_encode_loop_visits_the_respaced_levels_and_accepts_other_parameterizations(linear, gen):
    mix = md.toy_mixture()
    x0 = mix.sample(8, generator=gen).double()

    def x0_model(xt, t):
        return mix.x0_mean(xt, t, linear)

    states = list(ddim_encode_loop(x0_model, x0, linear, steps=4, parameterization="x0"))
    assert [s.t for s in states] == [0, 1, 334, 667, 1000]
    z_eps = ddim_encode(md.ExactEps(mix, linear), x0, linear, steps=4)
    torch.testing.assert_close(states[-1].x, z_eps, rtol=1e-6, atol=1e-6)


def test_slerp_endpoints_are_exact_and_norm_is_kept_between_equal_norm_vectors(gen):
    z0, z1 = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    z1 = z1 / z1.norm(dim=1, keepdim=True) * z0.norm(dim=1, keepdim=True)
    path = slerp(z0, z1, torch.linspace(0, 1, 7))
    assert path.shape == (7, 5, 3)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=-1), z0.norm(dim=1).expand(7, 5))


def test_slerp_midpoint_halves_the_angle_and_parallel_vectors_fall_back_to_lerp():
    mid = slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5)
    torch.testing.assert_close(mid, torch.tensor([1.0, 1.0]) / math.sqrt(2))
    z = torch.tensor([[1.0, 2.0]])
    torch.testing.assert_close(slerp(z, 3 * z, 0.5), 2 * z)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((torch.zeros(2, 2), torch.zeros(3, 2), 0.5), ValueError, "same shape"),
        ((torch.zeros(2, dtype=torch.long), torch.zeros(2), 0.5), TypeError, "z0 must be a floating-point"),
        ((torch.ones(2), torch.ones(2), torch.zeros(2, 2)), ValueError, "alpha must be a number or a 1-D"),
        ((torch.ones(2), torch.ones(2), float("nan")), ValueError, "alpha must be finite"),
    ],
)
def test_slerp_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        slerp(*args)


def test_ddim_encode_rejects_bad_arguments(linear):
    model = md.ExactEps(md.toy_mixture(), linear)
    with pytest.raises(TypeError, match="x0 must be a floating-point"):
        ddim_encode(model, torch.zeros(4, 2, dtype=torch.long), linear)
    with pytest.raises(ValueError, match="steps must be"):
        ddim_encode(model, torch.zeros(4, 2), linear, steps=0)
    with pytest.raises(ValueError, match="parameterization"):
        ddim_encode(model, torch.zeros(4, 2), linear, parameterization="score")
