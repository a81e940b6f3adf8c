"""The DDPM U-Net (Ho et al. 2020, Appendix B; ``diffusion_tf/models/unet.py`` of the official code).

A PixelCNN++-style U-Net backbone on Wide-ResNet blocks:

- GroupNorm(32) and SiLU ("swish") everywhere;
- the timestep t enters as a sinusoidal (Transformer) embedding, computed as in the official code
  (:func:`ddpm_timestep_embedding`), followed by a two-layer MLP, and
  every residual block adds a projection of it after its first convolution;
- self-attention (one head) at the listed resolutions and in the middle block;
- convolutional down-sampling (stride 2) and nearest-neighbour up-sampling followed by a convolution,
  with skip connections from every down-path activation to the up path;
- dropout before the second convolution of every residual block.

The convolutions that end a residual branch, the attention projection and the output convolution
start at zero (as ``init_scale=0.`` in the official code), so the untrained network is close to the
identity on each branch. Two options beyond the paper: class conditioning with a null class for
classifier-free guidance (Ho & Salimans 2022), and doubled output channels for a learned variance
(Nichol & Dhariwal 2021). Chapter "The U-Net".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .embedding import ddpm_timestep_embedding


def _init(module: nn.Module, scale: float = 1.0) -> nn.Module:
    """The official code's initializer: variance scaling (fan_avg, uniform); biases at zero.

    ``scale=0`` gives zeros (the code uses 1e-10, which is zero for every practical purpose).
    """
    if scale == 0.0:
        nn.init.zeros_(module.weight)
    else:
        nn.init.xavier_uniform_(module.weight, gain=math.sqrt(scale))
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    if channels % groups:
        raise ValueError(f"GroupNorm needs channels divisible by num_groups = {groups}, got channels = {channels}")
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """h = conv(SiLU(GN(x))) + W·SiLU(temb);  h = conv(dropout(SiLU(GN(h))));  return shortcut(x) + h."""

    def __init__(self, in_ch: int, out_ch: int, temb_ch: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1 = _group_norm(in_ch, groups)
        self.conv1 = _init(nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.temb_proj = _init(nn.Linear(temb_ch, out_ch))
        self.norm2 = _group_norm(out_ch, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _init(nn.Conv2d(out_ch, out_ch, 3, padding=1), scale=0.0)
        # The official code's "nin_shortcut": a 1x1 convolution where the channel count changes.
        self.shortcut = _init(nn.Conv2d(in_ch, out_ch, 1)) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H·W positions: x + proj(softmax(q kᵀ/√C) v), q, k, v from GN(x)."""

    def __init__(self, ch: int, groups: int) -> None:
        super().__init__()
        self.norm = _group_norm(ch, groups)
        self.qkv = _init(nn.Conv2d(ch, 3 * ch, 1))  # the official q, k, v "nin" layers, fused
        self.proj_out = _init(nn.Conv2d(ch, ch, 1), scale=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x)).reshape(B, 3, 1, C, H * W).transpose(-1, -2)  # (B, 3, heads=1, HW, C)
        if qkv.stride(-1) != 1:
            # NCHW input: channels have stride H·W here. The flash and memory-efficient SDPA kernels need
            # the head dimension (C) at stride 1, else PyTorch falls back to the slow math kernel. In
            # channels_last the view above already has stride 1 and no copy is made.
            qkv = qkv.contiguous()
        h = F.scaled_dot_product_attention(qkv[:, 0], qkv[:, 1], qkv[:, 2])  # (B, 1, HW, C), scale 1/√C
        h = h.transpose(-1, -2).reshape(B, C, H, W)
        return x + self.proj_out(h)


class Downsample(nn.Module):
    """A 3x3 convolution with stride 2 and TensorFlow's 'SAME' padding (extra row/column at the end)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = _init(nn.Conv2d(ch, ch, 3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad lists the last dimension first
            total = max((math.ceil(size / 2) - 1) * 2 + 3 - size, 0)
            pads += [total // 2, total - total // 2]
        return self.conv(F.pad(x, pads))


# CUDA's channels_last nearest-neighbour kernel returns zeros once its output has 2^31 elements or more
# (pytorch/pytorch#141831); for the cifar10 U-Net that is a batch of 8,192 at the last up-sampling.
NEAREST_NHWC_MAX_ELEMENTS = 2**31 - 1


def upsample_nearest(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``F.interpolate(x, size, mode="nearest")`` that stays correct for channels_last outputs of 2^31+ elements.

    Such a batch is up-sampled in pieces along the batch dimension, each under
    :data:`NEAREST_NHWC_MAX_ELEMENTS` output elements, and the pieces are concatenated. That keeps the
    channels_last layout (making the input contiguous instead would turn the rest of the up path
    into NCHW) and costs one extra copy, only at such sizes. x: (B, C, H, W); returns (B, C, *size).
    """
    size = tuple(int(n) for n in size)
    per_image = x.shape[1] * size[0] * size[1]
    channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    if not channels_last or x.shape[0] * per_image <= NEAREST_NHWC_MAX_ELEMENTS:
        return F.interpolate(x, size=size, mode="nearest")
    step = max(1, NEAREST_NHWC_MAX_ELEMENTS // per_image)
    return torch.cat([F.interpolate(part, size=size, mode="nearest") for part in x.split(step)])


class Upsample(nn.Module):
    """Nearest-neighbour up-sampling to the skip connection's size (2x), then a 3x3 convolution."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = _init(nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return self.conv(upsample_nearest(x, size))


class UNet(nn.Module):
    """The DDPM U-Net ε_θ(x_t, t) (Appendix B).

    Args:
        in_channels: image channels C (3 for CIFAR-10, 1 for MNIST).
        ch: base channel count; level i has ``ch * ch_mult[i]`` channels.
        ch_mult: channel multipliers, one per resolution level (the paper: (1, 2, 2, 2) at 32x32).
        num_res_blocks: residual blocks per level on the way down (the up path has one more).
        attn_resolutions: feature-map sizes at which self-attention follows each residual block.
        dropout: dropout probability inside the residual blocks (the paper: 0.1 on CIFAR-10).
        resolution: the input size H = W the attention levels refer to (32 for CIFAR-10).
        out_channels: output channels; default ``in_channels``, doubled with ``learn_variance``.
        learn_variance: output (B, 2C, H, W): ε and the variance interpolation v (Nichol & Dhariwal 2021).
        num_classes: if set, a class embedding is added to the time embedding; label ``num_classes``
            is the null class ("no label") used for classifier-free guidance.
        num_groups: GroupNorm groups (32 in the paper).

    forward(x, t, y=None): x (B, C, H, W), t (B,) integer timesteps, y (B,) labels or None
    (None means the null class). Any H, W works; attention sits at the levels whose nominal size,
    counted from ``resolution``, is in ``attn_resolutions``.
    """

    def __init__(
        self, *, in_channels: int = 3, ch: int = 128, ch_mult: Sequence[int] = (1, 2, 2, 2),
        num_res_blocks: int = 2, attn_resolutions: Sequence[int] = (16,), dropout: float = 0.1,
        resolution: int = 32, out_channels: int | None = None, learn_variance: bool = False,
        num_classes: int | None = None, num_groups: int = 32,
    ) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("ch", ch), ("num_res_blocks", num_res_blocks),
                        ("resolution", resolution), ("num_groups", num_groups)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name} = {v!r}")
        if len(ch_mult) < 1 or any(int(m) < 1 for m in ch_mult):
            raise ValueError(f"ch_mult must be a non-empty sequence of ints >= 1, got ch_mult = {tuple(ch_mult)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got dropout = {dropout}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 or None, got num_classes = {num_classes}")
        self.in_channels, self.ch, self.resolution = in_channels, ch, resolution
        self.learn_variance, self.num_classes = learn_variance, num_classes
        self.out_channels = out_channels or in_channels * (2 if learn_variance else 1)
        temb_ch = 4 * ch

        # Timestep embedding: sinusoids of width ch, then Dense(4ch) - SiLU - Dense(4ch).
        self.temb = nn.Sequential(_init(nn.Linear(ch, temb_ch)), nn.SiLU(), _init(nn.Linear(temb_ch, temb_ch)))
        self.class_emb = nn.Embedding(num_classes + 1, temb_ch) if num_classes is not None else None

        self.conv_in = _init(nn.Conv2d(in_channels, ch, 3, padding=1))
        # Down path: remember every activation's channel count for the skip connections.
        self.down = nn.ModuleList()
        skip_chs, cur, res = [ch], ch, resolution
        self.attn_levels: list[int] = []
        for level, mult in enumerate(ch_mult):
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(cur, ch * mult, temb_ch, dropout, num_groups))
                cur = ch * mult
                attns.append(AttnBlock(cur, num_groups) if res in attn_resolutions else nn.Identity())
                skip_chs.append(cur)
            if res in attn_resolutions:
                self.attn_levels.append(res)
            stage = nn.Module()
            stage.blocks, stage.attns = blocks, attns
            if level != len(ch_mult) - 1:
                stage.downsample = Downsample(cur)
                skip_chs.append(cur)
                res = math.ceil(res / 2)
            self.down.append(stage)

        self.mid = nn.ModuleList([ResnetBlock(cur, cur, temb_ch, dropout, num_groups), AttnBlock(cur, num_groups),
                                  ResnetBlock(cur, cur, temb_ch, dropout, num_groups)])

        # Up path: num_res_blocks + 1 blocks per level, each eating one skip connection.
        self.up = nn.ModuleList()
        for level in reversed(range(len(ch_mult))):
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(cur + skip_chs.pop(), ch * ch_mult[level], temb_ch, dropout, num_groups))
                cur = ch * ch_mult[level]
                attns.append(AttnBlock(cur, num_groups) if res in attn_resolutions else nn.Identity())
            stage = nn.Module()
            stage.blocks, stage.attns = blocks, attns
            if level != 0:
                stage.upsample = Upsample(cur)
                res = res * 2
            self.up.append(stage)

        self.norm_out = _group_norm(cur, num_groups)
        self.conv_out = _init(nn.Conv2d(cur, self.out_channels, 3, padding=1), scale=0.0)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, H, W) noisy images x_t; t: (B,) timesteps; y: (B,) labels or None. Returns (B, C_out, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet expects x of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        temb = self.temb(ddpm_timestep_embedding(t, self.ch).to(x.dtype))
        if self.class_emb is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            temb = temb + self.class_emb(y)
        elif y is not None:
            raise ValueError("y was given but this UNet has num_classes=None (not class-conditional)")

        hs = [self.conv_in(x)]
        for stage in self.down:
            for block, attn in zip(stage.blocks, stage.attns):
                hs.append(attn(block(hs[-1], temb)))
            if hasattr(stage, "downsample"):
                hs.append(stage.downsample(hs[-1]))
        h = hs[-1]
        h = self.mid[2](self.mid[1](self.mid[0](h, temb)), temb)
        for stage in self.up:
            for block, attn in zip(stage.blocks, stage.attns):
                h = attn(block(torch.cat([h, hs.pop()], dim=1), temb))
            if hasattr(stage, "upsample"):
                h = stage.upsample(h, hs[-1].shape[-2:])
        return self.conv_out(F.silu(self.norm_out(h)))


def guided(model: nn.Module, y: torch.Tensor, w: float):
    """Classifier-free guidance (Ho & Salimans 2022, Eq. 6): ε̃ = (1 + w) ε_θ(x_t, t, y) − w ε_θ(x_t, t, ∅).

    Returns a callable model(x_t, t) for :func:`minidiff.samplers.sample`. ``model``: a class-conditional
    network (``num_classes`` set; label ``num_classes`` is the null label ∅), such as :class:`UNet` or
    :class:`minidiff.guidance.ExactConditionalEps`; ``y``: (B,) labels; ``w`` ≥ 0 the guidance strength
    (w = 0: the conditional model; the guidance scale of diffusers is 1 + w). One batched call per step
    evaluates both predictions. Chapter "Classifier-free guidance".
    """
    from ..guidance import check_guidance, guided_eps

    if getattr(model, "num_classes", None) is None:
        raise ValueError("guided() needs a class-conditional network (num_classes set)")
    w = check_guidance(w)
    if y.dim() != 1 or not 0 <= int(y.min()) <= int(y.max()) <= model.num_classes:
        raise ValueError(f"y must be (B,) labels in [0, {model.num_classes}] ({model.num_classes}: the null label), "
                         f"got shape {tuple(y.shape)} with values {y.unique().tolist()[:12]}")

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        null = torch.full_like(y, model.num_classes)
        out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        cond, uncond = out.chunk(2)
        if getattr(model, "learn_variance", False):  # guide the ε half only; keep the conditional variance output
            (cond, var), uncond = cond.chunk(2, dim=1), uncond.chunk(2, dim=1)[0]
            return torch.cat([guided_eps(cond, uncond, w), var], dim=1)
        return guided_eps(cond, uncond, w)

    return eps


def from_diffusers_state_dict(sd: dict) -> dict:
    """A diffusers ``UNet2DModel`` state dict renamed for :class:`UNet` (q, k, v fused into one 1x1 conv).

    diffusers' DDPM models (e.g. ``google/ddpm-cifar10-32``, a port of the paper's released CIFAR-10
    checkpoint) use the official architecture, so ``build_unet("cifar10").load_state_dict(
    from_diffusers_state_dict(UNet2DModel.from_pretrained(...).state_dict()))`` should load them.
    A test copies the weights of a randomly initialized UNet2DModel and checks that the two forward
    passes agree. No released checkpoint was loaded, because the tests never download.
    """
    out, qkv = {}, {}
    for name, value in sd.items():
        n = (name.replace("time_embedding.linear_1", "temb.0").replace("time_embedding.linear_2", "temb.2")
             .replace("down_blocks", "down").replace("up_blocks", "up").replace(".resnets.", ".blocks.")
             .replace(".attentions.", ".attns.").replace("downsamplers.0", "downsample")
             .replace("upsamplers.0", "upsample").replace("time_emb_proj", "temb_proj")
             .replace("conv_shortcut", "shortcut").replace("group_norm", "norm").replace("to_out.0", "proj_out")
             .replace("conv_norm_out", "norm_out"))
        n = n.replace("mid_block.blocks.0", "mid.0").replace("mid_block.attns.0", "mid.1") \
             .replace("mid_block.blocks.1", "mid.2")
        if ".to_q." in n or ".to_k." in n or ".to_v." in n:
            qkv[n] = value
            continue
        if "proj_out.weight" in n and value.dim() == 2:
            value = value[:, :, None, None]  # Linear (C, C) -> 1x1 conv
        out[n] = value
    for n in [k for k in qkv if ".to_q." in k]:
        parts = [qkv[n.replace(".to_q.", f".to_{c}.")] for c in "qkv"]
        fused = torch.cat(parts)
        out[n.replace(".to_q.", ".qkv.")] = fused[:, :, None, None] if fused.dim() == 2 else fused
    return out


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
