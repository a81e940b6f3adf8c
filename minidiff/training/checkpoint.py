"""Checkpoints that never lose a run: atomic writes, the last K kept, safe loading.

A checkpoint is one ``torch.save`` dict: the model, its EMA, the optimizer and gradient scaler,
the step, every RNG state (CPU, CUDA, the data pipeline's and the noise generator) and the full
config. It is written to a temporary file and moved into place with ``os.replace``, so a crash
mid-write leaves the previous checkpoint intact. Loading uses ``torch.load(weights_only=True)``:
plain tensors and containers only, no arbitrary code. Chapter "Training on images".
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

FORMAT = "minidiff-checkpoint/1"
_NUMBERED = re.compile(r"^ckpt-(\d{8})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, not a minidiff checkpoint, or from another run."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def link_last(path: Path, last: Path) -> None:
    """Point ``last`` at ``path`` atomically (a hard link where the file system allows, else a copy)."""
    tmp = last.with_name(f".{last.name}.tmp{os.getpid()}")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, last)


def numbered_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """``ckpt-XXXXXXXX.pt`` files in ``directory``, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NUMBERED.match(p.name))


def save_numbered(state: dict[str, Any], directory: str | os.PathLike, step: int, keep: int) -> Path:
    """Save ``ckpt-{step:08d}.pt``, point ``last.pt`` at it, and delete all but the newest ``keep``."""
    directory = Path(directory)
    path = save_checkpoint(state, directory / f"ckpt-{step:08d}.pt")
    link_last(path, directory / "last.pt")
    for old in numbered_checkpoints(directory)[:-keep]:
        old.unlink()
    return path


def load_checkpoint(path: str | os.PathLike, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; raise :class:`CheckpointError` on anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 (pickle, zip and torch errors all mean "corrupt")
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or truncated?): "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a minidiff checkpoint (expected format {FORMAT!r})")
    for key in ("step", "config", "model", "ema"):
        if key not in state:
            raise CheckpointError(f"{path} is incomplete: it has no {key!r} entry")
    return state


def model_from_checkpoint(path: str | os.PathLike, weights: str = "ema", device: torch.device | str = "cpu"):
    """Rebuild the network of a checkpoint and load its ``ema`` (default) or ``model`` weights.

    Returns (model in eval mode, config dict, step).
    """
    from .config import TrainConfig, build_model

    if weights not in ("ema", "model"):
        raise ValueError(f"weights must be 'ema' or 'model', got weights = {weights!r}")
    state = load_checkpoint(path, map_location=device)
    try:
        config = TrainConfig.from_dict(state["config"])
        model = build_model(config)
        model.load_state_dict(state[weights])
    except (ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{path} does not match its own config: {str(e).splitlines()[0]}") from e
    return model.to(device).eval(), state["config"], int(state["step"])
