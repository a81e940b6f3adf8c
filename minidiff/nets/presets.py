"""Named U-Net configurations with the training budget each is made for.

``cifar10`` is the paper's 35.7M-parameter network (Ho et al. 2020, Appendix B: "our CIFAR10 model
has 35.7 million parameters"): ch 128, ch_mult (1, 2, 2, 2), 2 residual blocks per level,
self-attention at 16x16, dropout 0.1, trained with the paper's recipe (:data:`PAPER_TRAIN`).
``cpu`` is a 0.28M-parameter MNIST network with a short-run recipe that gives recognizable digits
in about 30 minutes on one CPU thread; ``cifar-cpu`` its RGB 32x32 counterpart for the CIFAR-10
chapter's CPU budget. Chapter "The U-Net".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._checks import check_choice
from .unet import UNet

# The paper's optimizer recipe (Sec. 4, Appendix B): Adam 2e-4, batch 128, 5,000 warm-up steps,
# EMA 0.9999, 800k steps on CIFAR-10.
PAPER_TRAIN: dict[str, Any] = {"steps": 800_000, "batch_size": 128, "lr": 2e-4, "warmup": 5000, "ema_decay": 0.9999}

# The network fields a TrainConfig may override (None there: the preset's value).
WIDTH_DEPTH_FIELDS = ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout")


@dataclass(frozen=True)
class Preset:
    """A U-Net configuration, the images it is made for, and its training defaults.

    ``unet``: keyword arguments of :class:`UNet`; ``image_shape``: (C, H, W); ``dataset``: the data
    set it is trained on by default (see :data:`minidiff.data.DATASETS`); ``train``: the defaults of
    the :class:`~minidiff.training.TrainConfig` fields ``steps``, ``batch_size``, ``lr``, ``warmup``
    and ``ema_decay`` (a field left at None takes the preset's value); ``hardware``: what it is sized for.
    """

    name: str
    unet: dict[str, Any] = field(default_factory=dict)
    image_shape: tuple[int, int, int] = (3, 32, 32)
    dataset: str = "cifar10"
    description: str = ""
    train: dict[str, Any] = field(default_factory=lambda: dict(PAPER_TRAIN))
    hardware: str = "gpu"


PRESETS: dict[str, Preset] = {
    "cifar10": Preset(
        "cifar10",
        dict(in_channels=3, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,),
             dropout=0.1, resolution=32),
        (3, 32, 32), "cifar10", "the paper's CIFAR-10 U-Net (Appendix B), 35.7M parameters, the paper's recipe",
        dict(PAPER_TRAIN), "gpu",
    ),
    "mnist": Preset(
        "mnist",
        dict(in_channels=1, ch=64, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(14,),
             dropout=0.1, resolution=28),
        (1, 28, 28), "mnist", "a 6.5M-parameter U-Net for 28x28 MNIST (28 -> 14 -> 7), attention at 14x14",
        {**PAPER_TRAIN, "steps": 20_000}, "gpu",
    ),
    "cpu": Preset(
        "cpu",
        dict(in_channels=1, ch=16, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(7,),
             dropout=0.0, resolution=28, num_groups=8),
        (1, 28, 28), "mnist", "a 0.28M-parameter U-Net for 28x28 MNIST, attention at 7x7, with a short-run "
        "recipe (batch 64, lr 1e-3, 100 warm-up steps, EMA 0.995): digits in about 30 min on one CPU thread",
        dict(steps=2700, batch_size=64, lr=1e-3, warmup=100, ema_decay=0.995), "cpu",
    ),
    "cifar-cpu": Preset(
        "cifar-cpu",
        dict(in_channels=3, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(8,),
             dropout=0.1, resolution=32, num_groups=8),
        (3, 32, 32), "cifar10", "a small RGB U-Net for 32x32 images (32 -> 16 -> 8), attention at 8x8, dropout "
        "0.1, 1.1M parameters, with a short-run recipe (400 steps at batch 64, lr 1e-3, 40 warm-up steps, EMA "
        "0.99) sized for about 20 minutes on one CPU thread",
        dict(steps=400, batch_size=64, lr=1e-3, warmup=40, ema_decay=0.99), "cpu",
    ),
    "tiny": Preset(
        "tiny",
        dict(in_channels=1, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(14,),
             dropout=0.0, resolution=28, num_groups=8),
        (1, 28, 28), "mnist", "a tiny U-Net for tests and CI (seconds per step on a laptop CPU)",
        {**PAPER_TRAIN, "steps": 1000}, "cpu",
    ),
}


def get_preset(name: str) -> Preset:
    """The :class:`Preset` called ``name``: one of ``cifar10``, ``mnist``, ``cpu``, ``cifar-cpu``, ``tiny``."""
    check_choice("preset", name, PRESETS)
    return PRESETS[name]


def build_unet(preset: str, **overrides: Any) -> UNet:
    """A freshly initialized :class:`UNet` for a preset; ``overrides`` replace its keyword arguments.

    ``build_unet("cifar10")`` has exactly 35,746,307 parameters; ``build_unet("cpu")`` 280,177.
    """
    return UNet(**unet_kwargs(preset, **overrides))


def unet_kwargs(preset: str, **overrides: Any) -> dict[str, Any]:
    """The :class:`UNet` keyword arguments of a preset with ``overrides`` applied (what a checkpoint records)."""
    kwargs = dict(get_preset(preset).unet)
    kwargs.update(overrides)
    return kwargs
