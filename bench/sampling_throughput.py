"""Sampling throughput of ``sample_to_disk`` (issue 15 item 11): images/s for Algorithm 2 and DDIM-50, 50k projected.

What is timed is the user's path, :func:`minidiff.training.sample_to_disk.sample_to_disk` (chunks,
one ``sample_loop`` per noise group, bf16 autocast on the network where supported, uint8 ``.npz``
written to disk), on the preset's U-Net with random weights (speed does not depend on training).

1. For each chunk size: one untimed 2-step run (cuDNN autotuning for that shape), then a timed run of
   ``--probe-steps`` respaced ancestral steps (Algorithm 2 on a subset of the steps does the same work
   per step as all 1000). Seconds per step = wall time / steps; the 1000-step images/s is
   chunk / (1000 x seconds per step). The same run with the network replaced by zeros gives the time
   per step spent outside the network (the sampler's math, Python, noise), to show where time goes.
2. At the fastest chunk size: a complete DDIM-50 run, timed end to end, and optionally (``--compile``)
   the same probe with the network compiled (after an untimed compiling run).
3. The projected time for 50,000 images is 50,000 / images/s for each, printed against the targets
   (50k x 1000 steps in <= 35 min; DDIM-50 in <= 2 min).

    python bench/sampling_throughput.py --json sampling.json                # GPU: cifar10, chunks 256..2048
    python bench/sampling_throughput.py --preset tiny --chunks 2,4 --noise-group 1 --probe-steps 2 --ddim-steps 3
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

TARGET_MIN = {"ancestral_1000": 35.0, "ddim_50": 2.0}


def _network(preset: str, device: torch.device) -> torch.nn.Module:
    """The preset's U-Net with small random weights on every layer (the zero-initialized ones too)."""
    from minidiff.nets.presets import build_unet

    torch.manual_seed(0)
    model = build_unet(preset)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model = model.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def _run(model, chunk: int, image_shape, schedule, out: Path, **kw):
    from minidiff.training.sample_to_disk import sample_to_disk

    return sample_to_disk(model, (chunk, *image_shape), schedule, out, chunk_size=chunk, progress=False, grid_n=0,
                          **kw)


def probe(model, chunk: int, image_shape, schedule, out: Path, steps: int, **kw) -> float:
    """Seconds per respaced ancestral step at this chunk size, after an untimed 2-step run."""
    _run(model, chunk, image_shape, schedule, out, sampler="ddpm", steps=2, **kw)
    run = _run(model, chunk, image_shape, schedule, out, sampler="ddpm", steps=steps, **kw)
    return run.seconds / steps


def peer_probe(model, chunk: int, image_shape, schedule, steps: int, amp: str, device: torch.device) -> float:
    """Seconds per step of plain ``minidiff.samplers.sample`` on one batch of ``chunk`` (one generator, no groups,
    nothing written), the network under the same autocast, after an untimed 2-step run: the peer of ``probe``."""
    import contextlib

    from minidiff.samplers import sample
    from minidiff.training.sample_to_disk import resolve_sampling_amp

    dtype = resolve_sampling_amp(amp, device)

    def net(x, t):
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            return model(x, t).float()

    seconds = 0.0
    for n in (2, steps):
        with torch.inference_mode():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            sample(net, (chunk, *image_shape), schedule, steps=n, seed=0, device=device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - t0
    return seconds / steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="cifar10")
    p.add_argument("--device", default="auto", help="auto, cuda or cpu")
    p.add_argument("--chunks", default=None, help="chunk sizes (default: 256,512,1024,2048 on GPU; 2,4 on CPU)")
    p.add_argument("--noise-group", type=int, default=16, help="sample_to_disk's noise_group (default: 16)")
    p.add_argument("--probe-steps", type=int, default=20, help="timed ancestral steps per chunk size")
    p.add_argument("--ddim-steps", type=int, default=50, help="steps of the complete DDIM run")
    p.add_argument("--T", type=int, default=1000, help="diffusion steps T; Algorithm 2 takes all of them")
    p.add_argument("--n", type=int, default=50_000, help="images of the projection")
    p.add_argument("--amp", default="auto", help="sample_to_disk's amp: auto, bf16 or off")
    p.add_argument("--compile", action="store_true", help="also time the compiled network at the best chunk size")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1 on CPU)")
    p.add_argument("--outside-only", action="store_true",
                   help="time only what is outside the network (sampler math, Python, noise, writing) per step")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from minidiff.nets.presets import get_preset
    from minidiff.schedules import get_schedule

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    gpu = device.type == "cuda"
    if args.threads or not gpu:
        torch.set_num_threads(args.threads or 1)
    if gpu:
        torch.backends.cudnn.benchmark = True
    chunks = [int(c) for c in (args.chunks or ("256,512,1024,2048" if gpu else "2,4")).split(",")]
    image_shape = get_preset(args.preset).image_shape
    schedule = get_schedule("linear", args.T)
    model = _network(args.preset, device)
    kw = dict(noise_group=args.noise_group, amp=args.amp, device=device)
    name = torch.cuda.get_device_name(device) if gpu else (platform.processor() or "cpu")
    results: dict = {"device": name, "torch": torch.__version__, "preset": args.preset, "T": args.T,
                     "noise_group": args.noise_group, "amp": args.amp, "probe_steps": args.probe_steps, "chunks": []}
    print(f"device: {name}; torch {torch.__version__}; preset {args.preset}; noise_group {args.noise_group}; "
          f"amp {args.amp}", flush=True)

    def zeros(x, t):
        return torch.zeros_like(x)

    def save():
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for chunk in chunks:
            outside = probe(zeros, chunk, image_shape, schedule, out, args.probe_steps, **kw)
            if args.outside_only:
                results["chunks"].append({"chunk": chunk, "seconds_per_step_without_network": outside})
                print(f"chunk {chunk:5d}: {1000 * outside:.2f} ms/step outside the network "
                      f"({1e6 * outside / (chunk // args.noise_group):.0f} us per noise group)", flush=True)
                save()
                continue
            per_step = probe(model, chunk, image_shape, schedule, out, args.probe_steps, **kw)
            row = {"chunk": chunk, "seconds_per_step": per_step, "seconds_per_step_without_network": outside,
                   "ancestral_images_per_s": chunk / (per_step * args.T)}
            results["chunks"].append(row)
            print(f"chunk {chunk:5d}: {1000 * per_step:8.2f} ms/step ({1000 * outside:.2f} ms outside the network) "
                  f"-> {row['ancestral_images_per_s']:.2f} images/s at {args.T} steps", flush=True)
            save()
        if args.outside_only:
            return 0
        best = max(results["chunks"], key=lambda r: r["ancestral_images_per_s"])
        results["best_chunk"] = best["chunk"]
        ips = best["ancestral_images_per_s"]
        # The peer, interleaved with sample_to_disk at the best chunk size: what per-image reproducibility costs.
        mine, peer = [], []
        for _ in range(3):
            mine.append(probe(model, best["chunk"], image_shape, schedule, out, args.probe_steps, **kw))
            peer.append(peer_probe(model, best["chunk"], image_shape, schedule, args.probe_steps, args.amp, device))
        mine_s, peer_s = sorted(mine)[1], sorted(peer)[1]
        results["peer"] = {"chunk": best["chunk"], "sample_to_disk_seconds_per_step": mine,
                           "plain_sample_seconds_per_step": peer, "ratio_of_medians": peer_s / mine_s}
        print(f"peer at chunk {best['chunk']}: sample_to_disk {1000 * mine_s:.2f} ms/step, plain "
              f"minidiff.samplers.sample on one batch {1000 * peer_s:.2f} ms/step (medians of 3, interleaved): "
              f"sample_to_disk runs at {peer_s / mine_s:.2f}x the plain sampler's speed", flush=True)
        results["ancestral"] = {"images_per_s": ips, "projected_minutes": args.n / ips / 60,
                                "how": f"{args.T} x the seconds per step of a {args.probe_steps}-step probe"}
        ddim = _run(model, best["chunk"], image_shape, schedule, out, sampler="ddim", steps=args.ddim_steps, **kw)
        results["ddim"] = {"steps": args.ddim_steps, "images_per_s": ddim.images_per_s,
                           "projected_minutes": args.n / ddim.images_per_s / 60, "seconds": ddim.seconds,
                           "how": "one complete run of one chunk, timed end to end"}
        save()
        if args.compile:
            compiled = torch.compile(model, dynamic=False)
            t0 = time.perf_counter()
            _run(compiled, best["chunk"], image_shape, schedule, out, sampler="ddpm", steps=2, **kw)
            compile_s = time.perf_counter() - t0
            per_step = probe(compiled, best["chunk"], image_shape, schedule, out, args.probe_steps, **kw)
            c_ips = best["chunk"] / (per_step * args.T)
            results["compiled"] = {"chunk": best["chunk"], "seconds_per_step": per_step, "compile_s": compile_s,
                                   "ancestral_images_per_s": c_ips, "projected_minutes": args.n / c_ips / 60}
            print(f"compiled, chunk {best['chunk']}: {1000 * per_step:.2f} ms/step -> {c_ips:.2f} images/s "
                  f"(first run incl. compiling {compile_s:.0f} s)", flush=True)
            save()
    fastest = max(ips, results.get("compiled", {}).get("ancestral_images_per_s", 0.0))
    lines = [f"ancestral {args.T} steps at chunk {best['chunk']}: {ips:.2f} images/s -> {args.n:,} images in "
             f"{args.n / ips / 60:.1f} min (eager)",
             f"DDIM-{args.ddim_steps} at chunk {best['chunk']}: {ddim.images_per_s:.2f} images/s -> {args.n:,} images "
             f"in {args.n / ddim.images_per_s / 60:.2f} min"]
    lines.append(f"sample_to_disk at {results['peer']['ratio_of_medians']:.2f}x the speed of plain sample() on one "
                 f"batch of {best['chunk']} (ratio of medians, same run)")
    if gpu and args.T == 1000 and args.n == 50_000:
        for key, minutes in (("ancestral_1000", args.n / fastest / 60),
                             ("ddim_50", args.n / ddim.images_per_s / 60 if args.ddim_steps == 50 else None)):
            if minutes is not None:
                target = TARGET_MIN[key]
                lines.append(f"target {key} <= {target:g} min: {minutes:.1f} min, " +
                             ("met" if minutes <= target else f"MISSED by {minutes - target:.1f} min"))
    results["summary"] = lines
    save()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
