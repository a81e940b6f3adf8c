"""Looking inside the U-Net: shapes, parameters, FLOPs, receptive field and an estimated training time.

Tools for chapter "The U-Net" (Ho et al. 2020, Appendix B) and the book page "The U-Net's receptive field":

- :func:`shape_trace`: the output shape of every module of one forward pass (forward hooks);
- :func:`parameter_table`: the parameters of each stage (time embedding, down levels, middle, up levels, output);
- :func:`count_flops`: floating-point operations of one forward pass per image
  (``torch.utils.flop_counter.FlopCounterMode``, self-attention included);
- :func:`estimated_wall_time`: the training time those FLOPs imply at an assumed throughput (an estimate,
  not a measurement);
- :func:`receptive_field` and :func:`empirical_receptive_field`: the receptive field of one output pixel,
  from the conv-stack arithmetic r_l = r_{l−1} + (k − 1)·j_{l−1} and from the gradient of that pixel.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from .._checks import check_int, check_real
from .unet import AttnBlock, UNet

# NVIDIA's data sheet: a T4 peaks at 65 TFLOPS in fp16 with tensor cores (8.1 TFLOPS in fp32).
T4_FP16_PEAK_FLOPS = 65e12
# A training step costs about three forward passes: the forward, and a backward that computes
# gradients with respect to both the activations and the weights (two matmuls per forward matmul).
TRAIN_FLOPS_PER_FORWARD = 3.0


class ShapeRow(NamedTuple):
    """One row of :func:`shape_trace`: a module's qualified name, its class and its output shape."""

    name: str
    module: str
    shape: tuple[int, ...]


def shape_trace(model: nn.Module, *inputs: Any, depth: int = 2) -> list[ShapeRow]:
    """The output shape of every module up to ``depth`` dots deep in one forward pass, in call order.

    ``model(*inputs)`` runs once without gradients, with a forward hook on each module whose qualified
    name has at most ``depth`` dots (``down.0`` has one); modules called twice appear twice. A module
    whose output is not a tensor (a container) is skipped. Chapter "The U-Net".
    """
    check_int("depth", depth, ge=0)
    rows: list[ShapeRow] = []
    handles = []
    for name, module in model.named_modules():
        if not name or name.count(".") > depth:
            continue

        def hook(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                rows.append(ShapeRow(name, type(mod).__name__, tuple(out.shape)))

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return rows


def parameter_table(model: UNet) -> dict[str, int]:
    """Trainable parameters of each stage of a :class:`UNet`, in the order data meets them; sums to all of them.

    Stages: ``time embedding`` (the MLP after the sinusoids; the sinusoids have none), ``class embedding``
    (when class-conditional), ``input conv``, ``down level i (HxW)``, ``middle``, ``up level i (HxW)``
    and ``output`` (the last GroupNorm and conv). ``build_unet("cifar10")`` sums to 35,746,307.
    """
    if not isinstance(model, UNet):
        raise ValueError(f"parameter_table needs a minidiff UNet, got {type(model).__name__}")

    def count(module: nn.Module | None) -> int:
        return 0 if module is None else sum(p.numel() for p in module.parameters() if p.requires_grad)

    sizes = [model.resolution]
    for _ in range(len(model.down) - 1):
        sizes.append(math.ceil(sizes[-1] / 2))
    table = {"time embedding": count(model.temb)}
    if model.class_emb is not None:
        table["class embedding"] = count(model.class_emb)
    table["input conv"] = count(model.conv_in)
    for level, stage in enumerate(model.down):
        table[f"down level {level} ({sizes[level]}x{sizes[level]})"] = count(stage)
    table["middle"] = count(model.mid)
    for i, stage in enumerate(model.up):
        level = len(model.up) - 1 - i
        table[f"up level {level} ({sizes[level]}x{sizes[level]})"] = count(stage)
    table["output"] = count(model.norm_out) + count(model.conv_out)
    return table


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args: Any, **kwargs: Any) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# FlopCounterMode knows the CUDA attention kernels; the CPU one gets the same formula (2 matmuls).
_EXTRA_FLOP_FORMULAS = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _EXTRA_FLOP_FORMULAS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flops


def count_flops(model: nn.Module, x: torch.Tensor, t: torch.Tensor, **kwargs: Any) -> dict[str, int]:
    """Floating-point operations of one forward pass ``model(x, t)``, per image: {operation: FLOPs}.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add is 2 FLOPs; convolutions,
    linear layers and the two matmuls of self-attention; normalizations and activations are not counted,
    a few percent at most). Operations: ``convolution``, ``linear`` and ``attention`` (whichever kernel ran it),
    and any other aten op by name. x: (B, C, H, W), t: (B,); the counts are divided by B.
    ``sum(...values())`` is the total. Chapter "The U-Net".
    """
    B = x.shape[0]
    with FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter, torch.no_grad():
        model(x, t, **kwargs)
    out: dict[str, int] = {}
    for op, n in counter.get_flop_counts().get("Global", {}).items():
        name = str(op).removeprefix("aten.").removesuffix(".default")
        name = {"addmm": "linear", "mm": "linear"}.get(name, "attention" if "attention" in name else name)
        out[name] = out.get(name, 0) + int(n) // B
    return out


def estimated_wall_time(flops_per_image: float, steps: int, batch_size: int, *,
                        peak_flops: float = T4_FP16_PEAK_FLOPS, utilization: float = 0.3) -> float:
    """An *estimate* of the seconds a training run takes: steps · batch · 3 · forward FLOPs / (peak · utilization).

    ``flops_per_image``: one forward pass (:func:`count_flops`); a training step costs about
    :data:`TRAIN_FLOPS_PER_FORWARD` = 3 forward passes. ``peak_flops``: the device's peak (default a T4's
    65 TFLOPS in fp16); ``utilization``: the assumed share of the peak that the run reaches, which small
    convolutions, normalizations and the data pipeline keep well below 1. Only a measured run can
    replace it. Chapter "The U-Net".
    """
    check_real("flops_per_image", flops_per_image, gt=0.0)
    check_int("steps", steps, ge=1)
    check_int("batch_size", batch_size, ge=1)
    check_real("peak_flops", peak_flops, gt=0.0)
    check_real("utilization", utilization, gt=0.0, le=1.0)
    return steps * batch_size * TRAIN_FLOPS_PER_FORWARD * flops_per_image / (peak_flops * utilization)


def receptive_field(config: UNet | Mapping[str, Any]) -> int:
    """The receptive field (pixels per side) of one output pixel of a :class:`UNet`'s convolutions.

    ``config``: a :class:`UNet`, or its keyword arguments (e.g. ``get_preset("cpu").unet``; only ``ch_mult``
    and ``num_res_blocks`` matter). Walks the deepest path, input conv, the residual blocks and
    down-samplings of every level, the middle, the up path and the output conv, with
    r_l = r_{l−1} + (k − 1)·j_{l−1} for a k x k convolution applied where neighbouring pixels are j input
    pixels apart. A stride-2 down-sampling doubles j after its conv; a nearest-neighbour up-sampling halves
    j before the conv that follows it. Every residual block has two 3x3 convolutions. The skip connections
    are shorter paths, so they add nothing. Self-attention and the statistics of GroupNorm are not counted:
    both reach every pixel (book page "The U-Net's receptive field").
    """
    if isinstance(config, UNet):
        levels, num_res_blocks = len(config.down), len(config.down[0].blocks)
    else:
        levels, num_res_blocks = len(config.get("ch_mult", (1, 2, 2, 2))), config.get("num_res_blocks", 2)
    if levels < 1:
        raise ValueError(f"ch_mult must be non-empty, got {levels} levels")
    check_int("num_res_blocks", num_res_blocks, ge=1)
    r, j = 1, 1

    def conv(k: int = 3) -> None:
        nonlocal r
        r += (k - 1) * j

    conv()  # conv_in
    for level in range(levels):
        for _ in range(2 * num_res_blocks):
            conv()
        if level != levels - 1:
            conv()  # Downsample: a 3x3 conv with stride 2
            j *= 2
    for _ in range(2 * 2):  # middle: two residual blocks (the attention between them is global anyway)
        conv()
    for level in reversed(range(levels)):
        for _ in range(2 * (num_res_blocks + 1)):
            conv()
        if level != 0:
            j //= 2  # nearest-neighbour up-sampling, then a 3x3 conv
            conv()
    conv()  # conv_out
    return r


def convolutions_only(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` without its two global operations: every GroupNorm and every self-attention
    block (:class:`~minidiff.nets.unet.AttnBlock`, residual, so the block becomes x) replaced by the identity.

    What is left is the conv stack whose receptive field :func:`receptive_field` computes. Note that the
    :class:`UNet`'s middle block has self-attention whatever ``attn_resolutions`` says.
    """
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, (nn.GroupNorm, AttnBlock)):
                setattr(module, child_name, nn.Identity())
    return model


def empirical_receptive_field(model: nn.Module, size: int, t: int = 500, *, pixel: tuple[int, int] | None = None,
                              seed: int = 0) -> tuple[int, int]:
    """(rows, columns) of the input pixels on which one output pixel depends: the support of its gradient.

    Runs ``model(x, t)`` on a random (1, C, size, size) input (C = ``model.in_channels``), back-propagates
    the sum of the output channels at ``pixel`` (default the centre) and returns the height and width of
    the bounding box of the input pixels with a nonzero gradient. With GroupNorm or self-attention in the
    network the answer is the whole image (both mix every pixel): pass :func:`convolutions_only` (model)
    to see the convolutions' receptive field. Zero-initialized layers (an untrained :class:`UNet`'s residual
    branches) pass no gradient, so use a trained or perturbed network.
    """
    check_int("size", size, ge=1)
    g = torch.Generator().manual_seed(seed)
    param = next(model.parameters())
    x = torch.randn(1, model.in_channels, size, size, generator=g).to(param).requires_grad_(True)
    i, k = pixel if pixel is not None else (size // 2, size // 2)
    was_training = model.training
    model.eval()  # no dropout
    try:
        model(x, torch.tensor([t], device=param.device))[0, :, i, k].sum().backward()
    finally:
        model.train(was_training)
    support = (x.grad[0].abs().sum(0) > 0).nonzero()
    if support.numel() == 0:
        return 0, 0
    lo, hi = support.min(0).values, support.max(0).values
    return int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1)
