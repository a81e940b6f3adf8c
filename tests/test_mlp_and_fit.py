"""MLPDenoiser, the sinusoidal embedding, and the minimal training loop (Algorithm 1)."""

from __future__ import annotations

import torch

import minidiff as md


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
