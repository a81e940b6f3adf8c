"""Bad input gets a clear error that names the bad value, never a silent wrong answer."""

from __future__ import annotations

import pytest
import torch

import minidiff as md


@pytest.mark.parametrize("kw,match", [
    (dict(beta_start=1.5), "beta_start must be in \\(0, 1\\), got 1.5"),
    (dict(beta_end=0.0), "beta_end must be in \\(0, 1\\), got 0.0"),
    (dict(beta_start=0.1, beta_end=0.01), "beta_start must be <= beta_end"),
])
def test_beta_outside_unit_interval(kw, match):
    with pytest.raises(ValueError, match=match):
        md.get_schedule("linear", 100, **kw)


def test_custom_betas_outside_unit_interval():
    with pytest.raises(ValueError, match=r"betas\[2\] = 1.0"):
        md.Schedule.from_betas([0.1, 0.2, 1.0])


@pytest.mark.parametrize("T", [0, -3])
def test_T_below_one(T):
    with pytest.raises(ValueError, match=f"T must be >= 1, got T = {T}"):
        md.get_schedule("linear", T)


@pytest.mark.parametrize("call,name", [
    (lambda s, x: md.get_schedule("cosnie"), "schedule 'cosnie'"),
    (lambda s, x: md.to_x0(x, x, torch.zeros(4, dtype=torch.long), s, "epsilon"), "parameterization 'epsilon'"),
    (lambda s, x: md.p_mean_variance(x, x, torch.zeros(4, dtype=torch.long), s, variance="big"), "variance 'big'"),
    (lambda s, x: md.sample(md.gaussian_eps_model([0.0], [1.0], s), (4, 1), s, sampler="euler"), "sampler 'euler'"),
    (lambda s, x: md.training_losses(lambda a, b: a, x, s, loss="l1"), "loss 'l1'"),
    (lambda s, x: md.make_toy("spiral"), "toy 'spiral'"),
])
def test_unknown_names_list_the_valid_ones(linear, call, name):
    with pytest.raises(ValueError, match=f"unknown {name}; valid names are: '") as info:
        call(linear, torch.zeros(4, 1))
    assert "," in str(info.value)


@pytest.mark.parametrize("t,bad", [(1000, 1000), (-1, -1), (torch.tensor([0, 5, 1200, 3]), 1200)])
def test_t_outside_range(linear, t, bad):
    with pytest.raises(ValueError, match=rf"t must lie in \[0, T\) = \[0, 1000\), got t = {bad}"):
        md.q_sample(torch.zeros(4, 2), t, linear)


def test_mismatched_batch_of_x_and_t(linear):
    with pytest.raises(ValueError, match="t has batch size 3 but x has batch size 4"):
        md.q_sample(torch.zeros(4, 2), torch.tensor([1, 2, 3]), linear)


def test_non_floating_inputs(linear):
    with pytest.raises(TypeError, match="x0 must be a floating-point tensor, got dtype torch.int64"):
        md.q_sample(torch.zeros(4, 2, dtype=torch.long), 3, linear)
    with pytest.raises(TypeError, match="t must hold integer timesteps, got dtype torch.float32"):
        md.q_sample(torch.zeros(4, 2), torch.zeros(4), linear)
    with pytest.raises(TypeError, match="x0 must be a floating-point tensor"):
        md.training_losses(lambda a, b: a, torch.zeros(4, 2, dtype=torch.uint8), linear)


def test_bad_sampler_settings(linear):
    model = md.gaussian_eps_model([0.0], [1.0], linear)
    with pytest.raises(ValueError, match="steps must be an int in \\[1, T\\] = \\[1, 1000\\], got steps = 0"):
        md.sample(model, (2, 1), linear, steps=0)
    with pytest.raises(ValueError, match="eta must be >= 0, got eta = -1"):
        md.sample(model, (2, 1), linear, sampler="ddim", eta=-1)
    with pytest.raises(ValueError, match="x_T must have shape"):
        md.sample(model, (2, 1), linear, x_T=torch.zeros(3, 1))


def test_learned_range_needs_doubled_output(linear):
    with pytest.raises(ValueError, match="doubled output channels, got 3 channels"):
        md.p_mean_variance(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), linear,
                           variance="learned_range")
    with pytest.raises(ValueError, match="L_simple cannot train it"):
        net = md.MLPDenoiser(hidden=8, n_blocks=1, learn_variance=True)
        md.training_losses(net, torch.zeros(4, 2), linear, variance="learned_range")


def test_mlp_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expects x of shape \(B, 2\), got \(4, 3\)"):
        md.MLPDenoiser()(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
