"""The throughput bench's timing method, run on the tiny preset (no timing is asserted: CI is no benchmark)."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from minidiff.nets.presets import build_unet

BENCH = Path(__file__).resolve().parents[1] / "bench" / "unet_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("unet_throughput", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_repeats_are_interleaved_between_the_networks(bench):
    calls = []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = bench.time_interleaved(steps, repeats=3, steps_per_repeat=2, device=torch.device("cpu"))
    assert calls == ["a", "a", "b", "b"] * 3
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3}


def test_two_networks_from_the_same_seed_see_the_same_batches(bench):
    x0 = torch.rand(2, 1, 28, 28) * 2 - 1
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        step = bench.make_train_step(build_unet("tiny"), "eager-fp32", x0, seed=3)
        losses.append(torch.stack([step(), step()]))
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=0)


def test_measure_setting_returns_a_well_formed_row_per_network(bench):
    makers = {"minidiff": lambda: build_unet("tiny"), "diffusers": lambda: build_unet("tiny")}
    rows = bench.measure_setting(makers, "eager-fp32", batch=2, warmup=1, repeats=2, steps_per_repeat=1,
                                 device=torch.device("cpu"), image_shape=(1, 28, 28))
    assert [r["model"] for r in rows] == ["minidiff", "diffusers"]
    for r in rows:
        lo, hi = r["ms_per_step_min_max"]
        q1, q3 = r["ms_per_step_iqr"]
        assert r["repeats"] == len(r["seconds_per_step"]) == 2 and r["setting"] == "eager-fp32"
        assert 0 < lo <= q1 <= r["ms_per_step"] <= q3 <= hi
        assert r["it_per_s"] == pytest.approx(1000 / r["ms_per_step"])
        assert r["images_per_s"] == pytest.approx(2 * r["it_per_s"])
        assert r["params"] == sum(p.numel() for p in build_unet("tiny").parameters())
        assert math.isnan(r["peak_gib"])  # no GPU memory on CPU
    ratio = bench.ratio(rows)
    assert ratio["ratio_of_medians"] == pytest.approx(rows[0]["it_per_s"] / rows[1]["it_per_s"])
    assert ratio["paired_min_max"][0] <= ratio["paired_min_max"][1]
