"""The ``minidiff`` command line: train the paper's U-Net, sample from a checkpoint, describe a preset.

    minidiff train --preset cpu --data mnist-offline --out runs/cpu [--resume | --overwrite]
    minidiff sample --ckpt runs/cpu/last.pt --n 64 --out grid.png
    minidiff info --preset cifar10

Training is Algorithm 1 of Ho et al. (2020) with the preset's recipe (``cifar10``: the paper's);
sampling is Algorithm 2 (``ddpm``, 1,000 steps by default) or DDIM. Every field of
:class:`~minidiff.training.TrainConfig` is a ``train`` flag (``batch_size`` is ``--batch-size``),
generated from the dataclass so that the two cannot drift apart. Multi-GPU:
``torchrun --nproc_per_node=N -m minidiff train ...``. Bad input (a missing file, an unknown preset,
an unavailable device, a corrupt checkpoint, a checkpoint from another run, a run directory that
already holds a run) is raised as :class:`BadInput`, the one error type the CLI catches: it prints
one line and exits with status 2. Anything else is a bug and shows its traceback. A run stopped by
Ctrl-C or SIGTERM saves a checkpoint and exits with 128 + the signal number. Chapter "Training on images".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .training.config import TrainConfig

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1
# `sample --out X.png` draws its grid in one batch; more images go to an .npz, chunked (sample_to_disk).
MAX_GRID_IMAGES = 1024


class BadInput(Exception):
    """An error in what the user asked for: reported in one line, exit status 2."""


@contextlib.contextmanager
def user_input(*errors: type[BaseException]) -> Iterator[None]:
    """Turn ``errors`` raised inside the block into :class:`BadInput`: for calls that validate what the user typed."""
    try:
        yield
    except errors as e:
        raise BadInput(str(e)) from e


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        raise BadInput(f"{message} (see '{self.prog} --help')")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: ...)" to a flag's help unless the default is None or False, or the help says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _int_tuple(text: str) -> tuple[int, ...]:
    """'1,2,2' -> (1, 2, 2); '' -> ()."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,2, got {text!r}") from None


# ``train`` defaults that differ from TrainConfig's (the paper's CIFAR-10 run): a small MNIST network.
TRAIN_DEFAULTS: dict[str, Any] = {"preset": "mnist", "out": None}
_TRAIN_HELP = {"out": "run directory: checkpoints, log.csv, samples/ (default: runs/PRESET)"}
_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "tuple[int,...]": _int_tuple}


def _field_type(f: dataclasses.Field) -> Any:
    """The parser of a TrainConfig field (``int``, ``float | None``, ...), from its annotation string."""
    name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    name = name.replace(" ", "").replace("|None", "")
    if name not in _TYPES:
        raise TypeError(f"TrainConfig field {f.name!r} has type {f.type!r}; the CLI knows {', '.join(_TYPES)}")
    return _TYPES[name]


def _preset_values(name: str) -> str:
    """'cifar10 0.0002, mnist 0.0002, cpu 0.001, tiny 0.0002': every preset's value of a field, from the presets."""
    from .nets.presets import PRESETS
    from .training.config import WARMUP_SHARE

    def show(p) -> str:
        v = p.train[name] if name in p.train else p.unet[name]
        if isinstance(v, tuple):
            return ",".join(map(str, v)) or "none"
        return str(v)

    text = ", ".join(f"{p.name} {show(p)}" for p in PRESETS.values())
    return text + (f"; capped at steps // {WARMUP_SHARE}" if name == "warmup" else "")


def add_config_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """One flag per :class:`~minidiff.training.TrainConfig` field: name, type, default and help from the field.

    ``batch_size`` becomes ``--batch-size``; a bool ``compile`` becomes ``--compile/--no-compile``.
    Named choices are listed in the help but checked by TrainConfig, whose error names the valid ones;
    the fields a preset sets list every preset's value, read from the presets.
    """
    from .training.config import CHOICES, POSITIVE_INT_FIELDS, PRESET_FIELDS, TrainConfig

    for f in dataclasses.fields(TrainConfig):
        kind = _field_type(f)
        default = TRAIN_DEFAULTS.get(f.name, f.default)
        text = _TRAIN_HELP.get(f.name, f.metadata.get("help", ""))
        if f.name in PRESET_FIELDS:
            text = text.split(" (default: the preset's")[0] + f" (default: the preset's: {_preset_values(f.name)})"
        if f.name in CHOICES:
            text += f"; one of: {', '.join(CHOICES[f.name])}"
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                                help=text)
            continue
        if kind is int:
            kind = _positive_int if f.name in POSITIVE_INT_FIELDS else _int
        parser.add_argument(flag, dest=f.name, type=kind, default=default, help=text, metavar=f.name.upper())


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`~minidiff.training.TrainConfig` of parsed ``train`` arguments (``--out`` defaults to runs/PRESET).

    A value TrainConfig refuses is the user's: it is raised as :class:`BadInput`.
    """
    from .training.config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    values["out"] = values["out"] or f"runs/{values['preset']}"
    with user_input(ValueError):
        return TrainConfig(**values)


def build_parser() -> argparse.ArgumentParser:
    """The ``minidiff`` parser (over 40 lines: one declaration per flag, which reads best in one place)."""
    from .nets.presets import PRESETS
    from .samplers import SAMPLERS

    presets = ", ".join(PRESETS)
    p = _Parser(prog="minidiff", description="DDPM (Ho, Jain & Abbeel 2020) from scratch: train the paper's "
                "U-Net on images, sample from it, inspect it.",
                epilog="Run 'minidiff COMMAND --help' for each command's options.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train a U-Net preset (Algorithm 1, the preset's recipe)",
                       description="Train a U-Net on images with its preset's recipe (cifar10: the paper's, "
                       "Adam 2e-4, warm-up 5000, grad clip 1, EMA 0.9999, batch 128, 800k steps; cpu: about 30 "
                       "minutes on one CPU thread). Checkpoints go to OUT/last.pt; --resume continues exactly; an "
                       "OUT that already holds a run needs --resume or --overwrite. Ctrl-C or SIGTERM saves a "
                       "checkpoint at the step reached. Multi-GPU: torchrun --nproc_per_node=N -m minidiff train ...",
                       formatter_class=_HelpFormatter)
    t.add_argument("--resume", action="store_true", help="continue the run in OUT from OUT/last.pt")
    t.add_argument("--overwrite", action="store_true",
                   help="delete the run already in OUT (its checkpoints, log.csv and sample grids) and start anew")
    t.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads of torch (default: torch's choice, usually all cores)")
    add_config_flags(t.add_argument_group("configuration", "the fields of minidiff.training.TrainConfig"))

    s = sub.add_parser("sample", help="sample images from a checkpoint into a PNG grid or an .npz",
                       description="Sample from a checkpoint's EMA weights (Algorithm 2, or DDIM) and save a "
                       "PNG grid or the images as uint8 in an .npz. The network is rebuilt from the checkpoint "
                       "alone.", formatter_class=_HelpFormatter)
    s.add_argument("--ckpt", required=True, help="checkpoint file, e.g. runs/cpu/last.pt")
    s.add_argument("--sampler", default="ddpm", help=f"sampler: {', '.join(SAMPLERS)} (ddpm is Algorithm 2)")
    s.add_argument("--steps", type=_positive_int, default=None,
                   help="reverse steps (default: all T of the checkpoint's schedule: 1000 unless it was "
                   "trained with another --T)")
    s.add_argument("--n", type=_positive_int, default=64, help="number of images")
    s.add_argument("--out", default="samples.png", help="output: a .png grid (one batch, at most "
                   f"{MAX_GRID_IMAGES} images), or an .npz holding 'arr_0', uint8 (N, H, W, C), the layout of the "
                   "common FID evaluators, sampled in chunks and streamed to disk beside a PNG grid of the first 64 "
                   "(any N: 50,000 for FID)")
    s.add_argument("--chunk-size", type=_positive_int, default=1024,
                   help="images per network call for an .npz (a multiple of --noise-group); never changes the images")
    s.add_argument("--noise-group", type=_positive_int, default=16,
                   help="images per noise generator for an .npz: image i depends only on (--seed, i // noise-group)")
    s.add_argument("--scale", type=_int, default=0, help="PNG pixels per image pixel; 0: the smallest integer "
                   "that makes the grid at least 400 pixels wide (at most 8); 1: no upscaling")
    s.add_argument("--seed", type=int, default=0, help="seed of the sampling noise (same seed, same images)")
    s.add_argument("--weights", default="ema", help="ema (the paper's) or model")
    s.add_argument("--label", type=int, default=None, help="class label, 0 to K-1 (class-conditional checkpoints; "
                   "default: the null class, i.e. unconditional)")
    s.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance scale w towards --label "
                   "(Ho & Salimans 2022; needs --label)")
    s.add_argument("--preset", default=None, help="refuse the checkpoint unless it is of this preset")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads of torch (default: torch's choice, usually all cores)")

    i = sub.add_parser("info", help="architecture summary and parameter count of a preset",
                       description="Print a preset's architecture, level by level, its parameter count and its "
                       "training budget.")
    i.add_argument("--preset", default="cifar10", help=f"network preset: {presets}")
    return p


def check_writable(path: Path, what: str) -> None:
    """Refuse (BadInput) a file ``path`` that could not be written: a missing or read-only folder, or a directory."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"the directory of {what} does not exist: {parent}")
    if path.is_dir():
        raise BadInput(f"{what} {path} is a directory; expected a file name")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BadInput(f"{what} {path} is not writable")


def _check_run_dir_writable(out: Path) -> None:
    existing = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise BadInput(f"the run directory {out} cannot be created or written ({existing} is not a writable folder)")


def _make_trainer(args: argparse.Namespace, config: TrainConfig):
    """Check the run folder and build the :class:`Trainer`; the errors of both are about the user's input.

    Trainer() only validates here: the device, the data set (download or cache), the batch size against
    the data, and the checkpoint to resume, whose ValueError, CheckpointError and DataUnavailableError
    describe what was asked for.
    """
    from .data.download import DataUnavailableError
    from .training.checkpoint import CheckpointError, check_run_dir
    from .training.trainer import Trainer

    out = Path(config.out)
    with user_input(ValueError):
        check_run_dir(out, resume=args.resume, overwrite=args.overwrite, options=("--resume", "--overwrite"))
    _check_run_dir_writable(out)
    with user_input(ValueError, CheckpointError, DataUnavailableError):
        return Trainer(config, resume=args.resume, overwrite=args.overwrite)  # deletes the old run last, if at all


def _announce(trainer, replaced: bool) -> None:
    """The start of a run in a few lines: what, where, the warm-up actually used, and any warnings."""
    c, out = trainer.config, Path(trainer.config.out)
    if replaced:
        print(f"minidiff: deleted the earlier run in {out} (--overwrite)", file=sys.stderr)
    warmup = f"warm-up {trainer.warmup}" + (" (the preset's, capped at steps // 10)" if c.warmup is None else "")
    ema = f"EMA {c.ema_decay}" + (" with warm-up" if c.ema_warmup else " without warm-up")
    print(f"minidiff: training preset {c.preset!r} on {c.data!r} on {trainer.device} from step {trainer.step} to "
          f"{c.steps}; batch {c.batch_size}, lr {c.lr}, {warmup}, {ema}; speed options: {trainer.speed.describe()}; "
          f"run directory {out}", file=sys.stderr)
    for message in trainer.warnings:
        print(f"minidiff: warning: {message}", file=sys.stderr)


def _train(args: argparse.Namespace) -> int:
    import torch

    from .training.checkpoint import run_files

    if args.threads:
        torch.set_num_threads(args.threads)
    config = train_config_from_args(args)
    out = Path(config.out)
    main_process = os.environ.get("RANK", "0") == "0"  # torchrun sets RANK; speak once
    if args.resume and not (out / "last.pt").exists() and main_process:
        print(f"minidiff: no checkpoint at {out / 'last.pt'}; starting a new run", file=sys.stderr)
    replaced = args.overwrite and bool(run_files(out))
    trainer = _make_trainer(args, config)
    if trainer.step >= config.steps:
        trainer.close()
        raise BadInput(f"the run in {out} is already at step {trainer.step}, and --steps {config.steps} asks for no "
                       f"more; pass a larger --steps to continue it")
    try:
        if trainer.dist.is_main:
            _announce(trainer, replaced)
        result = trainer.fit()
    finally:
        trainer.close()
    if trainer.dist.is_main:
        print(f"minidiff: step {result['step']}, loss {result['loss']:.4f}; checkpoint {out / 'last.pt'}")
    if trainer.stopped_by is not None and result["step"] < config.steps:
        if trainer.dist.is_main:
            print(f"minidiff: stopped by {signal.Signals(trainer.stopped_by).name} at step {result['step']} of "
                  f"{config.steps}; continue with --resume", file=sys.stderr)
        return 128 + trainer.stopped_by
    return 0


def grid_scale(width: int, scale: int = 0) -> int:
    """``scale`` if >= 1, else the smallest integer that makes a ``width``-pixel grid >= 400 pixels wide (<= 8)."""
    if scale < 0:
        raise BadInput(f"--scale must be >= 0 (0: automatic, 1: off), got {scale}")
    return scale or max(1, min(8, math.ceil(400 / width)))


def save_samples(images, out: Path, scale: int = 0) -> str:
    """Write images (N, C, H, W) in [-1, 1] as an upscaled PNG grid; returns a description."""
    from PIL import Image

    from .data.images import image_grid

    grid = image_grid(images)
    s = grid_scale(grid.shape[1], scale)
    grid = grid.repeat(s, axis=0).repeat(s, axis=1)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(out, format="PNG")
    return f"{out} ({grid.shape[1]}x{grid.shape[0]} pixels, scale {s})"


def _load_for_sampling(args: argparse.Namespace, device):
    """The checkpoint's network, config and step; a bad file, device or preset is the user's input."""
    from .training.checkpoint import CheckpointError, model_from_checkpoint

    if args.weights not in ("ema", "model"):
        raise BadInput(f"--weights must be 'ema' or 'model', got {args.weights!r}")
    with user_input(CheckpointError, ValueError):
        model, config, step = model_from_checkpoint(args.ckpt, weights=args.weights, device=device)
    if args.preset is not None and args.preset != config["preset"]:
        raise BadInput(f"{args.ckpt} is a {config['preset']!r} checkpoint, not {args.preset!r}")
    if args.steps is not None and args.steps > config["T"]:
        raise BadInput(f"--steps must be at most T = {config['T']}, got {args.steps}")
    return model, config, step


def _labels_and_guidance(args: argparse.Namespace, model, device):
    """(network to sample, labels or None): the null class, a label, or a classifier-free guided wrapper."""
    import torch

    from .nets.unet import guided

    if not math.isfinite(args.guidance) or args.guidance < 0:
        raise BadInput(f"--guidance must be a finite number >= 0, got {args.guidance}")
    if model.num_classes is None:
        if args.label is not None or args.guidance:
            raise BadInput(f"{args.ckpt} is not class-conditional: --label and --guidance do not apply")
        return model, None
    if args.label is not None and not 0 <= args.label < model.num_classes:
        raise BadInput(f"--label must be in [0, {model.num_classes - 1}] for this checkpoint, got {args.label} "
                       "(leave it out to sample unconditionally)")
    if args.guidance and args.label is None:
        raise BadInput("--guidance needs --label: classifier-free guidance steers towards a class "
                       f"(0 to {model.num_classes - 1}); without one it would guide the null class against itself")
    label = model.num_classes if args.label is None else args.label  # the null class: unconditional
    labels = torch.full((args.n,), label, dtype=torch.long, device=device)
    if not args.guidance:
        return model, labels
    net = guided(model, labels, args.guidance)
    net.num_classes = None  # the wrapper is unconditional from the sampler's point of view
    return net, labels


def _sample(args: argparse.Namespace) -> int:
    import torch

    from .samplers import SAMPLERS
    from .training.distributed import resolve_device
    from .training.trainer import sample_images

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.sampler not in SAMPLERS:
        raise BadInput(f"unknown sampler {args.sampler!r}; valid names are: {', '.join(SAMPLERS)}")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise BadInput(f"--out must be a .png or .npz file, got {out}")
    if out.suffix.lower() == ".png" and args.n > MAX_GRID_IMAGES:
        raise BadInput(f"--out {out} draws one PNG grid in one batch, at most {MAX_GRID_IMAGES} images, got "
                       f"--n {args.n}; use --out {out.with_suffix('.npz')} (chunked, streamed to disk)")
    if args.seed < 0:
        raise BadInput(f"--seed must be >= 0, got {args.seed}")
    if args.chunk_size % args.noise_group:
        raise BadInput(f"--chunk-size must be a multiple of --noise-group {args.noise_group}, got {args.chunk_size}")
    check_writable(out, "--out")
    grid_scale(1, args.scale)  # refuse a bad --scale before sampling
    with user_input(ValueError):
        device = resolve_device(args.device)
    model, config, step = _load_for_sampling(args, device)
    net, labels = _labels_and_guidance(args, model, device)
    steps = args.steps or config["T"]
    print(f"minidiff: sampling {args.n} images from step {step} of {args.ckpt}: {args.sampler}, {steps} steps, "
          f"on {device}", file=sys.stderr)
    if out.suffix.lower() == ".npz":
        return _sample_npz(args, model, config, step, device, steps)
    images = sample_images(net, config, args.n, sampler=args.sampler, steps=steps, seed=args.seed,
                           device=device, labels=labels, progress=True)
    print(f"minidiff: {args.n} samples from step {step} of {args.ckpt} ({args.sampler}, {steps} steps) -> "
          f"{save_samples(images, out, args.scale)}")
    return 0


def _sample_npz(args: argparse.Namespace, model, config: dict, step: int, device, steps: int) -> int:
    """Any number of images (issue: 50,000 for FID), chunked and streamed to an .npz by :func:`sample_to_disk`."""
    import torch

    from .nets.presets import get_preset
    from .schedules import get_schedule
    from .training.sample_to_disk import sample_to_disk

    out = Path(args.out)
    labels = None if args.label is None else torch.full((args.n,), args.label, dtype=torch.long)
    shape = (args.n, *get_preset(config["preset"]).image_shape)
    run = sample_to_disk(model, shape, get_schedule(config["schedule"], config["T"]), out.parent, name=out.stem,
                         chunk_size=args.chunk_size, noise_group=args.noise_group, seed=args.seed, labels=labels,
                         guidance=args.guidance, device=device, grid_n=min(64, args.n), sampler=args.sampler,
                         steps=steps, parameterization=config["parameterization"], variance=config["variance"],
                         clip_x0=1.0)
    print(f"minidiff: {run.n} samples from step {step} of {args.ckpt} ({args.sampler}, {steps} steps) -> "
          f"{run.npz} (uint8 (N, H, W, C) under arr_0; {run.images_per_s:.2f} images/s) and the grid "
          f"{', '.join(str(g) for g in run.grids)}")
    return 0


def describe(preset: str) -> str:
    """A text summary of a preset: its U-Net's levels, attention, parameter counts by part, and training budget."""
    from .nets.presets import build_unet, get_preset
    from .nets.unet import count_parameters

    p = get_preset(preset)
    model = build_unet(preset)
    u = p.unet
    ch, mult, nb = u["ch"], tuple(u["ch_mult"]), u["num_res_blocks"]
    lines = [f"preset {p.name!r}: {p.description}",
             f"input {p.image_shape} ({p.dataset}); ch {ch}, ch_mult {mult}, {nb} residual "
             f"block{'s' * (nb != 1)} per level, "
             f"attention at {tuple(u['attn_resolutions'])}, dropout {u['dropout']}, "
             f"GroupNorm({u.get('num_groups', 32)})",
             f"{'level':>6} {'size':>7} {'channels':>9} {'down blocks':>12} {'up blocks':>10} {'attention':>10}"]
    res = u["resolution"]
    for level, m in enumerate(mult):
        attn = "yes" if res in u["attn_resolutions"] else "-"
        lines.append(f"{level:>6} {f'{res}x{res}':>7} {ch * m:>9} {nb:>12} {nb + 1:>10} {attn:>10}")
        if level != len(mult) - 1:
            res = math.ceil(res / 2)
    lines.append(f"{'middle':>6} {f'{res}x{res}':>7} {ch * mult[-1]:>9}   res + attention + res")
    parts = {"time embedding": model.temb, "input conv": model.conv_in, "down path": model.down,
             "middle": model.mid, "up path": model.up, "output": [model.norm_out, model.conv_out]}
    counts = ", ".join(f"{name} {sum(count_parameters(m) for m in (mods if isinstance(mods, list) else [mods])):,}"
                       for name, mods in parts.items())
    lines.append(f"parameters: {count_parameters(model):,} ({counts})")
    tr = p.train
    lines.append(f"training: {tr['steps']:,} steps, batch {tr['batch_size']}, lr {tr['lr']}, warm-up "
                 f"{tr['warmup']}, EMA {tr['ema_decay']}; sized for a {p.hardware.upper()}")
    return "\n".join(lines)


def _info(args: argparse.Namespace) -> int:
    with user_input(ValueError):
        print(describe(args.preset))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``minidiff`` console script; returns the exit status.

    Only :class:`BadInput` (exit 2), a stopped run (:class:`~minidiff.training.NonFiniteError`, exit 1)
    and Ctrl-C are caught; any other exception is a bug and keeps its traceback.
    """
    from .training.trainer import NonFiniteError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        return {"train": _train, "sample": _sample, "info": _info}[args.command](args)
    except BadInput as e:
        print(f"minidiff: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NonFiniteError as e:
        print(f"minidiff: stopped: {e}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except KeyboardInterrupt:  # a second Ctrl-C during training, or one outside it
        print("minidiff: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
