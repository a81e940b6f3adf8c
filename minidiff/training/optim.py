"""The optimizer step's settings: the mixed-precision mode and the learning-rate warm-up.

:func:`resolve_amp` turns ``TrainConfig.amp`` into an autocast dtype and whether a GradScaler is
needed; :func:`warmup_lr` is the official code's linear warm-up of Adam's learning rate.
Chapter "Training on images".
"""

from __future__ import annotations

import torch


def _native_bf16() -> bool:
    """True on GPUs with bf16 arithmetic (compute capability 8.0+); a T4 (7.5) only emulates it, slowly."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no including_emulation and reports native support only
        return torch.cuda.is_bf16_supported()


def resolve_amp(amp: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use a GradScaler): bf16 where the GPU supports it, else fp16 + scaler; off on CPU."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None, False
    if amp == "auto":
        amp = "bf16" if _native_bf16() else "fp16"
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device, got device = {device}; use amp='bf16' or 'off'")
    return (torch.bfloat16, False) if amp == "bf16" else (torch.float16, True)


def warmup_lr(step: int, lr: float, warmup: int) -> float:
    """lr · min(step / warmup, 1): the official code's linear warm-up (step counts from 0)."""
    return lr if warmup == 0 else lr * min(step / warmup, 1.0)


__all__ = ["resolve_amp", "warmup_lr"]
