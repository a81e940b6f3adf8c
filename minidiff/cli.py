"""The ``minidiff`` command line: train the paper's U-Net, sample from a checkpoint, describe a preset.

    minidiff train --preset mnist --steps 20000 --out runs/mnist [--resume]
    minidiff sample --ckpt runs/mnist/last.pt --sampler ddim --steps 50 --n 64 --out grid.png
    minidiff info --preset cifar10

Training is Algorithm 1 of Ho et al. (2020) with the paper's recipe; sampling is Algorithm 2 (``ddpm``)
or DDIM. Multi-GPU: ``torchrun --nproc_per_node=N -m minidiff train ...``. Bad input (a missing
file, an unknown preset, a corrupt checkpoint, a checkpoint from another run) prints one line and
exits with status 2. Chapter "Training on images".
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1


class BadInput(Exception):
    """An error in what the user asked for: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        raise BadInput(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .data.images import DATASETS
    from .nets.presets import PRESETS
    from .samplers import SAMPLERS
    from .training.config import AMP_MODES

    presets = ", ".join(PRESETS)
    p = _Parser(prog="minidiff", description="DDPM (Ho, Jain & Abbeel 2020) from scratch: train the paper's "
                "U-Net on images, sample from it, inspect it.",
                epilog="Run 'minidiff COMMAND --help' for each command's options.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train a U-Net preset (Algorithm 1, the paper's recipe)",
                       description="Train a U-Net on images with the paper's recipe (Adam 2e-4, warm-up 5000, "
                       "grad clip 1, EMA 0.9999, batch 128). Checkpoints go to OUT/last.pt; --resume continues "
                       "exactly. Multi-GPU: torchrun --nproc_per_node=N -m minidiff train ...",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--preset", default="mnist", help=f"network preset: {presets}")
    t.add_argument("--data", default=None, help=f"data set: {', '.join(DATASETS)} (default: the preset's; "
                   "the -offline stand-ins need no internet)")
    t.add_argument("--steps", type=_positive_int, default=20_000, help="total optimizer steps")
    t.add_argument("--out", default=None, help="run directory: checkpoints, log.csv, samples/ (default: runs/PRESET)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    t.add_argument("--batch-size", type=_positive_int, default=128, help="global batch size")
    t.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate")
    t.add_argument("--warmup", type=int, default=5000, help="linear learning-rate warm-up steps")
    t.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clipping (0: off)")
    t.add_argument("--ema-decay", type=float, default=0.9999, help="EMA decay of the weights")
    t.add_argument("--dropout", type=float, default=None, help="dropout (default: the preset's)")
    t.add_argument("--class-conditional", action="store_true",
                   help="condition on labels, with a null class for classifier-free guidance")
    t.add_argument("--amp", default="auto", help=f"mixed precision: {', '.join(AMP_MODES)} (auto: bf16 or "
                   "fp16 on GPU, off on CPU)")
    t.add_argument("--compile", action="store_true", help="torch.compile the network")
    t.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory format on GPU")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--ckpt-every", type=_positive_int, default=5000, help="checkpoint every N steps")
    t.add_argument("--keep", type=_positive_int, default=3, help="numbered checkpoints to keep")
    t.add_argument("--log-every", type=_positive_int, default=100, help="CSV log / progress bar every N steps")
    t.add_argument("--sample-every", type=int, default=5000, help="sample grid every N steps (0: never)")
    t.add_argument("--data-dir", default=None, help="data cache (default: $MINIDIFF_DATA or ~/.cache/minidiff)")
    t.add_argument("--offline", action="store_true", help="never download; fail if the data is not cached")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="sample images from a checkpoint into a PNG grid",
                       description="Sample from a checkpoint's EMA weights (Algorithm 2, or DDIM) and save a "
                       "PNG grid.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--ckpt", required=True, help="checkpoint file, e.g. runs/mnist/last.pt")
    s.add_argument("--sampler", default="ddim", help=f"sampler: {', '.join(SAMPLERS)}")
    s.add_argument("--steps", type=_positive_int, default=None, help="reverse steps (default: all T)")
    s.add_argument("--n", type=_positive_int, default=64, help="number of images")
    s.add_argument("--out", default="samples.png", help="output PNG")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--weights", default="ema", help="ema (the paper's) or model")
    s.add_argument("--label", type=int, default=None, help="class label (class-conditional checkpoints)")
    s.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance scale w")
    s.add_argument("--preset", default=None, help="refuse the checkpoint unless it is of this preset")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")

    i = sub.add_parser("info", help="architecture summary and parameter count of a preset",
                       description="Print a preset's architecture, level by level, and its parameter count.")
    i.add_argument("--preset", default="cifar10", help=f"network preset: {presets}")
    return p


def _train(args: argparse.Namespace) -> int:
    from .training.config import TrainConfig
    from .training.trainer import Trainer

    args.out = args.out or f"runs/{args.preset}"
    config = TrainConfig(
        preset=args.preset, data=args.data, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        warmup=args.warmup, grad_clip=args.grad_clip, ema_decay=args.ema_decay, dropout=args.dropout,
        class_conditional=args.class_conditional, amp=args.amp, compile=args.compile,
        channels_last=not args.no_channels_last, device=args.device, seed=args.seed, out=args.out,
        ckpt_every=args.ckpt_every, keep=args.keep, log_every=args.log_every, sample_every=args.sample_every,
        data_dir=args.data_dir, offline=args.offline, progress=not args.no_progress)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a directory")
    if args.resume and not (out / "last.pt").exists():
        print(f"minidiff: no checkpoint at {out / 'last.pt'}; starting a new run", file=sys.stderr)
    trainer = Trainer(config, resume=args.resume)
    try:
        if trainer.dist.is_main:
            print(f"minidiff: training preset {config.preset!r} on {config.data!r} on {trainer.device} "
                  f"from step {trainer.step} to {config.steps}; run directory {out}", file=sys.stderr)
        result = trainer.fit()
    finally:
        trainer.close()
    if trainer.dist.is_main:
        print(f"minidiff: step {result['step']}, loss {result['loss']:.4f}; checkpoint {out / 'last.pt'}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    import torch

    from .data.images import save_image_grid
    from .nets.unet import guided
    from .samplers import SAMPLERS
    from .training.checkpoint import model_from_checkpoint
    from .training.distributed import resolve_device
    from .training.trainer import sample_images

    if args.sampler not in SAMPLERS:
        raise BadInput(f"unknown sampler {args.sampler!r}; valid names are: {', '.join(SAMPLERS)}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise BadInput(f"--out must be a .png file, got {out}")
    if not out.parent.is_dir():
        raise BadInput(f"the directory of --out does not exist: {out.parent}")
    device = resolve_device(args.device)
    model, config, step = model_from_checkpoint(args.ckpt, weights=args.weights, device=device)
    if args.preset is not None and args.preset != config["preset"]:
        raise BadInput(f"{args.ckpt} is a {config['preset']!r} checkpoint, not {args.preset!r}")
    if args.steps is not None and args.steps > config["T"]:
        raise BadInput(f"--steps must be at most T = {config['T']}, got {args.steps}")
    net, labels = model, None
    if model.num_classes is not None:
        label = model.num_classes if args.label is None else args.label
        if not 0 <= label <= model.num_classes:
            raise BadInput(f"--label must be in [0, {model.num_classes - 1}], got {args.label}")
        labels = torch.full((args.n,), label, dtype=torch.long, device=device)
        if args.guidance:
            net = guided(model, labels, args.guidance)
            net.num_classes = None  # the wrapper is unconditional from the sampler's point of view
    elif args.label is not None or args.guidance:
        raise BadInput(f"{args.ckpt} is not class-conditional: --label and --guidance do not apply")
    images = sample_images(net, config, args.n, sampler=args.sampler, steps=args.steps, seed=args.seed,
                           device=device, labels=labels, progress=True)
    save_image_grid(images, out)
    print(f"minidiff: {args.n} samples from step {step} of {args.ckpt} ({args.sampler}, "
          f"{args.steps or config['T']} steps) -> {out}")
    return 0


def describe(preset: str) -> str:
    """A text summary of a preset's U-Net: its levels, attention, and parameter counts by part."""
    from .nets.presets import build_unet, get_preset
    from .nets.unet import count_parameters

    p = get_preset(preset)
    model = build_unet(preset)
    u = p.unet
    ch, mult, nb = u["ch"], tuple(u["ch_mult"]), u["num_res_blocks"]
    lines = [f"preset {p.name!r}: {p.description}",
             f"input {p.image_shape} ({p.dataset}); ch {ch}, ch_mult {mult}, {nb} residual blocks per level, "
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
    return "\n".join(lines)


def _info(args: argparse.Namespace) -> int:
    print(describe(args.preset))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``minidiff`` console script; returns the exit status."""
    from .data.download import DataUnavailableError
    from .training.checkpoint import CheckpointError
    from .training.trainer import NonFiniteError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        return {"train": _train, "sample": _sample, "info": _info}[args.command](args)
    except (BadInput, ValueError, TypeError, CheckpointError, DataUnavailableError, FileNotFoundError,
            NotADirectoryError, IsADirectoryError, PermissionError) as e:
        print(f"minidiff: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NonFiniteError as e:
        print(f"minidiff: stopped: {e}", file=sys.stderr)
        return EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
