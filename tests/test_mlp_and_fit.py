"""MLPDenoiser, the sinusoidal embedding, and the minimal training loop (Algorithm 1)."""

from __future__ import annotations

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import minidiff as md
from minidiff.training.ema import ema_decay_at


def test_timestep_embedding_shape_and_values():
    """The paper's t = 1 embeds the 0-indexed timestep 0 (as the official DDPM code and diffusers do)."""
    t = torch.tensor([1, 2, 1000])
    e = md.nets.timestep_embedding(t, 16)
    assert e.shape == (3, 16)
    torch.testing.assert_close(e[0], torch.cat([torch.ones(8), torch.zeros(8)]))  # cos 0 = 1, sin 0 = 0
    torch.testing.assert_close(e[1, 0], torch.cos(torch.tensor(1.0)))  # t = 2 embeds 1
    assert md.nets.timestep_embedding(t, 7).shape == (3, 7)
    assert not torch.allclose(e[1], e[2])


def test_mlp_output_shapes():
    x, t = torch.randn(5, 2), torch.randint(1, 1001, (5,))
    assert md.MLPDenoiser()(x, t).shape == (5, 2)
    assert md.MLPDenoiser(learn_variance=True)(x, t).shape == (5, 4)
    assert md.MLPDenoiser(dim=3)(torch.randn(5, 3), t).shape == (5, 3)


def test_fourier_features_shape_and_values_for_a_known_input():
    """Each coordinate in turn: cosines then sines of scale·x·ω_k, ω_k = 10000^(−k/(n/2))."""
    x = torch.tensor([[0.0, 1.0], [0.5, -2.0]])
    f = md.nets.fourier_features(x, 4, scale=2.0)
    assert f.shape == (2, 8)
    torch.testing.assert_close(f[0, :4], torch.tensor([1.0, 1.0, 0.0, 0.0]))  # x = 0: cos 0, cos 0, sin 0, sin 0
    w = torch.tensor([1.0, 0.01])  # 10000^0, 10000^(-1/2)
    torch.testing.assert_close(f[0, 4:], torch.cat([torch.cos(2 * w), torch.sin(2 * w)]))
    torch.testing.assert_close(f[1], torch.cat([torch.cos(1.0 * w), torch.sin(1.0 * w), torch.cos(-4 * w),
                                                torch.sin(-4 * w)]))
    with pytest.raises(ValueError, match="got n = 3"):
        md.nets.fourier_features(x, 3)


def test_mlp_fourier_path_reads_the_features_and_starts_closed():
    """The features enter through their own layer times a gate g(t) that is 0 at initialization."""
    torch.manual_seed(0)
    net = md.MLPDenoiser(dim=2, hidden=16, n_blocks=1, fourier_features=8, fourier_scale=3.0)
    assert net.inp.in_features == 2 and net.fourier.in_features == 2 * 8
    x, t = torch.randn(5, 2), torch.randint(1, 1001, (5,))
    seen = []
    net.fourier.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    out = net(x, t)
    assert out.shape == (5, 2)
    torch.testing.assert_close(seen[0], md.nets.fourier_features(x, 8, 3.0))
    # closed gate: the same output as the network without features and the same other weights
    plain = md.MLPDenoiser(dim=2, hidden=16, n_blocks=1, fourier_features=0)
    missing, unexpected = plain.load_state_dict(net.state_dict(), strict=False)
    assert not missing and set(unexpected) == {"fourier.weight", "fourier.bias", "fourier_gate.weight",
                                               "fourier_gate.bias"}
    torch.testing.assert_close(plain(x, t), out)
    with torch.no_grad():
        net.fourier_gate.bias.fill_(1.0)
    assert not torch.allclose(net(x, t), out)  # an open gate lets the features through
    for kw, bad in (({"fourier_features": 5}, "got fourier_features = 5"), ({"fourier_features": -2}, "= -2"),
                    ({"fourier_scale": 0.0}, "got fourier_scale = 0.0")):
        with pytest.raises(ValueError, match=bad):
            md.MLPDenoiser(**kw)


def test_fit_with_ema_leaves_the_ema_of_the_weights_in_the_model(linear):
    """The model after fit(ema_decay=d) holds θ_ema, recomputed here from the weights after each step."""
    data = md.make_toy("moons", 500, seed=0)
    torch.manual_seed(0)
    net = md.MLPDenoiser(hidden=16, n_blocks=1)
    ema = [p.detach().clone() for p in net.parameters()]
    after_step = []
    hook = register_optimizer_step_post_hook(
        lambda opt, args, kwargs: after_step.append([p.detach().clone() for p in net.parameters()]))
    try:
        losses = md.fit(net, data, linear, steps=40, batch_size=64, lr=1e-2, ema_decay=0.6, progress=False)
    finally:
        hook.remove()
    assert len(after_step) == 40
    for n, weights in enumerate(after_step):
        d = ema_decay_at(n, 0.6)  # the warm-up (1 + n)/(10 + n) up to n = 12, then 0.6
        ema = [e + (1 - d) * (w - e) for e, w in zip(ema, weights)]
    for p, e in zip(net.parameters(), ema):
        torch.testing.assert_close(p.detach(), e)
    assert any(not torch.allclose(p, last) for p, last in zip(net.parameters(), after_step[-1]))
    # the EMA does not touch training: the same losses as without it
    torch.manual_seed(0)
    assert md.fit(md.MLPDenoiser(hidden=16, n_blocks=1), data, linear, steps=40, batch_size=64, lr=1e-2,
                  ema_decay=None, progress=False) == losses
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=f"got ema_decay = {bad}"):
            md.fit(net, data, linear, steps=1, ema_decay=bad, progress=False)


def test_fit_reduces_the_loss_and_is_reproducible(linear):
    data = md.make_toy("moons", 1000, seed=0)
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        net = md.MLPDenoiser(hidden=32, n_blocks=2)
        losses.append(md.fit(net, data, linear, steps=300, batch_size=128, lr=3e-3, progress=False, seed=0))
    assert losses[0] == losses[1]
    first, last = sum(losses[0][:30]) / 30, sum(losses[0][-30:]) / 30
    assert last < 0.8 * first, (first, last)


def test_toys_are_deterministic_and_unit_scale():
    for name in md.data.TOYS:
        a, b = md.make_toy(name, 4000, seed=1), md.make_toy(name, 4000, seed=1)
        assert torch.equal(a, b) and a.shape == (4000, 2)
        assert not torch.equal(a, md.make_toy(name, 4000, seed=2))
        rms = a.pow(2).mean().sqrt().item()
        assert 0.6 < rms < 1.6, (name, rms)
