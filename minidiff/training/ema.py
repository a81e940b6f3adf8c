"""An exponential moving average of the weights, θ_ema ← d·θ_ema + (1 − d)·θ (decay d = 0.9999).

The paper reports samples and metrics of the EMA weights (Ho et al. 2020, Appendix B).
Chapter "Training on images".
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Holds a frozen copy of ``model`` and moves it towards the live weights after each step."""

    def __init__(self, model: nn.Module, decay: float = 0.9999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got decay = {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """θ_ema ← θ_ema + (1 − d)(θ − θ_ema), one fused op over all parameters; buffers are copied."""
        ema_params = [p for p in self.model.parameters()]
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
