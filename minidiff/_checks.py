"""Input validation shared by the public functions: errors that name the bad value."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def check_choice(name: str, value: str, valid: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``valid``; otherwise raise a ValueError listing them."""
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid names are: {', '.join(map(repr, valid))}")
    return value


def check_float_tensor(name: str, x: torch.Tensor) -> torch.Tensor:
    """Raise a TypeError unless ``x`` is a floating-point tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
            f"convert it first, e.g. {name}.float()"
        )
    return x


def check_timesteps(t: torch.Tensor | int, T: int, batch: int | None = None) -> torch.Tensor:
    """Validate integer timesteps ``t`` in [0, T) and, if given, their batch size.

    Accepts a Python int (broadcast later) or an integer tensor of shape () or (B,).
    """
    if isinstance(t, int):
        t = torch.tensor(t)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be an int or an integer tensor, got {type(t).__name__}")
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(f"t must hold integer timesteps, got dtype {t.dtype}")
    if t.dim() > 1:
        raise ValueError(f"t must have shape () or (B,), got {tuple(t.shape)}")
    if t.numel() > 0:
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= T:
            bad = lo if lo < 0 else hi
            raise ValueError(f"t must lie in [0, T) = [0, {T}), got t = {bad}")
    if batch is not None and t.dim() == 1 and t.shape[0] not in (1, batch):
        raise ValueError(
            f"t has batch size {t.shape[0]} but x has batch size {batch}; "
            "they must match (or t must be a single timestep)"
        )
    return t
