"""The real training step of minidiff's Trainer, with its U-Net and with diffusers' UNet2DModel (issue 15 items 9, 10).

One step is ``Trainer.train_step()``, everything a user's run does per step: a batch from the
on-device uint8 pipeline, forward + L_simple (Eq. 14) under AMP, backward, gradient clipping, Adam,
the learning-rate schedule, the EMA update and the on-device finite flag. The peer is the *same*
Trainer with the network swapped for diffusers' ``UNet2DModel`` of the same configuration
(35,746,307 parameters for ``cifar10``), so both sides run the identical step around their network.

Settings: ``eager`` and ``compiled`` (``torch.compile``, the Trainer's ``compile`` flag); each side's
*best* is its faster one. Per setting both trainers are built and warmed up (compilation and
cuDNN autotuning happen there), then timed in ``--repeats`` interleaved repeats (A B A B ...) of
``--steps`` steps, each bracketed by device synchronizations. Reported per side: median ms/step (IQR,
min-max), it/s and images/s from the median, MFU (model FLOPs of forward + backward counted by
``torch.utils.flop_counter`` times it/s, over the GPU's datasheet dense bf16 peak and over a bf16
matmul measured in the same run), peak memory allocated during the timed steps (the statistics are
reset after the warm-up; the other side's resident weights and optimizer state are subtracted) and
the reserved memory of the process, and the attention kernels the profiler saw. Then the ratio of
the medians, per setting and best against best. Targets (issue 15) are printed as met or missed.

    python bench/trainer_step.py --json trainer_step.json          # GPU: cifar10, batch 128
    python bench/trainer_step.py --preset tiny --batch 4 --repeats 2 --steps 1 --warmup 1   # CPU rehearsal
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unet_throughput import DiffusersEps, diffusers_equivalent, load_diffusers, summarize  # noqa: E402

SETTINGS = ("eager", "compiled")
# Dense bf16 tensor-core peaks from NVIDIA's datasheets (TFLOP/s), matched against the device name in order.
DATASHEET_BF16_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100", 989.4), ("A100", 312.0), ("L4", 121.0))
TARGETS = {"eager_it_s": 40.0, "compiled_it_s": 60.0, "best_ratio": 1.2, "peak_gb": 16.0}
ATTENTION = re.compile(r"flash|efficient_attention|fmha|scaled_dot_product|_attention|cutlass.*attn", re.I)


def network_builders(preset: str, include_diffusers: bool) -> dict[str, Callable[[], torch.nn.Module] | None]:
    """{"minidiff": None (the Trainer's own network), "diffusers": a builder of the equivalent UNet2DModel}."""
    out: dict[str, Callable[[], torch.nn.Module] | None] = {"minidiff": None}
    if include_diffusers:
        diffusers = load_diffusers()
        if diffusers is None:
            print("diffusers is NOT installed: measuring minidiff only (pip install 'minidiff[bench]').")
        else:
            out["diffusers"] = lambda: DiffusersEps(diffusers_equivalent(diffusers, preset))
    return out


@contextlib.contextmanager
def _trainer_network(build: Callable[[], torch.nn.Module] | None):
    """While building a Trainer, let it train the network ``build()`` returns (None: its own)."""
    from minidiff.training import trainer as trainer_module

    if build is None:
        yield
        return
    if not hasattr(trainer_module, "build_model"):
        raise RuntimeError("minidiff.training.trainer no longer calls build_model(config): update "
                           "bench/trainer_step.py to swap the network another way")
    saved = trainer_module.build_model
    trainer_module.build_model = lambda config: build()
    try:
        yield
    finally:
        trainer_module.build_model = saved


def synthetic_data(image_shape: tuple[int, int, int], n: int, seed: int = 0):
    """Random uint8 images behind the Trainer's data interface (the pipeline's cost does not depend on content)."""
    from minidiff.data.images import ImageData

    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *image_shape), generator=g, dtype=torch.uint8)
    return ImageData("synthetic", images, torch.zeros(n, dtype=torch.long), 10, flip=image_shape[0] == 3)


def make_trainer(side: str, build, preset: str, setting: str, batch: int, data, device: torch.device,
                 workdir: Path, seed: int = 0):
    """A Trainer (cifar10 recipe otherwise: Adam, warm-up, clipping at 1, EMA 0.9999, AMP auto) and its step."""
    from minidiff.training import TrainConfig, Trainer

    config = TrainConfig(preset=preset, data="cifar10" if data.image_shape[0] == 3 else "mnist", batch_size=batch,
                         compile=setting == "compiled", device=str(device), out=str(workdir / f"{side}-{setting}"),
                         progress=False, sample_every=0, steps=10**9, ckpt_every=10**9, log_every=10**9, seed=seed)
    with _trainer_network(build):
        trainer = Trainer(config, data=data)
    if build is not None and not isinstance(trainer.model, DiffusersEps):
        raise RuntimeError(f"the {side} trainer did not take the swapped network; it trains {type(trainer.model)}")
    step = trainer.train_step
    return trainer, step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _allocated(device: torch.device) -> int:
    return torch.cuda.memory_allocated(device) if device.type == "cuda" else 0


def count_flops(build: Callable[[], torch.nn.Module], batch: int, image_shape, device: torch.device) -> int:
    """FLOPs of one forward + backward of the network at ``batch`` (torch.utils.flop_counter: convs, matmuls, SDPA)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build().to(device).train()
    x = torch.randn(batch, *image_shape, device=device)
    t = torch.randint(1, 1001, (batch,), device=device)  # the paper's t in [1, T]
    with FlopCounterMode(display=False) as counter:
        model(x, t).square().mean().backward()
    del model
    return int(counter.get_total_flops())


def matmul_tflops(device: torch.device) -> float:
    """A bf16 (GPU) or fp32 (CPU) square matmul's rate in TFLOP/s: median of 10 after 3 warm-ups, random data."""
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (512, torch.float32)
    g = torch.Generator(device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    times = []
    for i in range(13):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times)) / 1e12


def datasheet_peak(name: str) -> float | None:
    for key, tflops in DATASHEET_BF16_TFLOPS:
        if key in name:
            return tflops
    return None


def profile_step(step: Callable[[], torch.Tensor], device: torch.device, steps: int = 2, rows: int = 12):
    """(attention kernels and ops the profiler saw with their counts, a table of the top kernels by self time)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        _sync(device)
    averages = prof.key_averages()
    attention = {e.key: e.count for e in averages if ATTENTION.search(e.key)  # ops and kernels, not autograd nodes
                 and not e.key.startswith("autograd::") and not e.key.endswith("Backward0")}
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return attention, averages.table(sort_by=sort, row_limit=rows, max_name_column_width=70)


def measure_setting(builders: dict, preset: str, setting: str, batch: int, warmup: int, repeats: int,
                    steps_per_repeat: int, device: torch.device, workdir: Path, data) -> dict:
    """Build and warm up one Trainer per side, then time them interleaved; memory per side after the warm-up."""
    trainers, steps, static, info = {}, {}, {}, {}
    for side, build in builders.items():
        before = _allocated(device)
        t0 = time.perf_counter()
        trainers[side], steps[side] = make_trainer(side, build, preset, setting, batch, data, device, workdir)
        for _ in range(warmup):
            steps[side]()
        _sync(device)
        static[side] = _allocated(device) - before
        info[side] = {"warmup_s": time.perf_counter() - t0,
                      "params": sum(p.numel() for p in trainers[side].model.parameters())}
    peaks = dict.fromkeys(builders, 0)
    seconds: dict[str, list[float]] = {side: [] for side in builders}
    for _ in range(repeats):
        for side, step in steps.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps_per_repeat):
                loss = step()
            _sync(device)
            seconds[side].append((time.perf_counter() - t0) / steps_per_repeat)
            if device.type == "cuda":
                peaks[side] = max(peaks[side], torch.cuda.max_memory_allocated(device))
    rows = {}
    for side in builders:
        others = sum(v for k, v in static.items() if k != side)
        loss = float(steps[side]())
        rows[side] = {"setting": setting, "batch": batch, **info[side], **summarize(seconds[side], batch),
                      "seconds_per_step": seconds[side], "final_loss": loss,
                      "peak_allocated_gib": (peaks[side] - others) / 2**30 if device.type == "cuda" else None,
                      "static_gib": static[side] / 2**30 if device.type == "cuda" else None}
    if device.type == "cuda":
        reserved = {"reserved_gib": torch.cuda.memory_reserved(device) / 2**30,
                    "max_reserved_gib": torch.cuda.max_memory_reserved(device) / 2**30}
    else:
        reserved = {"reserved_gib": None, "max_reserved_gib": None}
    for side in builders:
        rows[side]["attention_kernels"], table = profile_step(steps[side], device)
        rows[side]["profile_top"] = table
    del trainers, steps
    return {"rows": rows, "process_memory": reserved}


def _print_row(side: str, r: dict) -> None:
    q1, q3 = r["ms_per_step_iqr"]
    lo, hi = r["ms_per_step_min_max"]
    mem = ("n/a (CPU)" if r["peak_allocated_gib"] is None else
           f"peak {r['peak_allocated_gib']:.2f} GiB (static {r['static_gib']:.2f})")
    mfu = " ".join(f"MFU {k.split('_', 1)[1]} {100 * v:.1f}%" for k, v in r.items()
                   if k.startswith("mfu_") and v is not None)
    print(f"{side:>9} {r['setting']:>8}: {r['it_per_s']:8.2f} it/s {r['images_per_s']:9.1f} img/s | ms/step "
          f"{r['ms_per_step']:.2f} (IQR {q1:.2f}-{q3:.2f}, min-max {lo:.2f}-{hi:.2f}) | {mfu} | {mem} | "
          f"loss {r['final_loss']:.4f} | warm-up {r['warmup_s']:.1f} s", flush=True)
    print(f"{'':>20}attention: {r['attention_kernels'] or 'none seen'}", flush=True)


def targets_report(results: dict) -> list[str]:
    """One line per issue-15 target: met, or missed and by how much (minidiff's figures)."""
    lines = []
    settings = results["settings"]
    for setting, key in (("eager", "eager_it_s"), ("compiled", "compiled_it_s")):
        if setting in settings:
            v, target = settings[setting]["rows"]["minidiff"]["it_per_s"], TARGETS[key]
            lines.append(f"{setting} >= {target:g} it/s: {v:.2f} it/s, " +
                         ("met" if v >= target else f"MISSED by {100 * (1 - v / target):.0f}%"))
    if "best_ratio" in results:
        v = results["best_ratio"]
        lines.append(f"best vs best >= {TARGETS['best_ratio']}x diffusers: {v:.2f}x, " +
                     ("met" if v >= TARGETS["best_ratio"] else f"MISSED by {TARGETS['best_ratio'] - v:.2f}x"))
    peaks = [s["rows"]["minidiff"]["peak_allocated_gib"] for s in settings.values()]
    if peaks and peaks[0] is not None:
        v = max(peaks) * 2**30 / 1e9
        lines.append(f"peak memory <= {TARGETS['peak_gb']:g} GB: {v:.1f} GB, " +
                     ("met" if v <= TARGETS["peak_gb"] else f"MISSED by {v - TARGETS['peak_gb']:.1f} GB"))
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="cifar10", help="network preset (default: cifar10, the paper's)")
    p.add_argument("--device", default="auto", help="auto, cuda or cpu")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: 128 on GPU, 4 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per trainer (default: 15 GPU, 1 CPU)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved timed repeats (default: 10 GPU, 3 CPU)")
    p.add_argument("--steps", type=int, default=None, help="steps per repeat (default: 10 GPU, 1 CPU)")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated from {', '.join(SETTINGS)}")
    p.add_argument("--compile-backend", default="inductor",
                   help="torch.compile backend for 'compiled' (eager: a CPU rehearsal of the dynamo path only)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1 on CPU)")
    p.add_argument("--no-diffusers", action="store_true", help="measure minidiff only")
    p.add_argument("--json", default=None, help="write the results here (rewritten after every setting)")
    args = p.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    gpu = device.type == "cuda"
    settings = [s for s in args.settings.split(",") if s]
    for s in settings:
        if s not in SETTINGS:
            p.error(f"unknown setting {s!r}; valid: {', '.join(SETTINGS)}")
    batch = args.batch or (128 if gpu else 4)
    warmup = args.warmup if args.warmup is not None else (15 if gpu else 1)
    repeats, steps = args.repeats or (10 if gpu else 3), args.steps or (10 if gpu else 1)
    if "compiled" in settings and warmup < 1:
        p.error("--warmup must be at least 1 with the compiled setting (the first step compiles)")
    if args.threads or not gpu:
        torch.set_num_threads(args.threads or 1)
    if args.compile_backend != "inductor":
        real_compile = torch.compile
        torch.compile = lambda model, **kw: real_compile(model, **{**kw, "backend": args.compile_backend})
    name = torch.cuda.get_device_name(device) if gpu else (platform.processor() or "cpu")
    from minidiff.nets.presets import build_unet, get_preset

    image_shape = get_preset(args.preset).image_shape
    builders = network_builders(args.preset, not args.no_diffusers)
    flops_builders = {"minidiff": lambda: build_unet(args.preset),
                      **{k: v for k, v in builders.items() if v is not None}}
    results: dict = {
        "device": name, "torch": torch.__version__, "python": platform.python_version(), "preset": args.preset,
        "method": {"batch": batch, "warmup": warmup, "repeats": repeats, "steps_per_repeat": steps,
                   "interleaved": True, "compile_backend": args.compile_backend,
                   "cpu_threads": torch.get_num_threads()},
        "peak_tflops_datasheet_bf16": datasheet_peak(name) if gpu else None,
        "matmul_tflops_measured": matmul_tflops(device),
        "flops_per_step": {side: count_flops(b, batch, image_shape, device) for side, b in flops_builders.items()},
        "settings": {},
    }
    print(f"device: {name}; torch {torch.__version__}; preset {args.preset}, batch {batch}; sides: "
          f"{', '.join(builders)}; matmul {results['matmul_tflops_measured']:.3g} TFLOP/s measured, datasheet "
          f"{results['peak_tflops_datasheet_bf16']} TFLOP/s; FLOPs/step (fwd+bwd): "
          f"{ {k: f'{v / 1e12:.3f} T' for k, v in results['flops_per_step'].items()} }", flush=True)
    if gpu:
        torch.backends.cudnn.benchmark = True
    data = synthetic_data(image_shape, max(4 * batch, 256))
    with tempfile.TemporaryDirectory() as tmp:
        for setting in settings:
            res = measure_setting(builders, args.preset, setting, batch, warmup, repeats, steps, device,
                                  Path(tmp), data)
            for side, r in res["rows"].items():
                flops = results["flops_per_step"][side] * r["it_per_s"]
                r["mfu_measured_matmul"] = flops / (results["matmul_tflops_measured"] * 1e12)
                peak = results["peak_tflops_datasheet_bf16"]
                r["mfu_datasheet"] = flops / (peak * 1e12) if peak else None
                _print_row(side, r)
            if "diffusers" in res["rows"]:
                a, b = res["rows"]["minidiff"], res["rows"]["diffusers"]
                paired = [y / x for x, y in zip(a["seconds_per_step"], b["seconds_per_step"])]
                res["ratio_of_medians"] = a["it_per_s"] / b["it_per_s"]
                res["paired_ratio_min_max"] = [min(paired), max(paired)]
                print(f"ratio minidiff/diffusers, {setting}: {res['ratio_of_medians']:.2f}x (ratio of medians; "
                      f"paired per-repeat {min(paired):.2f}-{max(paired):.2f}x)", flush=True)
            results["settings"][setting] = res
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
            if gpu:
                torch._dynamo.reset()
                gc.collect()
                torch.cuda.empty_cache()
    sides = results["settings"][settings[0]]["rows"].keys()
    best = {side: max((s["rows"][side] for s in results["settings"].values()), key=lambda r: r["it_per_s"])
            for side in sides}
    results["best"] = {side: {"setting": r["setting"], "it_per_s": r["it_per_s"]} for side, r in best.items()}
    if "diffusers" in best:
        results["best_ratio"] = best["minidiff"]["it_per_s"] / best["diffusers"]["it_per_s"]
        print(f"best vs best: minidiff {best['minidiff']['it_per_s']:.2f} it/s ({best['minidiff']['setting']}) / "
              f"diffusers {best['diffusers']['it_per_s']:.2f} it/s ({best['diffusers']['setting']}) = "
              f"{results['best_ratio']:.2f}x", flush=True)
    results["targets"] = targets_report(results) if gpu else ["targets are for a GPU; not judged on CPU"]
    for line in results["targets"]:
        print("target:", line)
    for setting, res in results["settings"].items():
        print(f"top kernels, minidiff {setting} (profiler, 2 steps):\n{res['rows']['minidiff']['profile_top']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
