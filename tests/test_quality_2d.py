"""The chapter-3 quality bar on a reduced budget: a small plain MLP (no Fourier features, no EMA) trained with
L_simple on the S-curve samples within 1.5x the sliced-Wasserstein noise floor (1000-step ancestral sampling)."""

import pytest
import torch

import minidiff as md


@pytest.fixture
def one_thread():
    """Small tensors: one thread is as fast, and far faster when other processes share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_mlp_trained_on_s_curve_samples_within_1_5x_the_noise_floor(one_thread):
    # Measured with these seeds: ratio 1.14 (800 steps; 1.22 with 1200); about 16 s on one core.
    torch.manual_seed(0)
    n = 2000
    sch = md.get_schedule("linear", T=1000)
    model = md.MLPDenoiser(hidden=64, n_blocks=2, fourier_features=0)
    data = md.make_toy("s_curve", 5000, seed=0)
    md.fit(model, data, sch, steps=800, batch_size=512, lr=3e-3, ema_decay=None, seed=0, progress=False)
    samples = md.sample(model, (n, 2), sch, seed=1)

    def real(size: int, seed: int) -> torch.Tensor:
        return md.make_toy("s_curve", size, seed=seed)

    floor = md.metrics.noise_floor(real, "sliced_wasserstein", n, n_pairs=10)
    report = md.metrics.versus_floor(samples, [real(n, 1000 + k) for k in range(4)], "sliced_wasserstein", floor=floor)
    assert report.ratio <= 1.5, str(report)
    # ...and the bar has teeth: the same budget without training is far above it.
    untrained = md.sample(md.MLPDenoiser(hidden=64, n_blocks=2, fourier_features=0), (n, 2), sch, steps=50, seed=1)
    assert md.metrics.versus_floor(untrained, real(n, 1000), floor=floor).ratio > 5


# The library defaults on held-out toys that no chapter uses (issue 11 §1; full protocol and table:
# bench/quality_2d.py). Reduced budget: the defaults' training exactly, then DDIM-50 only, one sampling
# seed, n = 2,000. The bars were fixed before any model was measured: energy distance and sliced
# Wasserstein <= 2x their floor with DDIM-50, and at most 2 percentage points more mass off the support
# than a real sample.
HELD_OUT_BAR, OFF_SUPPORT_BAR = 2.0, 0.02


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="issue 11 §1, measured (bench/quality_2d_measured.md): the library "
                   "defaults (the best recipe found, config fourier_ema) put ~6 points of mass off the checkerboard's "
                   "squares and ~4.6 off the rings at DDIM-50 (bar 2). The full bar is out of "
                   "any model's reach as stated: a perfect sampler (config real_draws) passes it about 3 % of the "
                   "time; an XPASS here is the first evidence that the defaults generalize")
@pytest.mark.parametrize("name", ["checkerboard", "rings"])  # sharp edges; thin rings (and two clusters)
def test_library_defaults_sample_held_out_toys_within_the_ddim_bar(name, one_thread):
    n = 2000
    torch.manual_seed(0)
    sch = md.get_schedule("linear", T=1000)
    model = md.MLPDenoiser(dim=2)
    md.fit(model, md.make_toy(name, 5000, seed=0), sch, progress=False)
    samples = md.sample(model, (n, 2), sch, sampler="ddim", steps=50, seed=0)

    def real(size: int, seed: int) -> torch.Tensor:
        return md.make_toy(name, size, seed=seed)

    refs = [real(n, 1000), real(n, 1001)]
    support = md.data.toy_structure(name).support
    off = md.metrics.off_support_mass(samples, support) - md.metrics.off_support_mass(real(n, 2000), support)
    assert off <= OFF_SUPPORT_BAR, off
    for metric in ("energy_distance", "sliced_wasserstein"):
        floor = md.metrics.floor_stats(real, metric, n, n_pairs=6, references=refs)
        report = md.metrics.versus_floor(samples, refs, metric, floor=floor.mean)
        assert report.ratio <= HELD_OUT_BAR, (str(report), str(floor))
