"""The throughput bench's timing method, run on the tiny preset (no timing is asserted: CI is no benchmark)."""

import json
import math
from pathlib import Path

import pytest
import torch
from _helpers import load_bench

from minidiff.nets.presets import build_unet


@pytest.fixture(scope="module")
def bench():
    return load_bench("unet_throughput")


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


@pytest.fixture(scope="module")
def trainer_bench():
    return load_bench("trainer_step")


def test_diffusers_config_builds_each_presets_network_tensor_for_tensor(bench):
    diffusers = pytest.importorskip("diffusers")
    from minidiff.nets.presets import get_preset
    from minidiff.nets.unet import count_parameters, from_diffusers_state_dict

    theirs = bench.diffusers_equivalent(diffusers, "tiny")
    ours = build_unet("tiny")
    assert count_parameters(theirs) == count_parameters(ours)
    ours.load_state_dict(from_diffusers_state_dict(theirs.state_dict()))  # strict: every tensor has a partner
    cifar = bench.diffusers_config(get_preset("cifar10").unet)  # google/ddpm-cifar10-32's configuration
    assert cifar["block_out_channels"] == (128, 256, 256, 256) and cifar["layers_per_block"] == 2
    assert cifar["down_block_types"] == ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D")
    assert cifar["up_block_types"] == ("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D")


def test_trainer_bench_trains_diffusers_inside_minidiffs_trainer(trainer_bench, tmp_path):
    pytest.importorskip("diffusers")
    from minidiff.training import trainer as trainer_module

    builders = trainer_bench.network_builders("tiny", include_diffusers=True)
    data = trainer_bench.synthetic_data((1, 28, 28), 32)
    own_builder = trainer_module.build_model
    trainers = {side: trainer_bench.make_trainer(side, build, "tiny", "eager", 4, data, torch.device("cpu"), tmp_path)
                for side, build in builders.items()}
    assert trainer_module.build_model is own_builder  # the swap ends with the construction
    assert isinstance(trainers["diffusers"][0].model, trainer_bench.DiffusersEps)
    assert not isinstance(trainers["minidiff"][0].model, trainer_bench.DiffusersEps)
    for trainer, step in trainers.values():
        before = [p.detach().clone() for p in trainer.model.parameters()]
        losses = [step(), step()]  # the warm-up's learning rate is 0 at the first step
        assert all(loss.dim() == 0 and torch.isfinite(loss) for loss in losses)
        assert any(not torch.equal(a, p) for a, p in zip(before, trainer.model.parameters()))  # Adam stepped


def test_targets_report_says_met_or_missed_by_how_much(trainer_bench):
    row = {"minidiff": {"it_per_s": 30.0, "peak_allocated_gib": 10.0}}
    results = {"settings": {"eager": {"rows": row},
                            "compiled": {"rows": {"minidiff": {"it_per_s": 66.0, "peak_allocated_gib": 9.0}}}},
               "best_ratio": 1.5}
    lines = trainer_bench.targets_report(results)
    assert lines[0] == "eager >= 40 it/s: 30.00 it/s, MISSED by 25%"
    assert lines[1] == "compiled >= 60 it/s: 66.00 it/s, met"
    assert lines[2] == "best vs best >= 1.2x diffusers: 1.50x, met"
    assert lines[3] == f"peak memory <= 16 GB: {10 * 2**30 / 1e9:.1f} GB, met"


def test_sampling_bench_probe_times_the_requested_steps(tmp_path):
    sampling = load_bench("sampling_throughput")
    from minidiff.schedules import get_schedule

    calls = []

    def net(x, t):
        calls.append(x.shape[0])
        return torch.zeros_like(x)

    seconds = sampling.probe(net, 4, (1, 28, 28), get_schedule("linear", 1000), tmp_path, 3, noise_group=2,
                             device="cpu")
    assert seconds > 0 and calls == [4] * (2 + 3)  # an untimed 2-step run, then the 3 timed steps, one call each


def test_gpu_check_report_merges_whatever_stages_left_behind(tmp_path, capsys):
    """A stage killed by its time limit leaves partial or no results: the report still writes its one JSON."""
    report = load_bench("gpu_check_report")
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    (work / "stages.jsonl").write_text('{"stage": "gpu-tests", "rc": 1, "seconds": 3.5}\n'
                                       '{"stage": "trainer-step", "rc": 124, "seconds": 200.0}\n')
    (work / "tests.xml").write_text(
        '<testsuites><testsuite><testcase name="a"/><testcase name="b"><failure message="boom"/></testcase>'
        '<testcase name="c"><skipped message="no GPU"/></testcase></testsuite></testsuites>')
    row = {"it_per_s": 41.0, "mfu_datasheet": 0.2, "peak_allocated_gib": 5.0, "attention_kernels": {"flash": 12}}
    (work / "trainer_step.json").write_text(json.dumps({"settings": {"eager": {"rows": {"minidiff": row}}}}))
    (out / "mnist_grid.png").write_bytes(b"png")
    result = report.merge(work, out)
    assert json.loads((out / "gpu_check.json").read_text()) == result
    assert result["tests"]["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 1}
    assert result["sampling"] is None and result["mnist"] is None and result["pngs"] == ["mnist_grid.png"]
    printed = capsys.readouterr().out
    assert "FAILED: b: boom" in printed and "train    eager  minidiff:   41.00 it/s" in printed
    assert "stage trainer-step     rc 124" in printed


def test_gpu_check_stage_limits_fit_the_eight_minutes():
    """The GPU branch of bench/gpu_check.sh: its stages' time limits add up to at most 8 minutes (issue 15)."""
    import re

    script = (Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh").read_text()
    gpu_branch = script.split("\nelse\n", 1)[1].split("\nfi\n", 1)[0]
    limits = [int(m) for m in re.findall(r"^\s*stage [\w-]+ (\d+) ", gpu_branch, flags=re.M)]
    limits += [int(m) for m in re.findall(r"^stage [\w-]+ (\d+) ", script, flags=re.M)]  # env and grid, both branches
    assert len(limits) >= 7, limits
    assert sum(limits) <= 480, f"stage limits add up to {sum(limits)} s > 480 s: {limits}"
