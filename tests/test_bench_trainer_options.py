"""bench/trainer_options.py, the A/B ablation of the trainer's CUDA defaults, in its CPU rehearsal mode
(no timing is asserted: CI is no benchmark; the figures come from a GPU)."""

import json

import pytest
import torch
from _helpers import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("trainer_options")


def test_repeats_alternate_the_order_of_the_two_sides(bench):
    calls = []
    steps = {"off": lambda: calls.append("off"), "on": lambda: calls.append("on")}
    times = bench.time_interleaved(steps, repeats=3, steps_per_repeat=2, device=torch.device("cpu"))
    assert calls == ["off"] * 2 + ["on"] * 4 + ["off"] * 4 + ["on"] * 2
    assert {name: len(t) for name, t in times.items()} == {"off": 3, "on": 3}


def test_speedup_is_the_ratio_of_medians_and_the_verdict_needs_every_pair_on_one_side(bench):
    r = bench.compare([2.0, 4.0, 3.0], [1.0, 2.0, 1.5])
    assert r == {"speedup": 2.0, "paired_min_max": [2.0, 2.0], "verdict": "faster"}
    assert bench.compare([1.0, 1.0], [2.0, 4.0])["verdict"] == "slower"
    assert bench.compare([1.0, 3.0], [2.0, 2.0])["verdict"] == "within noise"


def test_the_base_is_every_cuda_default_with_compile_off_unless_fast(bench):
    cuda = torch.device("cuda")
    assert bench.base_options("eager", cuda) == dict(compile=False, cudnn_benchmark=True, tf32_matmul=True,
                                                     ddp_bucket_view=True)
    assert all(bench.base_options("fast", cuda).values())
    assert bench.base_options("fast", torch.device("cpu")) == {}  # auto: off on the CPU
    with pytest.raises(ValueError, match="base"):
        bench.base_options("turbo", cuda)


def test_without_a_gpu_it_refuses_the_papers_size_unless_a_dry_run(bench, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--device", "cpu"])
    assert e.value.code == 2 and "--cpu-dry-run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--cpu-dry-run", "--options", "compile,warp_drive"])
    assert "warp_drive" in capsys.readouterr().err


@pytest.mark.slow
def test_cpu_dry_run_times_every_option_off_and_on_and_writes_the_json(bench, tmp_path, capsys):
    out = tmp_path / "options.json"
    assert bench.main(["--cpu-dry-run", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["env"]["cpu_dry_run"] and result["env"]["preset"] == "tiny" and result["env"]["batch"] == 2
    rows = {r["option"]: r for r in result["results"]}
    assert list(rows) == list(bench.ABLATIONS)
    assert "torchrun" in rows.pop("ddp_bucket_view")["skipped"]  # one process: no DDP to ablate
    for name, r in rows.items():
        off, on = r["off"], r["on"]
        assert {**off, **on}.keys() >= set(bench.ABLATIONS[name][0]) | set(bench.ABLATIONS[name][1])
        for side in (off, on):
            lo, hi = side["ms_min_max"]
            assert 0 < lo <= side["ms_per_step"] <= hi and side["first_step_s"] > 0
            assert side["images_per_s"] == pytest.approx(2 * side["it_per_s"])
        assert r["speedup"] == pytest.approx(off["ms_per_step"] / on["ms_per_step"])
        assert r["paired_min_max"][0] <= r["paired_min_max"][1]
        assert r["verdict"] in ("faster", "slower", "within noise")
    assert rows["compile"]["on"]["compile"] and not rows["compile"]["off"]["compile"]
    printed = capsys.readouterr().out
    assert all(name in printed for name in bench.ABLATIONS)
