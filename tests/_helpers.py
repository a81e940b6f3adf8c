"""Helpers shared by several test modules (imported as ``from _helpers import ...``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch


def perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give the zero-initialized layers random weights so that every path affects the output; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()
