"""Shapes, parameters, FLOPs, receptive field and the diffusers peer of the U-Net (chapter "The U-Net")."""

from __future__ import annotations

import sys

import pytest
import torch
from _helpers import perturb
from torch import nn

from minidiff.nets import UNet, build_unet, count_parameters, from_diffusers_state_dict, get_preset
from minidiff.nets.diffusers_peer import diffusers_unet
from minidiff.nets.inspect import (
    convolutions_only,
    count_flops,
    empirical_receptive_field,
    estimated_wall_time,
    parameter_table,
    receptive_field,
    shape_trace,
)
from minidiff.nets.unet import AttnBlock
from minidiff.schedules import to_zero_indexed


@pytest.mark.parametrize(("preset", "total"), [("cifar10", 35_746_307), ("cpu", 280_177)])
def test_parameter_table_stages_sum_to_every_parameter(preset, total):
    model = build_unet(preset)
    table = parameter_table(model)
    assert sum(table.values()) == count_parameters(model) == total
    assert list(table)[0] == "time embedding" and list(table)[-1] == "output"
    assert all(v > 0 for v in table.values())


def test_parameter_table_has_the_class_embedding_of_a_conditional_unet():
    model = build_unet("tiny", num_classes=10)
    table = parameter_table(model)
    assert table["class embedding"] == 11 * model.temb[2].out_features  # 10 classes and the null class
    assert sum(table.values()) == count_parameters(model)
    with pytest.raises(ValueError, match="needs a minidiff UNet"):
        parameter_table(nn.Linear(2, 2))


def test_shape_trace_follows_the_resolutions_down_and_back_up():
    model = build_unet("cpu")  # ch 16, ch_mult (1, 2, 2): 28 -> 14 -> 7
    rows = shape_trace(model, torch.randn(2, 1, 28, 28), torch.tensor([1, 1000]), depth=3)
    shapes = {r.name: r.shape for r in rows}
    assert shapes["conv_in"] == (2, 16, 28, 28)
    assert shapes["down.0.downsample"] == (2, 16, 14, 14)
    assert shapes["down.1.downsample"] == (2, 32, 7, 7)
    assert shapes["mid.1"] == (2, 32, 7, 7)
    assert shapes["up.1.upsample"] == (2, 32, 28, 28)
    assert rows[-1].name == "conv_out" and rows[-1].shape == (2, 1, 28, 28)
    names = [r.name for r in rows]
    assert names.index("down.0.blocks.0") < names.index("mid.0") < names.index("up.0.blocks.0")
    assert not any(h for m in model.modules() for h in m._forward_hooks.values())  # hooks removed


def _hand_counted_flops(model: UNet, x: torch.Tensor, t: torch.Tensor) -> int:
    """2 x multiply-adds of every conv, linear layer and attention matmul, from the output shapes of a forward pass."""
    total, handles = 0, []

    def hook(module, args, out):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * module.in_channels * k * out.shape[1] * out.shape[2] * out.shape[3]
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features
        elif isinstance(module, AttnBlock):
            C, HW = out.shape[1], out.shape[2] * out.shape[3]
            total += 2 * (2 * HW * HW * C)  # q k^T and (softmax) v

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, AttnBlock)):
            handles.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(x, t)
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("preset", ["cpu", "tiny"])
def test_count_flops_equals_the_multiply_adds_counted_by_hand(preset):
    model = build_unet(preset)
    x, t = torch.randn(1, 1, 28, 28), torch.tensor([7])
    flops = count_flops(model, torch.randn(3, 1, 28, 28), torch.tensor([1, 2, 3]))
    assert sum(flops.values()) == _hand_counted_flops(model, x, t)  # per image: batch 3 divided by 3
    assert set(flops) == {"convolution", "linear", "attention"}  # self-attention is counted, on CPU too
    assert flops["attention"] > 0


def test_estimated_wall_time_is_steps_times_batch_times_three_forwards_over_throughput():
    assert estimated_wall_time(1e9, 1000, 10, peak_flops=1e12, utilization=0.5) == pytest.approx(60.0)
    assert estimated_wall_time(1e9, 2000, 10, peak_flops=1e12, utilization=0.25) == pytest.approx(240.0)
    with pytest.raises(ValueError, match="utilization"):
        estimated_wall_time(1e9, 1000, 10, utilization=1.5)
    with pytest.raises(ValueError, match="steps"):
        estimated_wall_time(1e9, 0, 10)


@pytest.mark.parametrize(("ch_mult", "num_res_blocks"), [((1,), 1), ((1, 2), 1), ((1, 2, 2), 1), ((1, 2), 2)])
def test_receptive_field_formula_equals_the_support_of_an_output_pixels_gradient(ch_mult, num_res_blocks):
    model = perturb(UNet(in_channels=1, ch=8, ch_mult=ch_mult, num_res_blocks=num_res_blocks, attn_resolutions=(),
                         dropout=0.0, resolution=32, num_groups=4))
    r = receptive_field(model)
    assert r == receptive_field({"ch_mult": ch_mult, "num_res_blocks": num_res_blocks})
    convs = convolutions_only(model)
    size = r + 24  # large enough that the receptive field lies inside the image
    for pixel in [(size // 2, size // 2), (size // 2 + 1, size // 2 + 3)]:
        assert empirical_receptive_field(convs, size, pixel=pixel) == (r, r)


def test_groupnorm_and_attention_each_make_the_receptive_field_the_whole_image():
    model = perturb(UNet(in_channels=1, ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(), dropout=0.0,
                         resolution=32, num_groups=4))
    r, size = receptive_field(model), 64
    assert r < size
    assert empirical_receptive_field(model, size) == (size, size)  # GroupNorm and the middle attention
    no_attention = convolutions_only(model)
    no_attention.mid[1] = model.mid[1]  # put the middle block's self-attention back
    assert empirical_receptive_field(no_attention, size) == (size, size)


def test_receptive_field_of_the_paper_network():
    # conv_in 3; four levels of 4 convs (jump 1, 2, 4, 8) and 3 down-sampling convs; middle 4 convs at jump 8;
    # up: 6 convs per level, 3 up-sampling convs; conv_out.
    down = 1 + 2 + 4 * (1 + 2 + 4 + 8) * 2 + 2 * (1 + 2 + 4)
    up = 6 * 2 * (8 + 4 + 2 + 1) + 2 * (4 + 2 + 1)
    assert receptive_field(get_preset("cifar10").unet) == down + 4 * 2 * 8 + up + 2 == 397


@pytest.mark.parametrize("preset", ["cpu", "tiny"])
def test_diffusers_unet_with_copied_weights_gives_the_same_output(preset):
    pytest.importorskip("diffusers")
    torch.manual_seed(0)
    theirs = diffusers_unet(preset).eval()
    ours = build_unet(preset).eval()
    ours.load_state_dict(from_diffusers_state_dict(theirs.state_dict()))  # strict
    assert count_parameters(theirs) == count_parameters(ours)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([1, 1000])
    with torch.no_grad():
        torch.testing.assert_close(ours(x, t), theirs(x, to_zero_indexed(t)).sample, atol=1e-5, rtol=1e-4)


def test_diffusers_unet_without_diffusers_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ImportError, match="pip install diffusers"):
        diffusers_unet("tiny")


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("num_res_blocks", [1, 2, 3])
def test_receptive_field_equals_the_closed_form_of_the_book_page(levels, num_res_blocks):
    # book/receptive_field.md: r = 1 + (8N + 4)(2^L − 1) + 12 · 2^(L−1)
    closed_form = 1 + (8 * num_res_blocks + 4) * (2**levels - 1) + 12 * 2 ** (levels - 1)
    assert receptive_field({"ch_mult": (1,) * levels, "num_res_blocks": num_res_blocks}) == closed_form
