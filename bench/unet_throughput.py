"""Training throughput of the paper's CIFAR-10 U-Net (minidiff) against diffusers' UNet2DModel.

One training step = forward + backward + Adam step of L_simple (Eq. 14, via
``minidiff.losses.training_losses``) on random 32x32 images at batch 128, with both networks at
35,746,307 parameters, in the same process and under the same settings:

- ``eager-fp32``: no autocast, NCHW, no compile;
- ``bf16``, ``bf16+cl`` (channels_last), ``bf16+cl+compile``: each network's best is the fastest of these.

Method, per setting: both networks are built from the same seed and trained on the same input batch
with the same sequence of t and noise; each gets ``--warmup`` untimed steps, then ``--repeats`` timed
repeats of ``--steps`` steps each, *interleaved* (A B A B ...), so that both run under the same
slowly drifting conditions (other jobs, clocks). On CUDA each repeat is bracketed by
``torch.cuda.synchronize``. Reported per network: the median time per step with its min-max and IQR
over the repeats, it/s and images/s from the median, peak GPU memory; then the ratio of the medians
(minidiff it/s / diffusers it/s) with the range of the per-repeat paired ratios. On CPU it runs a
reduced batch as a smoke check. ``--memory`` measures the activation memory per image (saved tensors
for backward, on any device) and derives the largest batch that fits a 16 GB T4 in fp16.

    python bench/unet_throughput.py                       # GPU: batch 128, all settings
    python bench/unet_throughput.py --batch 4 --repeats 9 # CPU smoke (the default on CPU)
    python bench/unet_throughput.py --memory              # activation bytes per image -> T4 batch size

diffusers is optional: ``pip install 'minidiff[bench]'`` (or ``pip install diffusers``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import math
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from minidiff.nets.diffusers_peer import diffusers_config

PARAMS = 35_746_307
SETTINGS = {
    "eager-fp32": dict(amp=False, channels_last=False, compile=False),
    "bf16": dict(amp=True, channels_last=False, compile=False),
    "bf16+cl": dict(amp=True, channels_last=True, compile=False),
    "bf16+cl+compile": dict(amp=True, channels_last=True, compile=True),
}


def diffusers_equivalent(diffusers, preset: str = "cifar10"):
    """diffusers' UNet2DModel of a preset; for cifar10 the DDPM configuration (google/ddpm-cifar10-32), 35,746,307
    parameters: blocks 128/256/256/256, attention at 16x16, 2 layers per block, GroupNorm(32), dropout 0.1."""
    from minidiff.nets.presets import get_preset

    return diffusers.UNet2DModel(**diffusers_config(get_preset(preset).unet))


class DiffusersEps(nn.Module):
    """model(x_t, t) -> ε̂ for a diffusers UNet2DModel (which returns an output object)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        from minidiff.schedules import to_zero_indexed

        return self.unet(x, to_zero_indexed(t)).sample  # diffusers counts time from 0; minidiff from 1


def load_diffusers():
    try:
        return importlib.import_module("diffusers")
    except ImportError:
        return None


def builders(include_diffusers: bool) -> dict[str, Callable[[], nn.Module]]:
    from minidiff.nets.presets import build_unet

    out: dict[str, Callable[[], nn.Module]] = {"minidiff": lambda: build_unet("cifar10")}
    if include_diffusers:
        diffusers = load_diffusers()
        if diffusers is None:
            print("diffusers is NOT installed: measuring minidiff only. Install it with "
                  "`pip install 'minidiff[bench]'` (or `pip install diffusers`) for the comparison.")
        else:
            out["diffusers"] = lambda: DiffusersEps(diffusers_equivalent(diffusers))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_train_step(model: nn.Module, setting: str, x0: torch.Tensor, seed: int = 0) -> Callable[[], torch.Tensor]:
    """One training step of ``model`` under ``setting``: forward + backward + Adam step of L_simple (Eq. 14).

    ``x0``: (B, C, H, W), on the device and in the memory format of the setting; it is the batch of
    every step. t and the noise come from a generator seeded with ``seed``, so two networks given
    the same ``x0`` and ``seed`` see the same sequence of (x_t, t). The step returns the detached
    loss (no host sync).
    """
    from minidiff.losses import training_losses
    from minidiff.schedules import get_schedule

    s = SETTINGS[setting]
    device = x0.device
    fmt = torch.channels_last if s["channels_last"] else torch.contiguous_format
    model = model.to(device).train().to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, fused=device.type == "cuda" or None)
    net = torch.compile(model) if s["compile"] else model
    schedule = get_schedule("linear", 1000).to(device)
    gen = torch.Generator(device).manual_seed(seed)

    def step() -> torch.Tensor:
        amp = torch.autocast(device.type, dtype=torch.bfloat16) if s["amp"] else contextlib.nullcontext()
        with amp:
            loss = training_losses(net, x0, schedule, generator=gen).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def time_interleaved(steps: dict[str, Callable[[], object]], repeats: int, steps_per_repeat: int,
                     device: torch.device) -> dict[str, list[float]]:
    """Seconds per step of each network, one entry per repeat, the networks' repeats interleaved (A B A B ...).

    Interleaving exposes every network to the same slowly changing conditions (load from other
    jobs, clock and thermal changes), so the ratio is not decided by which network ran first. Each
    repeat is timed with ``time.perf_counter`` between two device synchronizations.
    """
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps_per_repeat):
                step()
            _sync(device)
            times[name].append((time.perf_counter() - t0) / steps_per_repeat)
    return times


def summarize(seconds: list[float], batch: int) -> dict:
    """Median, IQR and min-max of the seconds per step over the repeats; it/s and images/s from the median."""
    ms = 1000 * np.asarray(seconds, dtype=float)
    median = float(np.median(ms))
    q1, q3 = (float(q) for q in np.percentile(ms, [25, 75]))
    return {"repeats": len(seconds), "ms_per_step": median, "ms_per_step_iqr": [q1, q3],
            "ms_per_step_min_max": [float(ms.min()), float(ms.max())],
            "it_per_s": 1000 / median, "it_per_s_min_max": [1000 / float(ms.max()), 1000 / float(ms.min())],
            "images_per_s": batch * 1000 / median}


def measure_setting(makers: dict[str, Callable[[], nn.Module]], setting: str, batch: int, warmup: int,
                    repeats: int, steps_per_repeat: int, device: torch.device, seed: int = 0,
                    image_shape: tuple[int, int, int] = (3, 32, 32)) -> list[dict]:
    """Warm up each network, then time them interleaved; one result row per network.

    All networks are built after ``torch.manual_seed(seed)`` and train on the same ``x0`` with the
    same t and noise. Peak GPU memory of a network is ``max_memory_allocated`` (reset just before it
    is built) minus the bytes allocated before it was built, i.e. those of the networks built
    earlier, which do not change while it warms up; it is measured over the warm-up steps.
    """
    fmt = torch.channels_last if SETTINGS[setting]["channels_last"] else torch.contiguous_format
    gen = torch.Generator(device).manual_seed(seed)
    x0 = (torch.rand(batch, *image_shape, device=device, generator=gen) * 2 - 1).contiguous(memory_format=fmt)
    steps, info = {}, {}
    for name, make in makers.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        torch.manual_seed(seed)
        model = make()
        params = sum(p.numel() for p in model.parameters())
        steps[name] = make_train_step(model, setting, x0, seed)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(warmup):
            steps[name]()
        _sync(device)
        peak = ((torch.cuda.max_memory_allocated(device) - before) / 2**30 if device.type == "cuda" and warmup
                else float("nan"))  # no peak without warm-up steps (or on CPU)
        info[name] = {"params": params, "peak_gib": peak, "warmup_s": time.perf_counter() - t0}
    times = time_interleaved(steps, repeats, steps_per_repeat, device)
    return [{"model": name, "setting": setting, "batch": batch, "steps_per_repeat": steps_per_repeat,
             **info[name], **summarize(times[name], batch), "seconds_per_step": times[name]} for name in steps]


def ratio(rows: list[dict], a: str = "minidiff", b: str = "diffusers") -> dict:
    """it/s of ``a`` over ``b`` from the medians, and the min-max of the per-repeat (paired) ratios."""
    by = {r["model"]: r for r in rows}
    ta, tb = by[a]["seconds_per_step"], by[b]["seconds_per_step"]
    if len(ta) != len(tb):
        raise ValueError(f"{a} has {len(ta)} repeats and {b} has {len(tb)}; paired ratios need the same number")
    paired = [y / x for x, y in zip(ta, tb)]
    return {"ratio_of_medians": by[a]["it_per_s"] / by[b]["it_per_s"], "paired_min_max": [min(paired), max(paired)]}


def _print_row(r: dict) -> None:
    lo, hi = r["ms_per_step_min_max"]
    q1, q3 = r["ms_per_step_iqr"]
    peak = "n/a" if math.isnan(r["peak_gib"]) else f"{r['peak_gib']:.2f} GiB"
    print(f"{r['model']:>9} {r['setting']:>16}: {r['it_per_s']:7.2f} it/s {r['images_per_s']:8.1f} img/s | "
          f"ms/step median {r['ms_per_step']:.1f}, IQR {q1:.1f}-{q3:.1f}, min-max {lo:.1f}-{hi:.1f} "
          f"({r['repeats']} x {r['steps_per_repeat']} steps) | peak {peak} | "
          f"params {r['params']:,} | warm-up {r['warmup_s']:.1f} s", flush=True)
    if r["params"] != PARAMS and r["model"] in ("minidiff", "diffusers"):
        print(f"WARNING: {r['model']} has {r['params']:,} parameters, expected {PARAMS:,}")


def activation_bytes_per_image(amp: bool, batch: int = 2, attention_matrices: bool = False) -> float:
    """Bytes of tensors saved for backward per image (the part of training memory that grows with the batch).

    Measured with ``torch.autograd.graph.saved_tensors_hooks`` on the cifar10 preset, counting each
    storage once. ``amp`` runs under bf16 autocast (same 2-byte size as fp16). Attention matrices
    (HW x HW per attention layer) are excluded unless ``attention_matrices``: fused attention kernels
    on GPU (memory-efficient / flash) do not store them; the CPU math path does.
    """
    from minidiff.nets.presets import build_unet

    model = build_unet("cifar10").train()
    x = torch.randn(batch, 3, 32, 32)
    t = torch.randint(1, 1001, (batch,))  # the paper's t in [1, T]
    seen: dict[tuple, int] = {}

    def pack(tensor: torch.Tensor):
        if tensor.layout == torch.strided and tensor.device.type != "meta":
            key = (tensor.untyped_storage().data_ptr(), tensor.dtype)
            nbytes = tensor.untyped_storage().nbytes()
            hw = 16 * 16
            if not attention_matrices and tensor.dim() >= 2 and tuple(tensor.shape[-2:]) == (hw, hw):
                nbytes = 0
            seen[key] = max(seen.get(key, 0), nbytes)
        return tensor

    amp_ctx = torch.autocast("cpu", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t_: t_), amp_ctx:
        out = model(x, t)
        loss = ((out - torch.randn_like(out)) ** 2).mean()
    del loss
    # Parameters (and their bf16 copies under autocast) are batch-independent: count them as static.
    per_batch = sum(n for (ptr, _), n in seen.items() if ptr not in params)
    weight_copies = PARAMS * 2 if amp else 0
    return max(per_batch - weight_copies, 0) / batch


def memory_report() -> dict:
    """Derive the largest fp16 batch for a 16 GB T4 from CPU-measured activation bytes (not a GPU measurement)."""
    fp32 = activation_bytes_per_image(amp=False)
    half = activation_bytes_per_image(amp=True)
    static = PARAMS * (4 + 4 + 8 + 4) + PARAMS * 2  # weights, grads, Adam m and v, EMA; fp16 weight copies
    t4_usable = 15.0 * 2**30  # a 16 GB T4 shows 15.0 GiB to PyTorch on Colab
    context = 0.5 * 2**30  # CUDA context + cuDNN/cuBLAS workspaces (not in the caching allocator)
    overhead = 1.25  # allocator fragmentation and transient buffers (conv workspaces, backward temporaries)
    t4_batch = int((t4_usable - context - static) / (half * overhead))
    bf16_128 = (static + context + 128 * half * overhead) / 2**30
    return {"activation_mib_per_image_fp32": fp32 / 2**20, "activation_mib_per_image_half": half / 2**20,
            "static_gib": static / 2**30, "t4_fp16_max_batch_derived": t4_batch,
            "t4_fp16_batch_recommended": 2 ** int(math.log2(max(t4_batch, 1))) if t4_batch < 128 else 128,
            "bf16_batch128_gib_derived": bf16_128}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto, cuda or cpu")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: 128 on GPU, 4 on CPU)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per repeat (default: 10 on GPU, 1 on CPU)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats per network, interleaved between networks (default: 10 on GPU, 9 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 15 on GPU, 1 on CPU)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads, torch.set_num_threads (default: 1 on CPU, where one thread is far less "
                        "disturbed by other jobs on shared cores; torch's default on GPU)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the input batch, t and the noise")
    p.add_argument("--settings", default=None,
                   help=f"comma-separated, from {', '.join(SETTINGS)} (default: all on GPU, eager-fp32 on CPU)")
    p.add_argument("--no-diffusers", action="store_true", help="measure minidiff only")
    p.add_argument("--memory", action="store_true", help="activation memory per image and the T4 fp16 batch size")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    gpu = device.type == "cuda"
    print(f"device: {torch.cuda.get_device_name(device) if gpu else platform.processor() or 'cpu'}; "
          f"torch {torch.__version__}; python {platform.python_version()}")
    results: dict = {"device": torch.cuda.get_device_name(device) if gpu else "cpu", "torch": torch.__version__}
    if args.memory:
        mem = memory_report()
        results["memory"] = mem
        print("activation memory (saved for backward), measured on CPU with saved-tensor hooks:")
        print(f"  fp32: {mem['activation_mib_per_image_fp32']:.1f} MiB/image; 16-bit autocast: "
              f"{mem['activation_mib_per_image_half']:.1f} MiB/image; static (weights, grads, Adam, EMA): "
              f"{mem['static_gib']:.2f} GiB")
        print(f"  derived (not measured on a GPU): a 16 GB T4 in fp16 fits batch <= "
              f"{mem['t4_fp16_max_batch_derived']} -> use {mem['t4_fp16_batch_recommended']}; "
              f"batch 128 in bf16 needs ~{mem['bf16_batch128_gib_derived']:.1f} GiB")
    batch = args.batch or (128 if gpu else 4)
    steps = args.steps or (10 if gpu else 1)
    repeats = args.repeats or (10 if gpu else 9)
    warmup = args.warmup if args.warmup is not None else (15 if gpu else 1)
    settings = args.settings.split(",") if args.settings else (list(SETTINGS) if gpu else ["eager-fp32"])
    for s in settings:
        if s not in SETTINGS:
            p.error(f"unknown setting {s!r}; valid: {', '.join(SETTINGS)}")
    if any(SETTINGS[s]["compile"] for s in settings) and warmup < 1:
        p.error("--warmup must be at least 1 with torch.compile (the first step compiles)")
    if gpu:
        torch.backends.cudnn.benchmark = True  # both networks get autotuned kernels during the warm-up
        if any(SETTINGS[s]["amp"] for s in settings) and not torch.cuda.is_bf16_supported():
            print("this GPU has no bf16: the bf16 settings will be slow or fail (T4: use fp16 in the trainer)")
    threads = args.threads or (None if gpu else 1)
    if threads:
        torch.set_num_threads(threads)
    if not gpu:
        print(f"CPU smoke check: batch {batch}, {torch.get_num_threads()} thread(s); these are not the GPU figures.")
    print(f"method: {warmup} warm-up step(s), then {repeats} repeats x {steps} timed step(s) per network, "
          f"interleaved; seed {args.seed}")
    results["method"] = {"batch": batch, "warmup": warmup, "repeats": repeats, "steps_per_repeat": steps,
                         "seed": args.seed, "interleaved": True, "cpu_threads": torch.get_num_threads()}
    makers = builders(not args.no_diffusers)
    rows, ratios = [], {}
    for s in settings:
        setting_rows = measure_setting(makers, s, batch, warmup, repeats, steps, device, args.seed)
        for r in setting_rows:
            _print_row(r)
        rows += setting_rows
        if "diffusers" in makers:
            ratios[s] = ratio(setting_rows)
            lo, hi = ratios[s]["paired_min_max"]
            print(f"ratio minidiff/diffusers at {s}: {ratios[s]['ratio_of_medians']:.2f}x "
                  f"(ratio of medians; per-repeat paired ratios {lo:.2f}-{hi:.2f}x)", flush=True)
        if gpu:  # free this setting's networks (compiled graphs hold references) before the next one
            torch._dynamo.reset()
            gc.collect()
            torch.cuda.empty_cache()
    results["rows"] = rows
    if "diffusers" in makers:
        results["ratios"] = ratios
        best = {m: max((r for r in rows if r["model"] == m), key=lambda r: r["it_per_s"]) for m in makers}
        results["best_ratio"] = best["minidiff"]["it_per_s"] / best["diffusers"]["it_per_s"]
        results["best_settings"] = {m: best[m]["setting"] for m in makers}
        print(f"best vs best (medians): minidiff {best['minidiff']['it_per_s']:.2f} it/s "
              f"({best['minidiff']['setting']}) / diffusers {best['diffusers']['it_per_s']:.2f} it/s "
              f"({best['diffusers']['setting']}) = {results['best_ratio']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
