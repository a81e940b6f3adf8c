"""Named U-Net configurations: the paper's CIFAR-10 model, a small MNIST one, and a tiny one for CI.

``cifar10`` is the paper's 35.7M-parameter network (Ho et al. 2020, Appendix B: "our CIFAR10 model
has 35.7 million parameters"): ch 128, ch_mult (1, 2, 2, 2), 2 residual blocks per level,
self-attention at 16x16, dropout 0.1. Chapter "The U-Net".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._checks import check_choice
from .unet import UNet


@dataclass(frozen=True)
class Preset:
    """A U-Net configuration and the images it is made for.

    ``unet``: keyword arguments of :class:`UNet`; ``image_shape``: (C, H, W); ``dataset``: the data
    set it is trained on by default (see :data:`minidiff.data.DATASETS`).
    """

    name: str
    unet: dict[str, Any] = field(default_factory=dict)
    image_shape: tuple[int, int, int] = (3, 32, 32)
    dataset: str = "cifar10"
    description: str = ""


PRESETS: dict[str, Preset] = {
    "cifar10": Preset(
        "cifar10",
        dict(in_channels=3, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,),
             dropout=0.1, resolution=32),
        (3, 32, 32), "cifar10", "the paper's CIFAR-10 U-Net (Appendix B), 35.7M parameters",
    ),
    "mnist": Preset(
        "mnist",
        dict(in_channels=1, ch=64, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(14,),
             dropout=0.1, resolution=28),
        (1, 28, 28), "mnist", "a small U-Net for 28x28 MNIST (28 -> 14 -> 7), attention at 14x14",
    ),
    "tiny": Preset(
        "tiny",
        dict(in_channels=1, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(14,),
             dropout=0.0, resolution=28, num_groups=8),
        (1, 28, 28), "mnist", "a tiny U-Net for tests and CI (seconds per step on a laptop CPU)",
    ),
}


def get_preset(name: str) -> Preset:
    """The :class:`Preset` called ``name``: one of ``cifar10``, ``mnist``, ``tiny``."""
    check_choice("preset", name, PRESETS)
    return PRESETS[name]


def build_unet(preset: str, **overrides: Any) -> UNet:
    """A freshly initialized :class:`UNet` for a preset; ``overrides`` replace its keyword arguments.

    ``build_unet("cifar10")`` has exactly 35,746,307 parameters.
    """
    kwargs = dict(get_preset(preset).unet)
    kwargs.update(overrides)
    return UNet(**kwargs)
