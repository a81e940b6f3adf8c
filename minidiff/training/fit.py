"""A minimal training loop (Algorithm 1) for data that fits in memory, such as the 2D toys.

Chapter "Training a denoiser". The image trainer with checkpoints, EMA and AMP is
:mod:`minidiff.training.trainer`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..losses import training_losses
from ..schedules import Schedule
from .ema import EMA


def fit(
    model: nn.Module, data: torch.Tensor, schedule: Schedule, *, steps: int = 5000,
    batch_size: int = 512, lr: float = 2e-3, loss: str = "simple", parameterization: str = "eps",
    variance: str = "fixed_small", decoder: str = "discrete", lr_decay: bool = True,
    ema_decay: float | None = 0.999, seed: int = 0, progress: bool = True,
) -> list[float]:
    """Train ``model`` on ``data`` (N, D) with Adam for ``steps`` steps; returns the loss per step.

    Algorithm 1: draw x_0 from the data, t ~ U{1..T}, ε ~ N(0, I), and step on the loss. The loss
    options and their defaults are those of :func:`minidiff.training_losses` (the paper's; toy data
    trained with ``loss="vlb"``/``"hybrid"`` should pass ``decoder="continuous"``).
    ``lr_decay`` anneals the learning rate to 0 with a cosine (an option; the paper keeps it fixed).
    ``ema_decay`` = d keeps an exponential moving average of the weights (:class:`minidiff.training.EMA`,
    with its warm-up) and copies it into ``model`` at the end, so the model samples with the EMA
    weights, as the paper's samples are (Appendix B); None keeps the last step's weights. With the
    warm-up, the n-th update's decay is min(d, (1 + n)/(10 + n)), which reaches d = 0.999 only after
    8,990 updates: a run of 5,000 steps averages weights that are on average 500 steps old.
    The defaults (5,000 steps of batch 512, lr 2e-3 with the cosine decay, EMA 0.999) with
    ``MLPDenoiser(dim=2)`` are chapter 3's recipe: about a minute on one CPU thread, and the best recipe
    measured on the held-out 2D toys (bench/quality_2d.py, config ``fourier_ema``), though it still
    misses the held-out bar of issue 11 (bench/quality_2d_measured.md).
    """
    from tqdm.auto import tqdm

    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got steps = {steps}, batch_size = {batch_size}")
    if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be None or in [0, 1), got ema_decay = {ema_decay}")
    device = next(model.parameters()).device
    data = data.to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if lr_decay else None
    ema = EMA(model, ema_decay) if ema_decay is not None else None
    model.train()
    losses: list[float] = []
    bar = tqdm(range(steps), disable=not progress, desc="training")
    for step in bar:
        idx = torch.randint(0, data.shape[0], (batch_size,), device=device, generator=gen)
        batch = training_losses(model, data[idx], schedule, loss=loss, parameterization=parameterization,
                                variance=variance, decoder=decoder, generator=gen).mean()
        opt.zero_grad(set_to_none=True)
        batch.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if ema is not None:
            ema.update(model)
        losses.append(batch.item())
        if step % 100 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    if ema is not None:
        model.load_state_dict(ema.state_dict())
    model.eval()
    return losses
