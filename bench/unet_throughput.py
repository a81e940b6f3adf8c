"""Training throughput of the paper's CIFAR-10 U-Net (minidiff) against diffusers' UNet2DModel.

One training step = forward + backward + Adam step of L_simple (Eq. 14, via
``minidiff.losses.training_losses``) on random 32x32 images at batch 128, with both networks at
35,746,307 parameters, in the same process and under the same settings:

- ``eager-fp32``: no autocast, NCHW, no compile;
- ``bf16``, ``bf16+cl`` (channels_last), ``bf16+cl+compile``: each network's best is the fastest of these.

Reports images/s, it/s, ms/step, peak GPU memory, and the minidiff/diffusers ratio. On CPU it runs a
reduced batch as a smoke check. ``--memory`` measures the activation memory per image (saved tensors
for backward, on any device) and derives the largest batch that fits a 16 GB T4 in fp16.

    python bench/unet_throughput.py                       # GPU: batch 128, all settings
    python bench/unet_throughput.py --batch 4 --steps 2   # CPU smoke (the default on CPU)
    python bench/unet_throughput.py --memory              # activation bytes per image -> T4 batch size

diffusers is optional: ``pip install 'minidiff[bench]'`` (or ``pip install diffusers``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import platform
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

PARAMS = 35_746_307
SETTINGS = {
    "eager-fp32": dict(amp=False, channels_last=False, compile=False),
    "bf16": dict(amp=True, channels_last=False, compile=False),
    "bf16+cl": dict(amp=True, channels_last=True, compile=False),
    "bf16+cl+compile": dict(amp=True, channels_last=True, compile=True),
}


def diffusers_equivalent(diffusers):
    """diffusers' UNet2DModel with the DDPM CIFAR-10 configuration (google/ddpm-cifar10-32): 35,746,307 parameters."""
    return diffusers.UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, layers_per_block=2,
        block_out_channels=(128, 256, 256, 256),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=32, norm_eps=1e-6, dropout=0.1, downsample_padding=0,
        flip_sin_to_cos=False, freq_shift=1, attention_head_dim=None,
    )


class DiffusersEps(nn.Module):
    """model(x_t, t) -> ε̂ for a diffusers UNet2DModel (which returns an output object)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t).sample


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


def measure(make: Callable[[], nn.Module], setting: str, batch: int, steps: int, warmup: int,
            device: torch.device) -> dict:
    """Time ``steps`` training steps after ``warmup`` untimed ones; returns the figures as a dict."""
    from minidiff.losses import training_losses
    from minidiff.schedules import get_schedule

    s = SETTINGS[setting]
    torch.manual_seed(0)
    model = make().to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    fmt = torch.channels_last if s["channels_last"] else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, fused=device.type == "cuda" or None)
    net = torch.compile(model) if s["compile"] else model
    schedule = get_schedule("linear", 1000).to(device)
    x0 = (torch.rand(batch, 3, 32, 32, device=device) * 2 - 1).contiguous(memory_format=fmt)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if s["amp"] else contextlib.nullcontext()

    def step() -> None:
        with amp:
            loss = training_losses(net, x0, schedule).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    dt = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"setting": setting, "batch": batch, "params": n_params, "ms_per_step": 1000 * dt,
            "it_per_s": 1 / dt, "images_per_s": batch / dt, "peak_gib": peak, "warmup_s": warm_s}


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
    t = torch.randint(0, 1000, (batch,))
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
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 50 on GPU, 2 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 15 on GPU, 1 on CPU)")
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
    steps = args.steps or (50 if gpu else 2)
    warmup = args.warmup if args.warmup is not None else (15 if gpu else 1)
    settings = args.settings.split(",") if args.settings else (list(SETTINGS) if gpu else ["eager-fp32"])
    for s in settings:
        if s not in SETTINGS:
            p.error(f"unknown setting {s!r}; valid: {', '.join(SETTINGS)}")
    if gpu and any(SETTINGS[s]["amp"] for s in settings) and not torch.cuda.is_bf16_supported():
        print("this GPU has no bf16: the bf16 settings will be slow or fail (T4: use fp16 in the trainer)")
    if not gpu:
        print(f"CPU smoke check: batch {batch}, {steps} timed step(s); these are not the GPU figures.")
    models = builders(not args.no_diffusers)
    rows = []
    for name, make in models.items():
        for s in settings:
            r = {"model": name, **measure(make, s, batch, steps, warmup, device)}
            if gpu:
                torch.cuda.empty_cache()
                torch._dynamo.reset()
            rows.append(r)
            print(f"{name:>9} {s:>16}: {r['images_per_s']:8.1f} img/s {r['it_per_s']:7.2f} it/s "
                  f"{r['ms_per_step']:8.1f} ms/step  peak {r['peak_gib']:.2f} GiB  params {r['params']:,}"
                  f"  (warm-up {r['warmup_s']:.1f} s)", flush=True)
            if r["params"] != PARAMS:
                print(f"WARNING: {name} has {r['params']:,} parameters, expected {PARAMS:,}")
    results["rows"] = rows
    if "diffusers" in models:
        by = {(r["model"], r["setting"]): r for r in rows}
        for s in settings:
            print(f"ratio minidiff/diffusers at {s}: "
                  f"{by[('minidiff', s)]['it_per_s'] / by[('diffusers', s)]['it_per_s']:.2f}x")
        best = {m: max((r for r in rows if r["model"] == m), key=lambda r: r["it_per_s"]) for m in models}
        ratio = best["minidiff"]["it_per_s"] / best["diffusers"]["it_per_s"]
        results["best_ratio"] = ratio
        print(f"best vs best: minidiff {best['minidiff']['it_per_s']:.2f} it/s ({best['minidiff']['setting']}) / "
              f"diffusers {best['diffusers']['it_per_s']:.2f} it/s ({best['diffusers']['setting']}) = {ratio:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
