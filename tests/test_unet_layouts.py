"""The U-Net on GPUs (issue 15 items 4, 5), checked on CPU: the layouts the fused kernels need, the same outputs."""

import pytest
import torch
from _helpers import perturb

from minidiff.nets.presets import build_unet
from minidiff.nets.unet import AttnBlock


def test_upsampler_in_channels_last_equals_the_nchw_result_also_when_split_into_pieces(monkeypatch):
    from minidiff.nets import unet

    x = torch.randn(5, 4, 7, 6)
    expected = torch.nn.functional.interpolate(x, size=(14, 12), mode="nearest")
    cl = x.contiguous(memory_format=torch.channels_last)
    calls = []
    real = torch.nn.functional.interpolate
    monkeypatch.setattr(unet.F, "interpolate", lambda t, **kw: calls.append(t.shape[0]) or real(t, **kw))
    for limit in (2**31 - 1, 2 * 4 * 14 * 12, 4 * 14 * 12):  # the real bound; 2 images per piece; 1 per piece
        monkeypatch.setattr(unet, "NEAREST_NHWC_MAX_ELEMENTS", limit)
        calls.clear()
        out = unet.upsample_nearest(cl, (14, 12))
        assert torch.equal(out, expected)
        assert out.is_contiguous(memory_format=torch.channels_last)  # the pieces keep the layout
        assert calls == {2**31 - 1: [5], 2 * 4 * 14 * 12: [2, 2, 1], 4 * 14 * 12: [1] * 5}[limit]
    # An NCHW tensor is never split (only CUDA's channels_last kernel has the bug).
    calls.clear()
    assert torch.equal(unet.upsample_nearest(x, (14, 12)), expected) and calls == [5]


def test_upsample_module_gives_the_same_output_in_both_memory_formats(monkeypatch):
    from minidiff.nets import unet

    monkeypatch.setattr(unet, "NEAREST_NHWC_MAX_ELEMENTS", 3 * 8 * 8 * 8)  # force the split path
    up = perturb(unet.Upsample(8))
    x = torch.randn(7, 8, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(up(x.contiguous(memory_format=torch.channels_last), (8, 8)), up(x, (8, 8)),
                                   atol=1e-6, rtol=1e-5)


def _sdpa_inputs(monkeypatch, block, x):
    """Run ``block(x)`` and return (its output, the q, k, v it passed to scaled_dot_product_attention)."""
    from minidiff.nets import unet

    seen = []
    real = unet.F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        seen.append((q, k, v))
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(unet.F, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        out = block(x)
    monkeypatch.setattr(unet.F, "scaled_dot_product_attention", real)
    return out, seen[0]


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_attention_passes_q_k_v_with_unit_stride_channels_and_keeps_its_output(monkeypatch, memory_format):
    """Flash / memory-efficient SDPA need the head dimension at stride 1 (issue 15 item 5)."""
    torch.manual_seed(0)
    block = perturb(AttnBlock(16, 8))
    x = torch.randn(3, 16, 5, 4).contiguous(memory_format=memory_format)
    out, (q, k, v) = _sdpa_inputs(monkeypatch, block, x)
    assert q.shape == k.shape == v.shape == (3, 1, 20, 16)
    assert q.stride(-1) == k.stride(-1) == v.stride(-1) == 1
    # The output before the change: the same attention on q, k, v with channels at stride H·W.
    B, C, H, W = x.shape
    with torch.no_grad():
        qkv = block.qkv(block.norm(x)).reshape(B, 3, 1, C, H * W).transpose(-1, -2)
        h = torch.nn.functional.scaled_dot_product_attention(qkv[:, 0], qkv[:, 1], qkv[:, 2])
        before = x + block.proj_out(h.transpose(-1, -2).reshape(B, C, H, W))
    torch.testing.assert_close(out, before, atol=1e-6, rtol=1e-5)


def test_unet_output_is_the_same_in_nchw_and_channels_last():
    model = perturb(build_unet("tiny"))
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([3, 600])
    with torch.no_grad():
        nchw = model(x, t)
        cl = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last), t)
    torch.testing.assert_close(cl, nchw, atol=1e-5, rtol=1e-4)
