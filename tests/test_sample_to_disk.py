"""Sampling many images to disk in chunks (issue 15 item 3): reproducible per image, whatever the chunk size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import perturb

from minidiff.nets.presets import build_unet
from minidiff.samplers import sample
from minidiff.schedules import get_schedule
from minidiff.training.sample_to_disk import group_seed, resolve_sampling_amp, sample_to_disk

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    """The tiny U-Net with random weights on every layer (the zero-initialized ones too)."""
    torch.manual_seed(0)
    return perturb(build_unet("tiny"), seed=1)


@pytest.fixture(scope="module")
def schedule():
    return get_schedule("linear", 1000)


def _images(run) -> np.ndarray:
    with np.load(run.npz) as f:
        return f["arr_0"]


def test_chunk_sizes_3_and_5_give_identical_images(net, schedule, tmp_path):
    runs = {c: sample_to_disk(net, (7, *SHAPE), schedule, tmp_path, chunk_size=c, noise_group=1, steps=4,
                              name=f"c{c}", progress=False) for c in (3, 5)}
    a, b = _images(runs[3]), _images(runs[5])
    assert a.shape == (7, 28, 28, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a.reshape(7, -1), axis=0)) == 7  # seven different images, not one repeated
    # One network call per step and chunk: 3 chunks of <= 3 and 2 chunks of <= 5, 4 steps each.
    assert (runs[3].network_calls, runs[5].network_calls) == (12, 8)
    # Image i does not depend on how many images are drawn either.
    np.testing.assert_array_equal(_images(sample_to_disk(net, (2, *SHAPE), schedule, tmp_path, chunk_size=2,
                                                         noise_group=1, steps=4, name="two", progress=False)), a[:2])


def test_each_image_is_sample_loop_run_with_its_own_group_generator(net, schedule, tmp_path):
    run = sample_to_disk(net, (3, *SHAPE), schedule, tmp_path, chunk_size=3, noise_group=1, seed=5, steps=4,
                         sampler="ddpm", progress=False)
    got = _images(run)
    for i in range(3):
        gen = torch.Generator().manual_seed(group_seed(5, i))
        x = sample(net, (1, *SHAPE), schedule, steps=4, generator=gen)
        expected = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[0]
        # The batched network may round differently from a batch of one: at most one level apart.
        assert np.abs(got[i].astype(int) - expected.astype(int)).max() <= 1


def test_noise_groups_keep_images_for_chunk_sizes_that_are_multiples_and_refuse_others(net, schedule, tmp_path):
    kw = dict(noise_group=2, steps=3, sampler="ddim", progress=False, grid_n=0)
    a = _images(sample_to_disk(net, (5, *SHAPE), schedule, tmp_path, chunk_size=2, name="a", **kw))
    b = _images(sample_to_disk(net, (5, *SHAPE), schedule, tmp_path, chunk_size=4, name="b", **kw))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="chunk_size must be a multiple of noise_group = 2, got chunk_size = 3"):
        sample_to_disk(net, (5, *SHAPE), schedule, tmp_path, chunk_size=3, **kw)


def test_compiled_path_pads_the_last_chunk_to_one_shape_and_keeps_the_images(net, schedule, tmp_path, monkeypatch):
    shapes = []

    def fake_compile(model, **kwargs):  # records the batch sizes the compiled network would see
        return lambda x, t, *a: shapes.append(x.shape[0]) or model(x, t, *a)

    monkeypatch.setattr(torch, "compile", fake_compile)
    kw = dict(noise_group=1, steps=2, progress=False, grid_n=0)
    plain = _images(sample_to_disk(net, (5, *SHAPE), schedule, tmp_path, chunk_size=3, name="p", **kw))
    compiled = _images(sample_to_disk(net, (5, *SHAPE), schedule, tmp_path, chunk_size=3, compile=True, name="c",
                                      **kw))
    np.testing.assert_array_equal(plain, compiled)
    assert shapes == [3] * 4  # 2 chunks x 2 steps, the second chunk padded from 2 to 3 images


def test_files_labels_grids_and_no_partial_file(tmp_path, schedule):
    torch.manual_seed(0)
    model = build_unet("tiny", num_classes=10).eval()
    labels = torch.tensor([3, 1, 4, 1, 5])
    run = sample_to_disk(model, (5, *SHAPE), schedule, tmp_path / "out", chunk_size=2, noise_group=1, steps=2,
                         labels=labels, grid_n=2, grids=2, progress=False)
    with np.load(run.npz) as f:
        assert sorted(f.files) == ["arr_0", "arr_1"]
        assert f["arr_0"].shape == (5, 28, 28, 1) and f["arr_1"].tolist() == [3, 1, 4, 1, 5]
    assert [p.name for p in run.grids] == ["samples-000000.png", "samples-000002.png"]
    assert all(p.stat().st_size > 0 for p in run.grids)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "samples-000000.png", "samples-000002.png", "samples.npz"]
    assert run.n == 5 and run.images_per_s > 0 and run.chunk_size == 2


def test_a_failing_network_leaves_no_npz(net, schedule, tmp_path):
    def broken(x, t):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        sample_to_disk(broken, (2, *SHAPE), schedule, tmp_path, device="cpu", steps=2, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bf16_autocast_covers_the_network_only(schedule, tmp_path):
    seen = []

    def spy(x, t):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), x.dtype))
        return torch.zeros_like(x)

    sample_to_disk(spy, (2, *SHAPE), schedule, tmp_path, device="cpu", steps=2, amp="bf16", progress=False)
    assert seen == [(True, torch.bfloat16, torch.float32)] * 2  # x_t reaches it in fp32, under bf16 autocast
    assert resolve_sampling_amp("auto", torch.device("cpu")) is None  # fp32 on CPU by default


def test_bad_arguments_are_named(net, schedule, tmp_path):
    with pytest.raises(ValueError, match=r"shape must be \(N, C, H, W\)"):
        sample_to_disk(net, (5, 28, 28), schedule, tmp_path)
    with pytest.raises(ValueError, match="sets \\['generator', 'x_T'\\] itself"):
        sample_to_disk(net, (2, *SHAPE), schedule, tmp_path, generator=None, x_T=None)
    with pytest.raises(ValueError, match="not class-conditional"):
        sample_to_disk(net, (2, *SHAPE), schedule, tmp_path, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="noise_group must be an int >= 1, got noise_group = 0"):
        sample_to_disk(net, (2, *SHAPE), schedule, tmp_path, noise_group=0)
    with pytest.raises(ValueError, match="amp must be one of auto, bf16, off, got amp = 'fp8'"):
        sample_to_disk(net, (2, *SHAPE), schedule, tmp_path, amp="fp8")
