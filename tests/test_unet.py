"""The DDPM U-Net (Appendix B) and its presets."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from _helpers import perturb

from minidiff.nets.presets import PRESETS, build_unet, get_preset
from minidiff.nets.unet import AttnBlock, Downsample, UNet, count_parameters, from_diffusers_state_dict, guided
from minidiff.schedules import to_zero_indexed

BENCH = Path(__file__).resolve().parents[1] / "bench" / "unet_throughput.py"




def test_cifar10_preset_has_exactly_35_746_307_parameters():
    assert count_parameters(build_unet("cifar10")) == 35_746_307


def test_cifar_cpu_preset_is_the_small_rgb_network_of_the_cifar10_chapters_cpu_budget():
    p = get_preset("cifar-cpu")
    assert (p.unet["ch"], tuple(p.unet["ch_mult"]), p.unet["num_res_blocks"], tuple(p.unet["attn_resolutions"]),
            p.unet["dropout"], p.image_shape) == (32, (1, 2, 2), 1, (8,), 0.1, (3, 32, 32))
    assert count_parameters(build_unet("cifar-cpu")) == 1_113_955


def test_cifar10_preset_is_the_paper_configuration():
    p = get_preset("cifar10").unet
    assert (p["ch"], tuple(p["ch_mult"]), p["num_res_blocks"], tuple(p["attn_resolutions"]), p["dropout"]) == \
        (128, (1, 2, 2, 2), 2, (16,), 0.1)


def test_cifar10_attention_only_at_16x16_and_in_the_middle():
    model = build_unet("cifar10")
    # Down level 16x16: 2 blocks; middle: 1; up level 16x16: 3 blocks.
    assert sum(isinstance(m, AttnBlock) for m in model.modules()) == 6
    assert model.attn_levels == [16]


@pytest.mark.slow
def test_diffusers_unet2dmodel_equivalent_config_has_the_same_parameter_count():
    diffusers = pytest.importorskip("diffusers")
    spec = importlib.util.spec_from_file_location("unet_throughput", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    theirs = bench.diffusers_equivalent(diffusers)
    assert count_parameters(theirs) == 35_746_307
    # Tensor for tensor, same shapes: load_state_dict is strict.
    build_unet("cifar10").load_state_dict(from_diffusers_state_dict(theirs.state_dict()))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_untrained_network_outputs_zero_like_the_official_init(preset):
    model = build_unet(preset) if preset != "cifar10" else build_unet(preset, ch=32, ch_mult=(1, 2))
    c, h, w = get_preset(preset).image_shape
    out = model(torch.randn(1, c, h, w), torch.tensor([10]))
    assert out.shape == (1, c, h, w)
    assert torch.count_nonzero(out) == 0  # conv_out starts at zero (init_scale=0 in the official code)


def test_mnist_28x28_round_trips_through_odd_7x7_level_and_keeps_shape():
    model = perturb(build_unet("tiny", ch_mult=(1, 1, 1)))  # 28 -> 14 -> 7
    out = model(torch.randn(2, 1, 28, 28), torch.tensor([1, 500]))
    assert out.shape == (2, 1, 28, 28) and torch.isfinite(out).all()


def test_downsample_uses_tensorflow_same_padding_sizes():
    for size, expect in ((28, 14), (7, 4), (32, 16), (1, 1)):
        assert Downsample(4)(torch.zeros(1, 4, size, size)).shape[-1] == expect == math.ceil(size / 2)


def test_output_depends_on_timestep():
    model = perturb(build_unet("tiny"))
    x = torch.randn(1, 1, 8, 8)
    assert not torch.allclose(model(x, torch.tensor([0])), model(x, torch.tensor([999])))


def test_learned_variance_doubles_output_channels():
    model = build_unet("tiny", learn_variance=True)
    assert model(torch.randn(2, 1, 8, 8), torch.tensor([3, 4])).shape == (2, 2, 8, 8)


def test_attention_equals_naive_softmax_attention():
    torch.manual_seed(0)
    block = perturb(AttnBlock(16, 8))
    x = torch.randn(2, 16, 4, 4)
    B, C, H, W = x.shape
    q, k, v = block.qkv(block.norm(x)).reshape(B, 3, C, H * W).unbind(1)
    w = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(C), dim=-1)
    naive = x + block.proj_out(torch.einsum("bij,bcj->bci", w, v).reshape(B, C, H, W))
    torch.testing.assert_close(block(x), naive, atol=1e-5, rtol=1e-5)


def test_class_conditioning_none_means_the_null_class():
    model = perturb(build_unet("tiny", num_classes=10))
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 6])
    null = torch.full((2,), 10)
    torch.testing.assert_close(model(x, t), model(x, t, null))
    assert not torch.allclose(model(x, t, torch.tensor([1, 2])), model(x, t))


def test_guidance_scale_zero_is_the_conditional_model_and_scale_one_extrapolates():
    model = perturb(build_unet("tiny", num_classes=10))
    x, t, y = torch.randn(2, 1, 8, 8), torch.tensor([5, 6]), torch.tensor([1, 2])
    cond, uncond = model(x, t, y), model(x, t)
    torch.testing.assert_close(guided(model, y, 0.0)(x, t), cond, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(guided(model, y, 1.0)(x, t), 2 * cond - uncond, atol=1e-5, rtol=1e-5)


def test_bad_arguments_raise_errors_naming_them():
    with pytest.raises(ValueError, match="num_groups = 32"):
        UNet(ch=48)
    with pytest.raises(ValueError, match="dropout"):
        UNet(dropout=1.5)
    with pytest.raises(ValueError, match="preset"):
        build_unet("imagenet")
    with pytest.raises(ValueError, match="expects x of shape"):
        build_unet("tiny")(torch.randn(1, 3, 8, 8), torch.tensor([0]))
    with pytest.raises(ValueError, match="not class-conditional"):
        build_unet("tiny")(torch.randn(1, 1, 8, 8), torch.tensor([0]), torch.tensor([0]))


@pytest.mark.slow
def test_forward_equals_diffusers_unet2dmodel_with_the_same_weights():
    """An independent implementation: diffusers' port of the official DDPM network, weights copied over."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    theirs = diffusers.UNet2DModel(
        sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8, norm_eps=1e-6, downsample_padding=0, flip_sin_to_cos=False, freq_shift=1,
        attention_head_dim=None).eval()
    ours = UNet(in_channels=3, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,), resolution=16,
                num_groups=8, dropout=0.0).eval()
    ours.load_state_dict(from_diffusers_state_dict(theirs.state_dict()))  # strict: every tensor has a partner
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([1, 700])  # the paper's t; diffusers is fed t − 1
    with torch.no_grad():
        torch.testing.assert_close(ours(x, t), theirs(x, to_zero_indexed(t)).sample, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(ours(x, t), theirs(x, t).sample, atol=1e-5, rtol=1e-4)  # the shift matters
