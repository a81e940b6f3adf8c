"""The two Python ends of ``bench/gpu_check.sh``: ``env`` records the machine, ``merge`` writes the one JSON.

    python bench/gpu_check_report.py env WORK          # -> WORK/env.json
    python bench/gpu_check_report.py grid NPZ PNG      # the first 64 images of a `minidiff sample` .npz as a grid
    python bench/gpu_check_report.py merge WORK OUT    # -> OUT/gpu_check.json, and a summary printed last
"""

from __future__ import annotations

import csv
import json
import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def env(work: Path) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(device=p.name, capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count,
                    memory_gib=p.total_memory / 2**30)
        try:
            info["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw",
                 "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError) as e:
            info["nvidia_smi"] = f"unavailable: {e}"
    for name in ("diffusers", "mlxtend", "numpy", "triton"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    (work / "env.json").write_text(json.dumps(info, indent=2))
    return info


def grid(npz: Path, png: Path, n: int = 64) -> None:
    """The first ``n`` images of an .npz written by ``minidiff sample`` ('arr_0': (N, H, W, C) uint8) as a PNG grid."""
    import numpy as np
    import torch

    from minidiff.data.images import save_image_grid

    with np.load(npz) as f:
        images = torch.from_numpy(f["arr_0"][:n]).permute(0, 3, 1, 2)
    save_image_grid(images.float() / 127.5 - 1.0, png)


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _tests(path: Path) -> dict | None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    cases = []
    for case in suite.iter("testcase"):
        status = "passed"
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                cases.append({"test": case.get("name"), "status": status,
                              "message": (node.get("message") or "")[:300]})
                break
        else:
            cases.append({"test": case.get("name"), "status": status})
    counts = {s: sum(c["status"] == s for c in cases) for s in ("passed", "failed", "error", "skipped")}
    return {"counts": counts, "cases": cases}


def _mnist(work: Path) -> dict | None:
    log = work / "mnist" / "log.csv"
    if not log.exists():
        return None
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    return {"log_rows": len(rows), "last": rows[-1] if rows else None}


def merge(work: Path, out: Path) -> dict:
    stages = [json.loads(line) for line in (work / "stages.jsonl").read_text().splitlines() if line.strip()]
    result = {
        "env": _load(work / "env.json"), "stages": stages, "tests": _tests(work / "tests.xml"),
        "trainer_step": _load(work / "trainer_step.json"), "sampling": _load(work / "sampling.json"),
        "trainer_options": _load(work / "trainer_options.json"),
        "mnist": _mnist(work), "pngs": sorted(p.name for p in out.glob("*.png")),
    }

    (out / "gpu_check.json").write_text(json.dumps(result, indent=2))
    lines = ["", "==== gpu_check summary ===="]
    e = result["env"] or {}
    lines.append(f"machine: {e.get('device', 'cpu')} | torch {e.get('torch')} | CUDA {e.get('cuda')} | "
                 f"diffusers {e.get('diffusers')}")
    for s in stages:
        lines.append(f"stage {s['stage']:<16} rc {s['rc']:>3}  {s['seconds']:7.1f} s")
    if result["tests"]:
        lines.append(f"gpu tests: {result['tests']['counts']}")
        lines += [f"  {c['status'].upper()}: {c['test']}: {c.get('message', '')}" for c in result["tests"]["cases"]
                  if c["status"] in ("failed", "error")]
    ts = result["trainer_step"] or {}
    for setting, res in ts.get("settings", {}).items():
        for side, r in res["rows"].items():
            peak = r.get("peak_allocated_gib")
            lines.append(f"train {setting:>8} {side:>9}: {r['it_per_s']:7.2f} it/s, MFU(datasheet) "
                         f"{r.get('mfu_datasheet') or float('nan'):.3f}, peak "
                         f"{'n/a' if peak is None else f'{peak:.2f} GiB'}, attention {sorted(r['attention_kernels'])}")
        if "ratio_of_medians" in res:
            lines.append(f"train {setting:>8} ratio minidiff/diffusers: {res['ratio_of_medians']:.2f}x")
    if "best_ratio" in ts:
        lines.append(f"train best vs best: {ts['best_ratio']:.2f}x")
    lines += [f"train target: {t}" for t in ts.get("targets", [])]
    for r in (result["trainer_options"] or {}).get("results", []):
        if "speedup" in r:
            lines.append(f"option {r['option']:<16} on/off speed-up {r['speedup']:.2f}x ({r['verdict']})")
    lines += [f"sampling: {t}" for t in (result["sampling"] or {}).get("summary", [])]
    m = result["mnist"]
    if m and m["last"]:
        lines.append(f"mnist 2-minute run: step {m['last'].get('step')}, loss {m['last'].get('loss')}, "
                     f"{m['last'].get('images_per_s')} images/s; grids: {result['pngs']}")

    print("\n".join(lines))
    return result


if __name__ == "__main__":
    command, work = sys.argv[1], Path(sys.argv[2])
    if command == "env":
        print(json.dumps(env(work)))
    elif command == "grid":
        grid(work, Path(sys.argv[3]))
    elif command == "merge":
        merge(work, Path(sys.argv[3]))
    else:
        sys.exit(f"unknown command {command!r}: env, grid or merge")
