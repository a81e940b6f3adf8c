"""Sinusoidal timestep embeddings (Transformer positional encoding; DDPM Appendix B).

Two variants, both used: :func:`timestep_embedding` (cos first, for the Part I MLP) and
:func:`ddpm_timestep_embedding` (the official code's, for the U-Net, so released weights load).
Networks are called as ``model(x_t, t)`` with the paper's t = 1..T; both embeddings embed the
0-indexed ``to_zero_indexed(t) = t − 1`` that the official DDPM code and diffusers feed their
networks, so weights are interchangeable with theirs (book page "Notation": the one place where
minidiff meets 0-indexed time).
"""

from __future__ import annotations

import math

import torch

from ..schedules import to_zero_indexed


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Embed the paper's timesteps t: (B,) (integer or real) into (B, dim) cosines and sines of t − 1.

    Transformer positional encoding (DDPM Appendix B). The embedded value is ``to_zero_indexed(t)``
    = t − 1, the 0-indexed timestep of the official DDPM code and diffusers (so t = 1 embeds 0).
    Frequencies run geometrically from 1 to 1/max_period; an odd ``dim`` is padded with a zero.
    """
    if dim < 2:
        raise ValueError(f"dim must be >= 2, got dim = {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = to_zero_indexed(t).float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


def ddpm_timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """The official code's sinusoidal embedding of t: (B,) -> (B, dim): [sin(t ω_k), cos(t ω_k)].

    ω_k = max_period^(−k/(dim/2 − 1)), k = 0..dim/2−1 (``get_timestep_embedding`` in
    ``diffusion_tf/nn.py``). It differs from :func:`minidiff.nets.timestep_embedding` only in the
    order (sin first) and the frequency spacing; matching the official code exactly keeps the
    network weight-compatible with the released DDPM checkpoints (and diffusers' ports of them).
    Like the official code, it embeds the 0-indexed timestep ``to_zero_indexed(t)`` = t − 1 of the
    paper's t: (B,), so ``UNet(x, t)`` equals diffusers' ``UNet2DModel(x, t − 1)``.
    """
    if dim < 4 or dim % 2:
        raise ValueError(f"dim must be even and >= 4, got dim = {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / (half - 1))
    args = to_zero_indexed(t).float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


def fourier_features(x: torch.Tensor, n: int, scale: float = 25.0, max_period: float = 10000.0) -> torch.Tensor:
    """Embed each coordinate of x: (B, D) into n cosines and sines: (B, D·n), the coordinates in order.

    Coordinate x_i becomes [cos(s·x_i·ω_k) for k < n/2] + [sin(s·x_i·ω_k) for k < n/2] with the
    frequencies ω_k = max_period^(−k/(n/2)) of :func:`timestep_embedding`, times ``scale`` = s: the
    sinusoidal input features ("Fourier features", Tancik et al. 2020) with which a small MLP can
    draw sharp edges and thin curves of 2D data (tiny-diffusion embeds x so, with s = 25).
    Chapter "Training a denoiser".
    """
    if n < 2 or n % 2:
        raise ValueError(f"n must be even and >= 2, got n = {n}")
    half = n // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = scale * x.float()[:, :, None] * freqs  # (B, D, n/2)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).flatten(1)
