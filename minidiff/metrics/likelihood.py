"""Bits/dim of held-out images: the negative ELBO with the discretized decoder (Eq. 13), in batches.

The bound itself is :func:`minidiff.losses.negative_elbo` (Eq. 5: L_T + Σ_{t>1} L_{t−1} + L_0, with
L_0 the discretized Gaussian decoder of Eq. 13, in bits/dim); this module only runs it over a data
set, one batch at a time, with a progress bar, and averages. One evaluation costs T network calls
per batch (T = 1000 for the paper's schedule). The paper reports ≤ 3.70 (L_vlb) and ≤ 3.75
(L_simple) bits/dim on the CIFAR-10 test set (Ho et al. 2020, Table 1). Chapter "DDPM on MNIST".
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..data.images import to_unit_range
from ..losses import Model, negative_elbo
from ..schedules import Schedule


class BitsPerDim(NamedTuple):
    """The mean bits/dim over the images, its standard error over images, and each image's value (N,)."""

    mean: float
    se: float
    per_image: torch.Tensor

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.se:.3f} bits/dim (n = {len(self.per_image)})"


def bits_per_dim(model: Model, images: torch.Tensor, schedule: Schedule, *, batch_size: int = 100,
                 seed: int = 0, progress: bool = True, device: torch.device | str | None = None,
                 **elbo_options) -> BitsPerDim:
    """The negative ELBO in bits/dim (Eqs. 5 and 13) of each of ``images``, in batches of ``batch_size``.

    images: (N, C, H, W) uint8 {0..255} (scaled to [−1, 1] here, Sec. 3.3) or float already in [−1, 1].
    One generator seeded with ``seed`` on ``device`` (default: the model's) draws the x_t of every
    batch in turn, so the result equals :func:`~minidiff.losses.negative_elbo` called batch by batch
    with that generator. ``elbo_options`` (``parameterization``, ``variance``, ``decoder``,
    ``model_kwargs``) go to ``negative_elbo``; its default decoder is the discretized one of Eq. 13.
    """
    from tqdm.auto import tqdm

    if not isinstance(images, torch.Tensor) or images.dim() < 2 or len(images) < 1:
        raise ValueError(f"images must be a non-empty tensor (N, C, H, W), got {getattr(images, 'shape', images)!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got batch_size = {batch_size!r}")
    if device is None:
        params = list(getattr(model, "parameters", list)())
        device = params[0].device if params else torch.device("cpu")
    gen = torch.Generator(device=device).manual_seed(seed)
    values = []
    with torch.no_grad(), tqdm(total=len(images), disable=not progress, desc="bits/dim", unit="img") as bar:
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device)
            x0 = to_unit_range(x) if x.dtype == torch.uint8 else x
            values.append(negative_elbo(model, x0, schedule, generator=gen, **elbo_options)["total"].cpu())
            bar.update(len(x))
    per_image = torch.cat(values)
    se = float(per_image.std()) / math.sqrt(len(per_image)) if len(per_image) > 1 else math.nan
    return BitsPerDim(float(per_image.mean()), se, per_image)
