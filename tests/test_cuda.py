"""Checks that need a CUDA GPU (marker ``gpu``; skipped elsewhere). ``bench/gpu_check.sh`` runs them on a lent GPU.

``MINIDIFF_GPU_TESTS_ON=cpu`` runs them on the CPU at small sizes instead: the rehearsal of
``bench/gpu_check.sh --cpu-dry-run``, so that the GPU run cannot fail on a typo.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minidiff.nets import unet
from minidiff.nets.presets import build_unet
from minidiff.schedules import get_schedule

DEVICE = torch.device(os.environ.get("MINIDIFF_GPU_TESTS_ON", "cuda"))
REHEARSAL = DEVICE.type == "cpu"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(),
                                                  reason="needs a CUDA GPU")]
PRESET = "tiny" if REHEARSAL else "cifar10"


def _perturbed(preset: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_unet(preset, **kw)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.fixture(autouse=True)
def _free_memory():
    yield
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()


def test_channels_last_upsampling_past_2_31_output_elements_equals_nchw(monkeypatch):
    """Issue 15 item 4 at the real size: the cifar10 up-sampler's output at a batch of 8,193 (2^31 + 2^18 elements)."""
    C, H, W = (4, 3, 3) if REHEARSAL else (256, 16, 16)
    limit = 3 * C * 4 * H * W if REHEARSAL else 2**31
    if REHEARSAL:
        monkeypatch.setattr(unet, "NEAREST_NHWC_MAX_ELEMENTS", limit - 1)
    batch = limit // (C * 4 * H * W) + 1
    g = torch.Generator(DEVICE).manual_seed(0)
    x = torch.randn(batch, C, H, W, device=DEVICE, dtype=torch.bfloat16, generator=g)
    reference = F.interpolate(x, size=(2 * H, 2 * W), mode="nearest")
    assert reference.numel() > limit
    cl = x.contiguous(memory_format=torch.channels_last)
    del x
    raw_ok = bool(torch.equal(F.interpolate(cl, size=(2 * H, 2 * W), mode="nearest"), reference))
    print(f"torch {torch.__version__}: plain F.interpolate in channels_last past 2^31 elements is "
          f"{'correct' if raw_ok else 'WRONG (pytorch#141831 present)'}")
    out = unet.upsample_nearest(cl, (2 * H, 2 * W))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, reference)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("backend", ["FLASH_ATTENTION", "EFFICIENT_ATTENTION"])
def test_attention_runs_on_the_fused_sdpa_kernels(memory_format, backend):
    """Issue 15 item 5: with only one fused kernel allowed, SDPA raises if the inputs do not qualify."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if REHEARSAL and backend == "EFFICIENT_ATTENTION":
        pytest.skip("the CPU has no memory-efficient SDPA kernel")
    model = _perturbed(PRESET).to(DEVICE).to(memory_format=memory_format)
    shape = model.in_channels, model.resolution, model.resolution
    x = torch.randn(8, *shape, device=DEVICE).contiguous(memory_format=memory_format)
    t = torch.randint(1, 1001, (8,), device=DEVICE)  # the paper's t in [1, T]
    with sdpa_kernel([getattr(SDPBackend, backend)]), torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        out = model(x, t)
        out.float().square().mean().backward()
    assert torch.isfinite(out).all()


def test_bf16_channels_last_forward_matches_fp32_nchw():
    model = _perturbed(PRESET).to(DEVICE).eval()
    g = torch.Generator(DEVICE).manual_seed(1)
    x = torch.randn(16, model.in_channels, model.resolution, model.resolution, device=DEVICE, generator=g)
    t = torch.randint(1, 1001, (16,), device=DEVICE, generator=g)
    with torch.no_grad():
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # a true fp32 reference
        try:
            reference = model(x, t)
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        cl = model.to(memory_format=torch.channels_last)
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
            out = cl(x.contiguous(memory_format=torch.channels_last), t).float()
    rel = (out - reference).norm() / reference.norm()
    assert rel < 2e-2, f"relative error {rel:.2e} of bf16 against fp32 (bf16 rounding gives 1e-3 to 1e-2)"


def test_sample_to_disk_on_cuda_keeps_images_across_chunk_sizes(tmp_path):
    from minidiff.training.sample_to_disk import sample_to_disk

    model = _perturbed("tiny").to(DEVICE).eval()
    schedule = get_schedule("linear", 1000)
    runs = [sample_to_disk(model, (8, 1, 28, 28), schedule, tmp_path, chunk_size=c, noise_group=4, steps=5,
                           amp="off", name=f"c{c}", progress=False) for c in (4, 8)]
    a, b = (np.load(r.npz)["arr_0"].astype(int) for r in runs)
    assert a.shape == (8, 28, 28, 1)
    # The same noise; cuDNN may pick other kernels for another batch size: at most one uint8 level apart.
    assert np.abs(a - b).max() <= 1
    bf16 = sample_to_disk(model, (8, 1, 28, 28), schedule, tmp_path, chunk_size=8, noise_group=4, steps=5,
                          name="bf16", progress=False)
    assert np.load(bf16.npz)["arr_0"].shape == (8, 28, 28, 1)


def test_train_step_returns_a_device_scalar_without_host_syncs(tmp_path):
    """The benchmark's unit of work: Trainer.train_step() must not synchronize with the host (issue 15 item 7)."""
    from minidiff.data.images import ImageData
    from minidiff.training import TrainConfig, Trainer

    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    data = ImageData("synthetic", images, torch.zeros(64, dtype=torch.long), 10, flip=False)
    config = TrainConfig(preset="tiny", data="mnist", batch_size=16, device=DEVICE.type, out=str(tmp_path / "run"),
                         progress=False, sample_every=0, steps=100)
    trainer = Trainer(config, data=data)
    for _ in range(2):  # the first steps may allocate and autotune
        trainer.train_step()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [trainer.train_step() for _ in range(3)]
    finally:
        if DEVICE.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    assert all(loss.dim() == 0 and loss.device.type == DEVICE.type for loss in losses)
    assert torch.isfinite(torch.stack(losses)).all()
