"""A/B ablation of the trainer's fast CUDA defaults (issue 15, item 8): each option off against on.

What is timed is the real :meth:`minidiff.training.Trainer.train_step`: the batch from the on-device
uint8 pipeline, forward and loss under AMP, backward, gradient clipping, Adam, the EMA update and the
finite flag. The options (``minidiff.training.speed``):

- ``compile``: no compile against ``torch.compile`` of the whole loss (``compile_scope="loss"``);
- ``compile_scope``: the network compiled alone against the whole loss compiled (both compiled);
- ``cudnn_benchmark``: ``torch.backends.cudnn.benchmark`` off against on;
- ``tf32_matmul``: float32 matmul precision "highest" against "high" (TF32);
- ``grad_clip_work``: ``grad_clip=1`` (the paper's: unscale + global norm + scale) against ``grad_clip=0``
  (no clipping work); this one changes the training, and measures what clipping costs;
- ``ddp_bucket_view``: DDP's ``gradient_as_bucket_view`` off against on; only under
  ``torchrun --nproc_per_node=N`` with N >= 2 (a single process has no DDP), else reported as skipped.

Method, per option: two trainers of the same config and seed, differing only in that option, on the
same random uint8 images. Each runs ``--warmup`` untimed steps (compilation, cuDNN's benchmark trials,
allocator growth: none of it lands in the timed steps of either side), then ``--repeats`` timed
repeats of ``--steps`` steps each, interleaved and alternating the order (off on, on off, ...), each
bracketed by ``torch.cuda.synchronize``. Reported: per side the median ms/step with its min-max and
the first step's seconds (compilation); the speed-up, the ratio of the medians (off / on: > 1 means
the option makes the step faster); the min-max of the per-repeat paired ratios; and a verdict:
``faster`` or ``slower`` when every paired ratio is on that side of 1, else ``within noise``.

The other options stay at ``--base``: ``eager`` (the default) is every option at its CUDA default but
compile off, so that only the two compile ablations pay for compilation; ``fast`` is every option at
its CUDA default (what ``minidiff train`` gets on a GPU), compile included, slower to run.

    python bench/trainer_options.py --json trainer_options.json        # GPU: the paper's cifar10 at batch 128
    python bench/trainer_options.py --options compile,cudnn_benchmark   # a subset
    torchrun --nproc_per_node=2 bench/trainer_options.py --options ddp_bucket_view
    python bench/trainer_options.py --cpu-dry-run                       # CPU rehearsal: tiny, batch 2, seconds

``--cpu-dry-run`` runs every code path at a tiny size on the CPU (the ``tiny`` preset, batch 2, 1 warm-up
step, 3 repeats of 1 step, compile with the ``eager`` backend, which traces but generates no kernels): a
check that the script runs, not a measurement. The options' CUDA defaults are off on a CPU, so there
the on side is the option forced on.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from minidiff.data import ImageData
from minidiff.nets.presets import get_preset
from minidiff.training import TrainConfig, Trainer
from minidiff.training.speed import AUTO_FIELDS

# option -> (config of the "off" side, config of the "on" side), over the base options
ABLATIONS: dict[str, tuple[dict, dict]] = {
    "compile": ({"compile": False}, {"compile": True, "compile_scope": "loss"}),
    "compile_scope": ({"compile": True, "compile_scope": "network"}, {"compile": True, "compile_scope": "loss"}),
    "cudnn_benchmark": ({"cudnn_benchmark": False}, {"cudnn_benchmark": True}),
    "tf32_matmul": ({"tf32_matmul": False}, {"tf32_matmul": True}),
    "grad_clip_work": ({"grad_clip": 1.0}, {"grad_clip": 0.0}),
    "ddp_bucket_view": ({"ddp_bucket_view": False}, {"ddp_bucket_view": True}),
}
DRY_RUN = dict(preset="tiny", batch=2, warmup=1, repeats=3, steps=1, compile_backend="eager", threads=1)
GPU_DEFAULTS = dict(preset="cifar10", batch=None, warmup=10, repeats=10, steps=10, compile_backend="inductor")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_images(preset: str, n: int, seed: int = 0) -> ImageData:
    """n random uint8 images of the preset's shape (the pipeline and the step do not care what they show)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *get_preset(preset).image_shape), dtype=torch.uint8, generator=g)
    return ImageData("random", images, torch.zeros(n, dtype=torch.long), 10, flip=True)


def base_options(base: str, device: torch.device) -> dict:
    """The options every trainer of the bench starts from: their CUDA defaults, compile off for ``eager``."""
    if base not in ("eager", "fast"):
        raise ValueError(f"base must be 'eager' or 'fast', got base = {base!r}")
    on = {name: True for name in AUTO_FIELDS} if device.type == "cuda" else {}  # CPU: auto is off already
    if base == "eager":
        on["compile"] = False
    return on


def time_interleaved(steps: dict[str, Callable[[], object]], repeats: int, steps_per_repeat: int,
                     device: torch.device) -> dict[str, list[float]]:
    """Seconds per step of each side for every repeat; the order alternates (a b, b a, a b, ...)."""
    names = list(steps)
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps_per_repeat):
                steps[name]()
            _sync(device)
            out[name].append((time.perf_counter() - start) / steps_per_repeat)
    return out


def compare(off: list[float], on: list[float]) -> dict:
    """Speed-up of the on side: the ratio of the medians (off / on), the paired ratios' min-max, a verdict."""
    paired = [a / b for a, b in zip(off, on, strict=True)]
    verdict = "faster" if min(paired) > 1 else "slower" if max(paired) < 1 else "within noise"
    return {"speedup": statistics.median(off) / statistics.median(on), "paired_min_max": [min(paired), max(paired)],
            "verdict": verdict}


def _side(seconds: list[float], first_step_s: float, batch: int) -> dict:
    ms = [1000 * s for s in seconds]
    median = statistics.median(ms)
    return {"ms_per_step": median, "ms_min_max": [min(ms), max(ms)], "it_per_s": 1000 / median,
            "images_per_s": 1000 * batch / median, "first_step_s": first_step_s}


def measure(option: str, config: dict, data: ImageData, warmup: int, repeats: int, steps: int) -> dict:
    """Build the off and on trainers of ``option`` over ``config``, warm both up, time them interleaved."""
    off_kw, on_kw = ABLATIONS[option]
    trainers, first = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for side, kw in (("off", off_kw), ("on", on_kw)):
            trainers[side] = Trainer(TrainConfig(**{**config, **kw, "out": str(Path(tmp) / side)}), data=data)
        for side, trainer in trainers.items():  # compilation and cuDNN trials happen here, untimed
            device = trainer.device
            _sync(device)
            start = time.perf_counter()
            trainer.train_step()
            _sync(device)
            first[side] = time.perf_counter() - start
            for _ in range(warmup - 1):
                trainer.train_step()
        times = time_interleaved({side: t.train_step for side, t in trainers.items()}, repeats, steps, device)
    batch = config["batch_size"]
    row = {"option": option, "off": {**off_kw, **_side(times["off"], first["off"], batch)},
           "on": {**on_kw, **_side(times["on"], first["on"], batch)}, **compare(times["off"], times["on"])}
    del trainers
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if "torch._dynamo" in sys.modules:  # a fresh compile cache per option: no recompile limit, no reuse
        torch._dynamo.reset()
    return row


def _print(row: dict) -> None:
    if "skipped" in row:
        print(f"{row['option']:>16}: skipped ({row['skipped']})")
        return
    off, on = row["off"], row["on"]
    lo, hi = row["paired_min_max"]
    print(f"{row['option']:>16}: off {off['ms_per_step']:8.2f} ms/step ({off['it_per_s']:7.2f} it/s), "
          f"on {on['ms_per_step']:8.2f} ms/step ({on['it_per_s']:7.2f} it/s); speed-up {row['speedup']:.3f}x "
          f"(paired {lo:.3f}-{hi:.3f}x): {row['verdict']}; first step off {off['first_step_s']:.1f} s, "
          f"on {on['first_step_s']:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-dry-run", action="store_true", help="every code path at a tiny size on the CPU "
                   "(tiny preset, batch 2, 1 warm-up, 3 x 1 steps, eager compile backend): a rehearsal")
    p.add_argument("--device", default="auto", help="auto, cuda or cuda:N (cpu only with --cpu-dry-run)")
    p.add_argument("--options", default=",".join(ABLATIONS), help="comma-separated options to ablate")
    p.add_argument("--base", default="eager", choices=("eager", "fast"),
                   help="the other options: their CUDA defaults, compile off (eager) or on (fast)")
    p.add_argument("--preset", default=None, help="network and budget (default: cifar10, the paper's)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's, 128 for cifar10)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per trainer first (default: 10)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved timed repeats (default: 10)")
    p.add_argument("--steps", type=int, default=None, help="steps per repeat (default: 10)")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default: inductor)")
    p.add_argument("--amp", default="auto", help="auto (bf16 where native), bf16, fp16 or off")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of torch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    unknown = sorted(set(args.options.split(",")) - set(ABLATIONS))
    if unknown:
        p.error(f"unknown options {unknown}; known: {', '.join(ABLATIONS)}")
    s = {**(DRY_RUN if args.cpu_dry_run else GPU_DEFAULTS)}
    for key in ("preset", "batch", "warmup", "repeats", "steps", "compile_backend", "threads"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    if min(s["warmup"], s["repeats"], s["steps"]) < 1:
        p.error("--warmup, --repeats and --steps must be >= 1")
    device = torch.device("cpu") if args.cpu_dry_run and args.device == "auto" else torch.device(
        "cuda" if args.device == "auto" else args.device)
    if device.type == "cpu" and not args.cpu_dry_run:
        p.error("no GPU here (or --device cpu): the paper's size would take hours; pass --cpu-dry-run to rehearse")
    if s.get("threads"):
        torch.set_num_threads(s["threads"])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    main_rank = os.environ.get("RANK", "0") == "0"
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))

    preset = get_preset(s["preset"])
    batch = s["batch"] or preset.train["batch_size"]
    config = dict(preset=s["preset"], batch_size=batch * world, steps=10**9, warmup=0, amp=args.amp, seed=args.seed,
                  device=str(device), sample_every=0, log_every=10**9, ckpt_every=10**9, progress=False,
                  compile_backend=s["compile_backend"], **base_options(args.base, device))
    data = random_images(s["preset"], max(4 * batch * world, 64), args.seed)
    env = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "torch": torch.__version__,
           "python": platform.python_version(), "device": str(device), "world_size": world,
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
           "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
           "cpu_dry_run": args.cpu_dry_run, "base": args.base, "preset": s["preset"], "batch": batch, "amp": args.amp,
           "warmup": s["warmup"], "repeats": s["repeats"], "steps": s["steps"], "compile_backend": s["compile_backend"]}
    if main_rank:
        print("trainer options, each off vs on: " + ", ".join(f"{k} {v}" for k, v in env.items()), flush=True)
    rows = []
    for option in args.options.split(","):
        if option == "ddp_bucket_view" and world < 2:
            row = {"option": option, "skipped": "needs DDP: torchrun --nproc_per_node=N with N >= 2"}
        else:
            row = measure(option, config, data, s["warmup"], s["repeats"], s["steps"])
        rows.append(row)
        if main_rank:
            _print(row)
    if args.json and main_rank:
        Path(args.json).write_text(json.dumps({"env": env, "results": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
