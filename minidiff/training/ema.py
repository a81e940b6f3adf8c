"""An exponential moving average of the weights, θ_ema ← d_n·θ_ema + (1 − d_n)·θ (long-run decay d = 0.9999).

The paper reports samples and metrics of the EMA weights (Ho et al. 2020, Appendix B). With a fixed
d = 0.9999 the EMA of a 2,000-step run is still 0.9999^2000 = 82 % the initial (random) weights, so
a short run samples noise. The warm-up (on by default) uses d_n = min(d, (1 + n) / (10 + n)) at the
n-th update (n = 0, 1, ...), as TensorFlow's ``ExponentialMovingAverage(num_updates=n)`` does: the
initial weights then keep a share ∏_n d_n = 9!·N!/(N + 9)! after N updates (2.3e-13 after 100),
the weights it averages are on average N/10 steps old, and d_n = d = 0.9999 from n = 89,990 on.
In a run of the paper's 800,000 steps, the updates where the warm-up acts weigh
0.9999^710,000 ≈ e^−71 in the final EMA: the paper's result.
Chapter "Training on images".
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay_at(n: int, decay: float, warmup: bool = True) -> float:
    """The decay of the n-th EMA update (n counts from 0): min(d, (1 + n) / (10 + n)) with warm-up, else d."""
    return min(decay, (1 + n) / (10 + n)) if warmup else decay


class EMA:
    """Holds a frozen copy of ``model`` and moves it towards the live weights after each step.

    ``num_updates`` counts the updates so far (a checkpoint stores it, so a resumed run continues the warm-up).
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got decay = {decay}")
        self.decay, self.warmup, self.num_updates = decay, warmup, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """θ_ema ← θ_ema + (1 − d_n)(θ − θ_ema), one fused op over all parameters; buffers are copied."""
        d = ema_decay_at(self.num_updates, self.decay, self.warmup)
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - d)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> dict:
        """The EMA weights (a state dict of the network, loadable into it directly)."""
        return self.model.state_dict()

    def load_state_dict(self, state: dict, num_updates: int | None = None) -> None:
        self.model.load_state_dict(state)
        if num_updates is not None:
            self.num_updates = int(num_updates)
