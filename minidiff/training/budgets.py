"""The three budgets of every image chapter (smoke, cpu, gpu), chosen in this one place.

* ``smoke``: CI and ``MINIDIFF_SMOKE=1``: seconds, only to show that every cell runs;
* ``cpu``: a laptop or a 2-core machine, at most 60 minutes per chapter;
* ``gpu``: a Colab T4, at most 30 minutes per chapter;
* ``paper`` (chapter "CIFAR-10: the paper's recipe" only): the paper's full 800k-step run, for several GPUs
  with ``torchrun`` (:data:`EXTRA_BUDGETS`).

A chapter asks :func:`budget_config` for the :class:`~minidiff.training.TrainConfig` of one of its
runs, then :func:`train_or_load` either loads a finished run of the same config from ``runs/`` (for
example one that ``minidiff train`` wrote in the background) or trains it, and says which it did.
:func:`run_card` prints what produced the chapter's outputs. Chapters "DDPM on MNIST" and "The U-Net".
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import smoke
from .._checks import check_choice
from .checkpoint import load_checkpoint, model_from_checkpoint
from .config import TrainConfig, config_mismatch

BUDGET_NAMES = ("smoke", "cpu", "gpu")
# Budgets that only some chapters have: the CIFAR-10 chapter scales to the paper's full run by this one name.
EXTRA_BUDGETS: dict[str, tuple[str, ...]] = {"cifar10": ("paper",)}

# What each budget is sized for, printed on the run card.
HARDWARE = {"smoke": "CI, seconds (only shows that every cell runs)",
            "cpu": "a laptop or 2 CPU cores, <= 60 min per chapter",
            "gpu": "a Colab T4 GPU, <= 30 min per chapter",
            "paper": "the paper's full run: 800k steps at batch 128, days on one GPU; several GPUs with torchrun"}

_SMOKE = dict(preset="cpu", data="mnist-offline", steps=20, batch_size=16, warmup=2)
_CPU = dict(preset="cpu", data="mnist-offline")  # the preset's own recipe: 2,700 steps, batch 64, lr 1e-3
_GPU = dict(preset="mnist", data="mnist")
# CIFAR-10. smoke: a 16-channel cifar-cpu network for a few steps; cpu: the cifar-cpu preset's own recipe on
# the offline stand-in (patches of two photographs); gpu: the paper's network at half width (ch 64, 9.0M
# parameters) for 15k steps at batch 128, about 20 min on a T4 by a FLOP-count estimate (chapter "CIFAR-10:
# the paper's recipe"); paper: the cifar10 preset as it is, i.e. PAPER_TRAIN with its 5,000 warm-up steps.
_CIFAR_SMOKE = dict(preset="cifar-cpu", data="cifar10-offline", steps=6, batch_size=8, warmup=1, ch=16)
_CIFAR_CPU = dict(preset="cifar-cpu", data="cifar10-offline", ckpt_every=100)
_CIFAR_GPU = dict(preset="cifar10", data="cifar10", ch=64, steps=15_000, warmup=1000, ema_decay=0.9995,
                  ckpt_every=1000)
_CIFAR_PAPER = dict(preset="cifar10", data="cifar10", warmup=5000, ckpt_every=10_000)

# chapter -> budget -> run name -> TrainConfig fields. A run's directory is runs/<chapter>/<budget>/<run>.
RUNS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "mnist": {
        "smoke": {"main": _SMOKE},
        "cpu": {"main": _CPU},
        "gpu": {"main": {**_GPU, "steps": 15_000}},
    },
    # The paper's Table 2 on MNIST: what the network predicts x which variance x which loss.
    "mnist_ablation": {
        budget: {
            f"{p}-{loss}-{var}": {**base, "parameterization": p, "loss": loss, "variance": var}
            for p in ("mu", "eps")
            for loss, var in (("vlb", "learned_range"), ("vlb", "fixed_large"), ("simple", "fixed_large"))
        }
        # smoke: T = 20 diffusion steps, so that sampling and bits/dim of six rows take seconds
        for budget, base in (("smoke", {**_SMOKE, "steps": 6, "T": 20}), ("cpu", {**_CPU, "steps": 1500}),
                             ("gpu", {**_GPU, "steps": 2500}))
    },
    # Classifier-free guidance (Ho & Salimans 2022): one class-conditional network with a null class.
    "guidance": {
        "smoke": {"main": {**_SMOKE, "class_conditional": True}},
        "cpu": {"main": {**_CPU, "class_conditional": True}},
        "gpu": {"main": {**_GPU, "steps": 15_000, "class_conditional": True}},
    },
    # Chapter "CIFAR-10: the paper's recipe". "resume": a tiny run trained in two halves across a "disconnect".
    "cifar10": {
        "smoke": {"main": _CIFAR_SMOKE, "resume": {**_CIFAR_SMOKE, "ckpt_every": 3}},
        "cpu": {"main": _CIFAR_CPU, "resume": {**_CIFAR_SMOKE, "steps": 10, "ckpt_every": 5}},
        "gpu": {"main": _CIFAR_GPU, "resume": {**_CIFAR_SMOKE, "steps": 10, "ckpt_every": 5}},
        "paper": {"main": _CIFAR_PAPER, "resume": {**_CIFAR_SMOKE, "steps": 10, "ckpt_every": 5}},
    },
    # Chapter "The U-Net": self-attention on vs off, everything else equal.
    "unet_design": {
        budget: {"attention": base, "no_attention": {**base, "attn_resolutions": ()}}
        for budget, base in (("smoke", {**_SMOKE, "steps": 6}), ("cpu", {**_CPU, "steps": 1500}),
                             ("gpu", {**_GPU, "steps": 5000}))
    },
}


def budget_names(chapter: str | None = None) -> tuple[str, ...]:
    """The budgets of ``chapter``: :data:`BUDGET_NAMES` and its :data:`EXTRA_BUDGETS` (None: any chapter's)."""
    if chapter is None:
        return BUDGET_NAMES + tuple(b for extra in EXTRA_BUDGETS.values() for b in extra)
    return BUDGET_NAMES + EXTRA_BUDGETS.get(chapter, ())


def budget_name(budget: str | None = None, chapter: str | None = None) -> str:
    """The budget a chapter runs at: ``budget`` if given, else ``$MINIDIFF_BUDGET``, else ``smoke`` in smoke
    mode, ``gpu`` when CUDA is available and ``cpu`` otherwise. With ``chapter``, one of its
    :func:`budget_names` (``paper`` exists for ``cifar10`` only)."""
    if budget is None:
        budget = os.environ.get("MINIDIFF_BUDGET", "").strip().lower() or (
            "smoke" if smoke.enabled() else "gpu" if torch.cuda.is_available() else "cpu")
    check_choice("budget", budget, budget_names(chapter))
    return budget


def budget_config(chapter: str, run: str, budget: str | None = None, root: str | os.PathLike = "runs",
                  **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of run ``run`` of ``chapter`` at ``budget`` (see :data:`RUNS`), writing to
    ``<root>/<chapter>/<budget>/<run>``; ``overrides`` replace its fields."""
    check_choice("chapter", chapter, RUNS)
    budget = budget_name(budget, chapter)
    runs = RUNS[chapter][budget]
    check_choice("run", run, runs)
    fields = {"out": str(Path(root) / chapter / budget / run), "ckpt_every": 500, "log_every": 50,
              "sample_every": 0, "offline": budget in ("smoke", "cpu"), **runs[run], **overrides}
    return TrainConfig(**fields)


@dataclass
class RunInfo:
    """What :func:`train_or_load` did: ``action`` is ``"trained"``, ``"loaded"`` or ``"diverged"`` (the loss
    or gradients became non-finite: ``message`` says where, and there is no model); ``seconds`` the run's own
    training time (across resumes), ``step`` its last step, ``path`` its checkpoint."""

    action: str
    seconds: float
    step: int
    path: Path
    config: dict[str, Any]
    message: str = ""


DIVERGED = "diverged.txt"


def finished_run(config: TrainConfig) -> Path | None:
    """``<out>/last.pt`` when it holds the same run (:data:`RUN_FIELDS`) trained to at least ``config.steps``."""
    path = Path(config.out) / "last.pt"
    if not path.exists():
        return None
    state = load_checkpoint(path)
    if config_mismatch(state["config"], config.to_dict()) is None and int(state["step"]) >= config.steps:
        return path
    return None


def train_or_load(config: TrainConfig, device: torch.device | str = "cpu", weights: str = "ema"):
    """Load a finished run of ``config`` from ``config.out``, or train it there (resuming a partial one).

    Returns (model in eval mode, :class:`RunInfo`). A checkpoint of a different config in ``config.out`` is
    an error (the trainer names the differing field), never silently overwritten. A run that diverges
    (:class:`~minidiff.training.NonFiniteError`, as two rows of the paper's Table 2 do) returns
    (None, info) with ``info.action == "diverged"``, and records the message in ``<out>/diverged.txt``
    so that the next call reports it without training again.
    """
    from .trainer import NonFiniteError, train

    out = Path(config.out)
    marker = out / DIVERGED
    if marker.exists():
        saved = marker.read_text().split("\n", 1)
        if saved[0] == repr(config.to_dict()):
            return None, RunInfo("diverged", 0.0, 0, marker, config.to_dict(), saved[1])
    path = finished_run(config)
    action = "loaded"
    if path is None:
        action = "trained"
        try:
            train(config, resume=(out / "last.pt").exists())
        except NonFiniteError as e:
            out.mkdir(parents=True, exist_ok=True)
            marker.write_text(repr(config.to_dict()) + "\n" + str(e))
            return None, RunInfo("diverged", 0.0, 0, marker, config.to_dict(), str(e))
        path = out / "last.pt"
        if finished_run(config) is None:  # stopped early (Ctrl-C, SIGTERM): the checkpoint is partial
            raise RuntimeError(f"training of {out} stopped before step {config.steps:,}; its checkpoint is kept: "
                               "call train_or_load again to resume it")
    state = load_checkpoint(path)
    model, saved, step = model_from_checkpoint(path, weights=weights, device=device)
    return model, RunInfo(action, float(state.get("elapsed_s", 0.0)), step, path, saved)


def describe_device(device: torch.device | str) -> str:
    """The hardware in words: the GPU's name, or the CPU's architecture and torch's thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"


def run_card(chapter: str, budget: str, device: torch.device | str, infos: dict[str, RunInfo],
             dataset_size: int, parameters: int, started: float | None = None) -> str:
    """The run card a chapter prints: device, budget, data set and size, steps, parameters and wall times.

    ``infos``: the :class:`RunInfo` of each run; ``started``: ``time.time()`` at the chapter's start, for
    the wall time of this execution of the notebook.
    """
    budget = budget_name(budget, chapter)
    first = next(iter(infos.values()))
    lines = [f"run card: chapter {chapter!r}, budget {budget!r} ({HARDWARE[budget]})",
             f"  device      {describe_device(device)}",
             f"  data        {first.config['data']} ({dataset_size:,} training images)",
             f"  parameters  {parameters:,}"]
    for name, info in infos.items():
        c = info.config
        if info.action == "diverged":
            lines.append(f"  run {name}: diverged ({info.message.splitlines()[0] if info.message else ''})")
            continue
        lines.append(f"  run {name}: {info.action} {info.path}; {info.step:,} steps at batch {c['batch_size']}, "
                     f"lr {c['lr']}, EMA {c['ema_decay']}; training time {info.seconds / 60:.1f} min")
    if started is not None:
        lines.append(f"  this notebook's wall time so far: {(time.time() - started) / 60:.1f} min")
    return "\n".join(lines)
