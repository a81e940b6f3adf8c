"""Sinusoidal timestep embedding (Transformer positional encoding; DDPM Appendix B)."""

from __future__ import annotations

import math

import torch


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Embed integer (or real) timesteps t: (B,) into (B, dim) sines and cosines.

    Frequencies run geometrically from 1 to 1/max_period; an odd ``dim`` is padded with a zero.
    """
    if dim < 2:
        raise ValueError(f"dim must be >= 2, got dim = {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb
