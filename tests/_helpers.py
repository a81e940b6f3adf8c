"""Helpers shared by several test modules (imported as ``from _helpers import ...``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch


def perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give the zero-initialized layers random weights so that every path affects the output; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


def load_bench(name: str) -> ModuleType:
    """Import bench/<name>.py (the benches are scripts, not a package) so that a test can call its functions."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
