"""Checkpoints that never lose a run: atomic writes, the last K kept, safe loading.

A checkpoint is one ``torch.save`` dict: the model, its EMA, the optimizer and gradient scaler,
the step, every RNG state (CPU, CUDA, the data pipeline's and the noise generator) and the full
config. It is written to a temporary file and moved into place with ``os.replace``, so a crash
mid-write leaves the previous checkpoint intact. Loading uses ``torch.load(weights_only=True)``:
plain tensors and containers only, no arbitrary code. :func:`run_files` finds the checkpoints of a
run already in a folder, so a new run does not write over them by accident. Chapter "Training on images".
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


def run_files(directory: str | os.PathLike) -> list[Path]:
    """The checkpoints of a run already in ``directory``: ``last.pt`` and the ``ckpt-*.pt`` files (may be empty)."""
    directory = Path(directory)
    last = directory / "last.pt"
    return ([last] if last.is_file() else []) + numbered_checkpoints(directory)


def remove_run(directory: str | os.PathLike) -> list[Path]:
    """Delete the run in ``directory``: its checkpoints, ``log.csv`` and ``samples/step-*.png``; return them.

    Only the files the trainer writes are removed; anything else in the folder is left alone.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = run_files(directory)
    removed += [p for p in [directory / "log.csv"] if p.is_file()]
    samples = directory / "samples"
    if samples.is_dir():
        removed += sorted(p for p in samples.iterdir() if re.match(r"^step-\d{8}\.png$", p.name))
    for p in removed:
        p.unlink()
    return removed


def check_run_dir(out: str | Path, *, resume: bool = False, overwrite: bool = False,
                  options: tuple[str, str] = ("resume=True", "overwrite=True")) -> None:
    """Refuse to start a new run in ``out`` over the checkpoints of an earlier one (a ValueError naming it).

    A new run there would restart at step 0, replace ``last.pt``, truncate ``log.csv``, and have its own
    checkpoints pruned first (the old ones have higher step numbers). ``resume`` continues the old run
    from ``last.pt``; ``overwrite`` lets the new run delete it. ``options``: how the caller spells the two.
    """
    out = Path(out)
    if resume and overwrite:
        raise ValueError(f"{options[0]} and {options[1]} exclude each other: continue the run in {out}, or "
                         "delete it and start over, not both")
    if out.exists() and not out.is_dir():
        raise ValueError(f"the run directory {out} exists and is not a directory")
    files = run_files(out)
    if not files or overwrite:
        return
    names = ", ".join(p.name for p in files[:3]) + (", ..." if len(files) > 3 else "")
    if not resume:
        raise ValueError(f"{out} already holds a run ({names}); use {options[0]} to continue it, or "
                         f"{options[1]} to delete its checkpoints and log and start a new run there")
    if not (out / "last.pt").is_file():
        raise ValueError(f"{out} holds numbered checkpoints ({names}) but no last.pt to resume from; copy the one "
                         f"to continue to {out / 'last.pt'}, or use {options[1]} instead of {options[0]}")


def cuda_rng_state(device: torch.device) -> torch.Tensor | None:
    """The CUDA RNG state of the training ``device`` only (None off CUDA), so that a resume on a machine
    with fewer GPUs works (saving every visible GPU's state made it fail with an IndexError)."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def set_cuda_rng_state(saved: torch.Tensor | list | None, device: torch.device) -> None:
    """Restore :func:`cuda_rng_state` on ``device``; nothing off CUDA or when nothing was saved.

    Checkpoints of earlier versions hold a list with every visible GPU's state: the entry of this
    device's index is used if there is one, else the CUDA stream restarts from the seed.
    """
    if device.type != "cuda" or saved is None:
        return
    if isinstance(saved, (list, tuple)):
        index = device.index or 0
        if index >= len(saved):
            return
        saved = saved[index]
    torch.cuda.set_rng_state(saved.cpu(), device)


def _to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor in its dicts, lists and tuples moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


EXPECTED = "a minidiff checkpoint, the PyTorch zip file 'minidiff train' writes (e.g. runs/cpu/last.pt)"


def _describe_file(f, size: int, error: Exception) -> str:
    """What a file that torch.load refused is, in a few words: empty, text, truncated zip, pickle, other bytes."""
    f.seek(0)
    head = f.read(512)
    if size == 0:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        if "weights only" in str(error).lower() or "weights_only" in str(error).lower():
            return "a PyTorch file holding more than tensors (refused: loading it could run code)"
        return f"a truncated or corrupt PyTorch zip file ({size:,} bytes; was a copy or a save interrupted?)"
    if head[:1] == b"\x80":
        return f"a Python pickle ({size:,} bytes; PyTorch's legacy format or other objects), not a zip file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary data of {size:,} bytes in no format minidiff knows"
    if text.isprintable() or all(c.isprintable() or c in "\n\r\t" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file ({size:,} bytes, starting {first!r})"
    return f"binary data of {size:,} bytes in no format minidiff knows"


def load_checkpoint(path: str | os.PathLike, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; raise :class:`CheckpointError` if the file is bad.

    The file is read onto the CPU first, so every failure there means the file cannot be read or is
    not a (well-formed, tensors-only) checkpoint. Moving it to ``map_location`` comes after: an
    unavailable device is a ValueError naming it, never a "corrupt checkpoint".
    """
    from .distributed import resolve_device

    path = Path(path)
    device = resolve_device(str(map_location))  # refuse a device this machine lacks before reading anything
    if path.is_dir():
        hint = f"; did you mean {path / 'last.pt'}?" if (path / "last.pt").is_file() else ""
        raise CheckpointError(f"{path} is a directory, not a checkpoint file{hint}")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below; only opening can fail for file-system reasons)
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from e
    with f:
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 (pickle, zip, OS and torch errors once the file is open mean "bad file")
            what = _describe_file(f, path.stat().st_size, e)
            raise CheckpointError(f"{path} is not a readable checkpoint: it is {what}; expected {EXPECTED}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a minidiff checkpoint (no format {FORMAT!r}); "
                              f"expected {EXPECTED}")
    for key in ("step", "config", "model", "ema"):
        if key not in state:
            raise CheckpointError(f"{path} is incomplete: it has no {key!r} entry")
    return state if device.type == "cpu" else _to_device(state, device)


def model_from_checkpoint(path: str | os.PathLike, weights: str = "ema", device: torch.device | str = "cpu"):
    """Rebuild the network of a checkpoint from the checkpoint alone and load its ``ema`` (default) or
    ``model`` weights: the U-Net arguments it records (``net``), else those of its config.

    Returns (model in eval mode, config dict, step).
    """
    from ..nets.unet import UNet
    from .config import TrainConfig, build_model

    if weights not in ("ema", "model"):
        raise ValueError(f"weights must be 'ema' or 'model', got weights = {weights!r}")
    state = load_checkpoint(path, map_location=device)
    try:
        config = TrainConfig.from_dict(state["config"])
        model = UNet(**state["net"]) if "net" in state else build_model(config)
        model.load_state_dict(state[weights])
    except (ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{path} does not match its own config: {str(e).splitlines()[0]}") from e
    return model.to(device).eval(), state["config"], int(state["step"])
