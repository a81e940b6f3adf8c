"""Bad input gets a clear error that names the argument and the bad value, never a silent wrong answer."""

from __future__ import annotations

import re

import pytest
import torch

import minidiff as md
import minidiff.parameterization as P
from minidiff.langevin import annealed_langevin, langevin_step_sizes, score_from_eps
from minidiff.reverse import fixed_log_variance, learned_range_log_variance

B, D = 4, 2


def _f() -> torch.Tensor:
    """A valid floating-point argument of shape (B, D), for the arguments a case does not test."""
    return torch.zeros(B, D)


def _exact(s: md.Schedule) -> md.ExactEps:
    return md.ExactEps(md.toy_mixture(), s)


# Every public function that takes timesteps t and data x: call(schedule, x, t) puts ``x`` in the
# argument named in the second field (every other tensor argument is valid).
T_AND_X_CALLS = {
    "q_sample": (lambda s, x, t: md.q_sample(x, t, s), "x0"),
    "q_step_sample": (lambda s, x, t: md.q_step_sample(x, t, s), "x_prev"),
    "q_mean_variance": (lambda s, x, t: md.q_mean_variance(x, t, s), "x0"),
    "q_posterior_mean_variance": (lambda s, x, t: md.q_posterior_mean_variance(x, _f(), t, s), "x0"),
    "extract": (lambda s, x, t: md.schedules.extract(s.betas, t, x), "x"),
    "x0_from_eps": (lambda s, x, t: P.x0_from_eps(x, _f(), t, s), "xt"),
    "eps_from_x0": (lambda s, x, t: P.eps_from_x0(x, _f(), t, s), "xt"),
    "v_from_x0_eps": (lambda s, x, t: P.v_from_x0_eps(x, _f(), t, s), "x0"),
    "x0_from_v": (lambda s, x, t: P.x0_from_v(x, _f(), t, s), "xt"),
    "eps_from_v": (lambda s, x, t: P.eps_from_v(x, _f(), t, s), "xt"),
    "mu_from_x0": (lambda s, x, t: P.mu_from_x0(x, _f(), t, s), "xt"),
    "x0_from_mu": (lambda s, x, t: P.x0_from_mu(x, _f(), t, s), "xt"),
    "to_x0": (lambda s, x, t: md.to_x0(_f(), x, t, s, "v"), "xt"),
    "to_eps": (lambda s, x, t: md.to_eps(_f(), x, t, s, "x0"), "xt"),
    "from_x0_eps": (lambda s, x, t: md.from_x0_eps(_f(), _f(), x, t, s, "mu"), "xt"),
    "p_mean_variance": (lambda s, x, t: md.p_mean_variance(_f(), x, t, s), "xt"),
    "fixed_log_variance": (lambda s, x, t: fixed_log_variance(x, t, s, "fixed_large"), "x"),
    "learned_range_log_variance": (lambda s, x, t: learned_range_log_variance(x, t, s), "v"),
    "vlb_term": (lambda s, x, t: md.vlb_term(_f(), x, _f(), t, s), "x0"),
    "training_losses": (lambda s, x, t: md.training_losses(lambda a, b: a, x, s, t=t), "x0"),
    "GaussianMixture.log_prob": (lambda s, x, t: md.toy_mixture().log_prob(x, t, s), "x"),
    "GaussianMixture.score": (lambda s, x, t: md.toy_mixture().score(x, t, s), "x"),
    "GaussianMixture.eps": (lambda s, x, t: md.toy_mixture().eps(x, t, s), "xt"),
    "GaussianMixture.x0_mean": (lambda s, x, t: md.toy_mixture().x0_mean(x, t, s), "xt"),
    "ExactEps": (lambda s, x, t: _exact(s)(x, t), "xt"),
    "score_from_eps": (lambda s, x, t: score_from_eps(_exact(s), s)(x, t), "xt"),
}

# t = 0 (the data x_0) is valid where the formula allows it; everywhere else t runs over 1..T.
T_ZERO_ALLOWED = {"q_sample", "q_mean_variance", "extract"}

BAD_T_AND_X = {  # case: (x, t, error type, the message's pattern with {x}: the argument's name, {lo}: 0 or 1)
    "t=-1": (torch.zeros(B, D), torch.tensor([1, 2, -1, 3]), ValueError,
             r"t must lie in [{lo}, T] = [{lo}, 1000] (the paper's t), got t = -1"),
    "t=T+1": (torch.zeros(B, D), torch.tensor([1, 1001, 2, 3]), ValueError,
              r"t must lie in [{lo}, T] = [{lo}, 1000] (the paper's t), got t = 1001"),
    "int t=T+1": (torch.zeros(B, D), 1001, ValueError,
                  r"t must lie in [{lo}, T] = [{lo}, 1000] (the paper's t), got t = 1001"),
    "batch mismatch": (torch.zeros(B, D), torch.tensor([1, 2, 3]), ValueError,
                       r"t has batch size 3 but {x} has batch size 4"),
    "integer x": (torch.zeros(B, D, dtype=torch.long), torch.tensor([1, 2, 3, 4]), TypeError,
                  r"{x} must be a floating-point tensor, got dtype torch.int64"),
    "float t": (torch.zeros(B, D), torch.tensor([1.0, 2.0, 3.0, 4.0]), TypeError,
                r"t must hold integer timesteps, got dtype torch.float32"),
    "2-D t": (torch.zeros(B, D), torch.zeros(B, 1, dtype=torch.long), ValueError,
              r"t must have shape () or (B,), got shape (4, 1)"),
}


@pytest.mark.parametrize("case", list(BAD_T_AND_X))
@pytest.mark.parametrize("fn", list(T_AND_X_CALLS))
def test_every_function_of_t_and_x_names_the_bad_argument_and_value(linear, fn, case):
    call, x_name = T_AND_X_CALLS[fn]
    x, t, error, message = BAD_T_AND_X[case]
    with pytest.raises(error, match=re.escape(message.format(x=x_name, lo=int(fn not in T_ZERO_ALLOWED)))):
        call(linear, x, t)


@pytest.mark.parametrize("fn", sorted(set(T_AND_X_CALLS) - T_ZERO_ALLOWED))
def test_t_zero_is_rejected_where_the_formula_needs_t_at_least_one(linear, fn):
    """t = 0 is the data: a model, a posterior or a conversion at t = 0 is a mistake, named as such."""
    with pytest.raises(ValueError, match=re.escape("t must lie in [1, T] = [1, 1000] (the paper's t), got t = 0")):
        T_AND_X_CALLS[fn][0](linear, torch.zeros(B, D), torch.tensor([1, 0, 2, 3]))


def test_the_same_calls_work_on_valid_input(linear):
    """The table above is not vacuous: with valid x and t every call runs."""
    for fn, (call, _) in T_AND_X_CALLS.items():
        call(linear, torch.randn(B, D), torch.tensor([1, 2, 500, 1000]))
        call(linear, torch.randn(B, D), 1000)  # one timestep for the whole batch
        if fn in T_ZERO_ALLOWED:
            call(linear, torch.randn(B, D), 0)


@pytest.mark.parametrize("call,name", [
    (lambda s: md.p_mean_variance(_f().long(), _f(), 3, s), "output"),
    (lambda s: md.to_x0(_f().long(), _f(), 3, s), "output"),
    (lambda s: md.to_eps(_f().int(), _f(), 3, s), "output"),
    (lambda s: md.vlb_term(_f().long(), _f(), _f(), 3, s), "output"),
    (lambda s: md.training_losses(lambda a, b: a.long(), _f(), s), "model output"),
    (lambda s: md.negative_elbo(lambda a, b: a.long(), _f(), md.get_schedule("linear", 5)), "model output"),
    (lambda s: md.sample(lambda a, b: a.long(), (B, D), s, steps=3), "model output"),
    (lambda s: md.ddim_encode(lambda a, b: a.long(), _f(), s, steps=3), "model output"),
    (lambda s: score_from_eps(lambda a, b: a.long(), s)(_f(), 3), "model output"),
    (lambda s: annealed_langevin(lambda a, b: a.long(), (B, D), s, levels=2), "score_fn(x, t)"),
])
def test_integer_network_outputs_are_rejected(linear, call, name):
    with pytest.raises(TypeError, match=re.escape(f"{name} must be a floating-point tensor, got dtype torch.int")):
        call(linear)


@pytest.mark.parametrize("call,name", [
    (lambda s: md.training_losses(lambda a, b: a, _f(), s, noise=_f().long()), "noise"),
    (lambda s: md.q_sample(_f(), 3, s, noise=_f().long()), "noise"),
    (lambda s: md.sample(_exact(s), (B, D), s, steps=3, x_T=_f().long()), "x_T"),
    (lambda s: annealed_langevin(md.toy_mixture().score, (B, D), s, levels=2, x_T=_f().long()), "x_T"),
    (lambda s: md.negative_elbo(_exact(s), _f().long(), s), "x0"),
    (lambda s: md.prior_kl(_f().long(), s), "x0"),
    (lambda s: md.ddim_encode(_exact(s), _f().long(), s, steps=3), "x0"),
    (lambda s: md.losses.discretized_gaussian_log_likelihood(_f().long(), _f(), _f()), "x"),
    (lambda s: md.losses.continuous_gaussian_log_likelihood(_f(), _f().long(), _f()), "mean"),
    (lambda s: md.losses.normal_kl(_f(), _f(), _f(), _f().long()), "logvar2"),
])
def test_integer_noise_starts_and_data_are_rejected(linear, call, name):
    with pytest.raises(TypeError, match=re.escape(f"{name} must be a floating-point tensor, got dtype torch.int64")):
        call(linear)


def test_noise_of_the_wrong_shape(linear):
    with pytest.raises(ValueError, match=re.escape("noise must have the shape of x0, (4, 2), got (3, 2)")):
        md.training_losses(lambda a, b: a, _f(), linear, noise=torch.zeros(3, D))
    with pytest.raises(ValueError, match=re.escape("x_T must have shape (4, 2), got (3, 2)")):
        md.sample(_exact(linear), (B, D), linear, x_T=torch.zeros(3, D))


def test_network_output_of_the_wrong_shape(linear):
    with pytest.raises(ValueError, match=re.escape("model output has shape (4, 3), expected the shape of x0, (4, 2)")):
        md.training_losses(lambda a, b: torch.zeros(B, 3), _f(), linear)
    with pytest.raises(ValueError, match=re.escape("output has shape (4, 3), expected the shape of xt, (4, 2)")):
        md.p_mean_variance(torch.zeros(B, 3), _f(), 3, linear)


@pytest.mark.parametrize("kw,match", [
    (dict(beta_start=1.5), "beta_start must be in (0, 1), got 1.5"),
    (dict(beta_end=0.0), "beta_end must be in (0, 1), got 0.0"),
    (dict(beta_start=0.1, beta_end=0.01), "beta_start must be <= beta_end"),
    (dict(beta_end=float("nan")), "beta_end must be a finite number, got beta_end = nan"),
])
def test_beta_outside_unit_interval(kw, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        md.get_schedule("linear", 100, **kw)


def test_custom_betas_outside_unit_interval():
    with pytest.raises(ValueError, match=r"beta_3 = 1.0"):
        md.Schedule.from_betas([0.1, 0.2, 1.0])


@pytest.mark.parametrize("name", md.schedules.SCHEDULES)
@pytest.mark.parametrize("T", [0, -3])
def test_T_below_one(name, T):
    with pytest.raises(ValueError, match=f"T must be >= 1, got T = {T}"):
        md.get_schedule(name, T)


def test_T_not_an_int():
    with pytest.raises(TypeError, match="T must be an int, got float 10.5"):
        md.get_schedule("linear", 10.5)


@pytest.mark.parametrize("s", [-1.0, -0.5, float("inf")])
def test_cosine_offset_s_must_be_non_negative(s):
    """s = −1 used to divide by zero, and −1 < s < 0 gave a negative β far from the cause."""
    with pytest.raises(ValueError, match=re.escape("s must be ") + ".*" + re.escape(f"got s = {s}")):
        md.get_schedule("cosine", 100, s=s)


def test_cosine_max_beta_outside_unit_interval():
    with pytest.raises(ValueError, match=re.escape("max_beta must be in (0, 1), got 1.0")):
        md.get_schedule("cosine", 100, max_beta=1.0)


def test_schedule_arguments_of_another_schedule_are_rejected():
    with pytest.raises(TypeError, match=re.escape("schedule 'linear' has no argument 's' (got s=0.1)")):
        md.get_schedule("linear", 100, s=0.1)


@pytest.mark.parametrize("call,name", [
    (lambda s, x: md.get_schedule("cosnie"), "schedule 'cosnie'"),
    (lambda s, x: md.to_x0(x, x, torch.zeros(4, dtype=torch.long), s, "epsilon"), "parameterization 'epsilon'"),
    (lambda s, x: md.p_mean_variance(x, x, torch.zeros(4, dtype=torch.long), s, variance="big"), "variance 'big'"),
    (lambda s, x: md.sample(md.gaussian_eps_model([0.0], [1.0], s), (4, 1), s, sampler="euler"), "sampler 'euler'"),
    (lambda s, x: md.sample(md.gaussian_eps_model([0.0], [1.0], s), (4, 1), s, parameterization="score"),
     "parameterization 'score'"),
    (lambda s, x: md.respace_timesteps(1000, 10, "log"), "spacing 'log'"),
    (lambda s, x: md.training_losses(lambda a, b: a, x, s, loss="l1"), "loss 'l1'"),
    (lambda s, x: md.training_losses(lambda a, b: a, x, s, decoder="poisson"), "decoder 'poisson'"),
    (lambda s, x: md.make_toy("zigzag"), "toy 'zigzag'"),
])
def test_unknown_names_list_the_valid_ones(linear, call, name):
    with pytest.raises(ValueError, match=f"unknown {name}; valid names are: '") as info:
        call(linear, torch.zeros(4, 1))
    assert "," in str(info.value)


@pytest.mark.parametrize("t,bad", [(1001, 1001), (-1, -1), (torch.tensor([0, 5, 1200, 3]), 1200)])
def test_t_outside_range(linear, t, bad):
    with pytest.raises(ValueError, match=rf"t must lie in \[0, T\] = \[0, 1000\] \(the paper's t\), got t = {bad}"):
        md.q_sample(torch.zeros(4, 2), t, linear)


def test_negative_t_is_not_read_from_the_end_of_the_schedule(linear):
    """Python indexing would take t = −1 as the last entry, t = T: a silent wrong answer."""
    out = torch.zeros(B, D)
    with pytest.raises(ValueError, match="got t = -1"):
        md.p_mean_variance(out, _f(), torch.full((B,), -1), linear)
    with pytest.raises(ValueError, match="got t = -1"):
        md.schedules.extract(linear.betas, torch.full((B,), -1), _f())


def test_respaced_timesteps_must_be_integers_in_range(linear):
    with pytest.raises(TypeError, match="timesteps must hold integer timesteps, got dtype torch.float32"):
        linear.respaced(torch.tensor([1.0, 10.5]))
    with pytest.raises(ValueError, match=re.escape("timesteps must lie in [1, T] = [1, 1000] (the paper's t), "
                                                   "got timesteps = 1001")):
        linear.respaced([1, 1001])
    with pytest.raises(ValueError, match=re.escape("timesteps must lie in [1, T] = [1, 1000] (the paper's t), "
                                                   "got timesteps = 0")):
        linear.respaced([0, 1000])
    with pytest.raises(ValueError, match="timesteps must be strictly increasing, got \\[5, 5\\]"):
        linear.respaced([5, 5])
    with pytest.raises(ValueError, match=re.escape("timesteps must lie in [1, T] = [1, 1000] (the paper's t), "
                                                   "got timesteps = -2")):
        langevin_step_sizes(torch.tensor([-2, 3]), linear, 1e-4)


def test_bad_sampler_settings(linear):
    model = md.gaussian_eps_model([0.0], [1.0], linear)
    for steps in (0, 1001):
        with pytest.raises(ValueError, match=re.escape(f"steps must be an int in [1, T] = [1, 1000], "
                                                       f"got steps = {steps}")):
            md.sample(model, (2, 1), linear, steps=steps)
    with pytest.raises(ValueError, match="eta must be >= 0.0, got eta = -1"):
        md.sample(model, (2, 1), linear, sampler="ddim", eta=-1)
    with pytest.raises(ValueError, match=re.escape("eta is used by sampler='ddim' only, got eta = 0.5 with "
                                                   "sampler='ddpm'")):
        md.sample(model, (2, 1), linear, sampler="ddpm", eta=0.5)
    for c in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=re.escape("clip_x0 must be ") + ".*" + re.escape(f"got clip_x0 = {c}")):
            md.sample(model, (2, 1), linear, clip_x0=c)
    with pytest.raises(ValueError, match=re.escape("shape must be a tuple of positive ints (B, ...), got shape = (0,")):
        md.sample(model, (0, 1), linear)
    with pytest.raises(ValueError, match=re.escape("K must be an int in [1, T] = [1, 10], got K = 11")):
        md.respace_timesteps(10, 11)


def test_bad_loss_settings(linear):
    with pytest.raises(ValueError, match="lambda_vlb must be >= 0.0, got lambda_vlb = -0.1"):
        md.training_losses(lambda a, b: a, _f(), linear, loss="hybrid", lambda_vlb=-0.1)
    with pytest.raises(ValueError, match="bins must be >= 2, got bins = 1"):
        md.losses.discretized_gaussian_log_likelihood(_f(), _f(), _f(), bins=1)


def test_learned_range_needs_doubled_output(linear):
    with pytest.raises(ValueError, match="doubled output channels \\(dim 1\\), got output with 3 channels"):
        md.p_mean_variance(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), linear,
                           variance="learned_range")
    with pytest.raises(ValueError, match="L_simple cannot train it"):
        net = md.MLPDenoiser(hidden=8, n_blocks=1, learn_variance=True)
        md.training_losses(net, torch.zeros(4, 2), linear, variance="learned_range")


@pytest.mark.parametrize("stds,match", [
    (torch.tensor([1.0, -0.5]), "stds must be finite and >= 0, got stds[1, 0] = -0.5"),
    (-2.0, "stds must be finite and >= 0, got stds[0, 0] = -2.0"),
    (torch.tensor([1.0, float("nan")]), "stds must be finite and >= 0, got stds[1, 0] = nan"),
    (torch.ones(3), "stds must be a scalar, (K,) or (K, D) with (K, D) = (2, 1), got shape (3,)"),
])
def test_gaussian_mixture_names_the_bad_std(stds, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        md.GaussianMixture(torch.tensor([[0.0], [4.0]]), stds)


def test_gaussian_mixture_rejects_bad_queries(linear):
    mix = md.toy_mixture()  # D = 2
    with pytest.raises(ValueError, match=re.escape("x must have shape (B, 2) (D = 2 values per example), got (4, 3)")):
        mix.log_prob(torch.zeros(4, 3), 3, linear)
    with pytest.raises(ValueError, match="t must be given"):
        mix.eps(_f(), None, linear)
    with pytest.raises(TypeError, match="schedule must be a minidiff Schedule when t is given, got NoneType"):
        mix.score(_f(), 3)
    points = md.GaussianMixture(torch.zeros(2, 2), 0.0)
    with pytest.raises(ValueError, match=re.escape("needs stds > 0 (t = None), got stds[0, 0] = 0.0")):
        points.log_prob(_f())
    with pytest.raises(ValueError, match="n must be >= 1, got n = 0"):
        mix.sample(0)


def test_mlp_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expects x of shape \(B, 2\), got \(4, 3\)"):
        md.MLPDenoiser()(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))


def test_loops_never_read_t_on_the_host_of_an_accelerator(linear, monkeypatch):
    """Reading t on the host would sync a GPU at every step: on a non-CPU device each check is a device assert.

    Runs the samplers, the losses, the ELBO and DDIM inversion on PyTorch's ``meta`` device (tensors
    without data, so no value can be read at all): the only host read is the respaced schedule's
    timesteps, built once on the CPU.
    """
    calls = []
    aminmax = torch.aminmax
    monkeypatch.setattr(torch, "aminmax", lambda *a, **k: calls.append(1) or aminmax(*a, **k))
    net = md.MLPDenoiser(hidden=8, n_blocks=1).to("meta")
    x0 = torch.zeros(B, D, device="meta")
    for sampler in md.samplers.SAMPLERS:
        calls.clear()
        assert md.sample(net, (B, D), linear, sampler=sampler, steps=20, device="meta").is_meta
        assert len(calls) == 1, (sampler, len(calls))  # the respaced schedule's timesteps, once
    calls.clear()
    md.training_losses(net, x0, linear, loss="hybrid", variance="fixed_small")
    assert len(calls) == 0
    md.negative_elbo(net, x0, md.get_schedule("linear", 20))
    assert len(calls) == 1  # prior_kl's int t = T; none per ELBO term
    calls.clear()
    md.ddim_encode(net, x0, linear, steps=5)
    assert len(calls) == 1  # the respaced schedule's timesteps


def test_scalar_arguments_accept_numpy_and_zero_dim_tensors(linear):
    """Whole numbers may come as numpy ints or 0-dim tensors, as floats from np.linspace(...).round()."""
    import numpy as np

    model = md.gaussian_eps_model([0.0], [1.0], linear)
    a = md.sample(model, (B, 1), linear, sampler="ddim", eta=torch.tensor(0.5), steps=np.int64(10), seed=0)
    b = md.sample(model, (B, 1), linear, sampler="ddim", eta=0.5, steps=10, seed=0)
    assert torch.equal(a, b)
    assert torch.equal(linear.respaced(np.linspace(1, 1000, 5).round()).alpha_bars,
                       linear.respaced([1, 251, 500, 750, 1000]).alpha_bars)
    x = annealed_langevin(score_from_eps(model, linear), (B, 1), linear, levels=np.int64(5),
                          n_steps_each=np.int64(2), seed=0)
    assert x.shape == (B, 1)


def test_unsigned_timesteps_are_checked_like_any_integers(linear):
    x = torch.zeros(4, 2)
    assert torch.equal(md.q_sample(x, torch.full((4,), 7, dtype=torch.uint8), linear, torch.ones(4, 2)),
                       md.q_sample(x, 7, linear, torch.ones(4, 2)))
    if hasattr(torch, "uint16"):
        with pytest.raises(ValueError, match="got t = 1200"):
            md.q_sample(x, torch.full((4,), 1200, dtype=torch.uint16), linear)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_exact_model_on_gpu_never_reads_t_on_the_host(linear, monkeypatch):
    """ExactEps checks t at every sampler step; on a GPU that check must be a device-side assert."""
    calls = []
    aminmax = torch.aminmax
    monkeypatch.setattr(torch, "aminmax", lambda *a, **k: calls.append(1) or aminmax(*a, **k))
    model = md.gaussian_eps_model([0.0], [1.0], linear)
    md.sample(model, (B, 1), linear, steps=50, seed=0, device="cuda")
    assert len(calls) <= 1  # the respaced schedule's timesteps (CPU), once
