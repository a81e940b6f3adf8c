"""diffusers' ``UNet2DModel`` as an independent peer of :class:`~minidiff.nets.UNet`: the same network, layer for layer.

diffusers ported the official DDPM network (``google/ddpm-cifar10-32`` is the paper's CIFAR-10 checkpoint).
:func:`diffusers_config` gives the ``UNet2DModel`` arguments of a minidiff configuration, :func:`diffusers_unet`
builds it, and :func:`minidiff.nets.from_diffusers_state_dict` renames its weights for minidiff, so that
``UNet(x, t)`` equals ``UNet2DModel(x, t − 1).sample`` (diffusers counts time from 0; book page "Notation").
Used by the benches, the tests and chapter "The U-Net". diffusers is optional (``pip install diffusers``;
preinstalled on Colab).
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from .presets import unet_kwargs


def diffusers_config(unet_kwargs: dict[str, Any]) -> dict[str, Any]:
    """UNet2DModel keyword arguments of the network a minidiff configuration builds (same layers, same parameters).

    ``unet_kwargs``: :class:`~minidiff.nets.UNet` arguments (``get_preset(name).unet``). Attention goes to the
    levels whose size is in ``attn_resolutions``; one head of all channels, as in the paper.
    """
    ch, mult, res = unet_kwargs["ch"], tuple(unet_kwargs["ch_mult"]), unet_kwargs["resolution"]
    attn = set(unet_kwargs["attn_resolutions"])
    levels = []
    for level in range(len(mult)):
        levels.append(res in attn)
        if level != len(mult) - 1:
            res = math.ceil(res / 2)
    return dict(
        sample_size=unet_kwargs["resolution"], in_channels=unet_kwargs["in_channels"],
        out_channels=unet_kwargs["in_channels"], layers_per_block=unet_kwargs["num_res_blocks"],
        block_out_channels=tuple(ch * m for m in mult),
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in levels),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(levels)),
        norm_num_groups=unet_kwargs.get("num_groups", 32), norm_eps=1e-6, dropout=unet_kwargs["dropout"],
        downsample_padding=0, flip_sin_to_cos=False, freq_shift=1, attention_head_dim=None,
    )


def diffusers_unet(preset: str = "cifar10", **overrides: Any) -> nn.Module:
    """diffusers' ``UNet2DModel`` of a preset (``overrides`` as in :func:`~minidiff.nets.build_unet`), randomly
    initialized; for ``cifar10`` the configuration of ``google/ddpm-cifar10-32`` (35,746,307 parameters).

    Raises ImportError with the install command when diffusers is missing.
    """
    try:
        import diffusers
    except ImportError as e:
        raise ImportError("diffusers is not installed; `pip install diffusers` (Colab has it preinstalled) "
                          "to build the peer network") from e
    return diffusers.UNet2DModel(**diffusers_config(unet_kwargs(preset, **overrides)))
