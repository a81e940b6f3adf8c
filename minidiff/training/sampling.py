"""Images from a trained network of a preset: the sample grids of a run and ``minidiff sample``.

Algorithm 2 (or DDIM) through :func:`minidiff.samplers.sample`, with the run's schedule and
parameterization read from its :class:`~minidiff.training.config.TrainConfig`.
Chapter "Training on images".
"""

from __future__ import annotations

import torch

from ..samplers import sample
from ..schedules import get_schedule
from .config import TrainConfig


@torch.no_grad()
def sample_images(model, config: TrainConfig | dict, n: int, *, sampler: str = "ddim", steps: int | None = 50,
                  seed: int = 0, device: torch.device | str = "cpu", labels: torch.Tensor | None = None,
                  progress: bool = False) -> torch.Tensor:
    """n images (n, C, H, W) in [−1, 1] from a trained network, with x̂_0 clipped to [−1, 1] as in the paper.

    Uses :func:`minidiff.samplers.sample`; class-conditional networks get ``labels`` (default: 0, 1, 2, ...).
    """
    from ..nets.presets import get_preset

    c = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    shape = (n, *get_preset(c.preset).image_shape)
    kwargs = {}
    if getattr(model, "num_classes", None) is not None:
        y = labels if labels is not None else torch.arange(n) % model.num_classes
        kwargs["model_kwargs"] = {"y": y.to(device)}
    return sample(model, shape, get_schedule(c.schedule, c.T), sampler=sampler, steps=steps,
                  parameterization=c.parameterization, variance=c.variance, clip_x0=1.0, seed=seed,
                  device=device, progress=progress, **kwargs)


__all__ = ["sample_images"]
