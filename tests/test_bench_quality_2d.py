"""bench/quality_2d.py's bookkeeping: which rows pass which bars, and the perfect sampler (config real_draws).

No model is trained here and nothing is timed; the measured results are in bench/quality_2d_measured.md.
"""


import pytest
from _helpers import load_bench

import minidiff as md


@pytest.fixture(scope="module")
def bench():
    return load_bench("quality_2d")


def _row(ed=1.0, sw=1.0, off=0.0, cluster=None):
    row = {"energy_distance": ed, "sliced_wasserstein": sw, "off_excess": off}
    if cluster is not None:
        row["cluster"] = cluster
    return row


def test_a_row_passes_only_when_every_metric_is_within_its_samplers_bar(bench):
    assert bench._passes(_row(1.5, 1.5, 0.01, 1.5), "ancestral")
    assert bench._passes(_row(2.0, 2.0, 0.02, 2.0), "ddim50")
    assert not bench._passes(_row(1.51), "ancestral") and bench._passes(_row(1.51), "ddim50")
    assert not bench._passes(_row(sw=2.01), "ddim50")
    assert not bench._passes(_row(off=0.011), "ancestral") and bench._passes(_row(off=0.011), "ddim50")
    assert not bench._passes(_row(cluster=1.6), "ancestral")
    assert bench._passes(_row(), "ancestral")  # a toy without clusters has no cluster row


def test_pass_rates_count_seeds_and_disjoint_runs_and_multiply_the_toys(bench):
    bad = _row(ed=3.0)
    toy_a = {"toy": "a", "config": "c", "samplers": {"ancestral": [_row(), bad, _row(), _row(), _row(), _row()]}}
    toy_b = {"toy": "b", "config": "c", "samplers": {"ancestral": [_row()] * 5 + [bad]}}
    text = bench.pass_rates([toy_a, toy_b])
    assert "a c ancestral: 5 of 6 seeds pass; 1 of 2 runs of 3 seeds pass every seed" in text
    assert "b c ancestral: 5 of 6 seeds pass; 1 of 2 runs of 3 seeds pass every seed" in text
    assert "probability 0.25" in text  # 1/2 x 1/2


def test_real_draws_are_fresh_real_samples_scored_like_a_model(bench):
    n, seeds = 300, [0, 1]
    out = bench.run_toy("blobs", "real_draws", seeds, n=n, samplers=("ddim50", "ancestral"))
    assert out["samplers"]["ddim50"] is out["samplers"]["ancestral"]  # one set of draws, each sampler's bars
    refs = [md.make_toy("blobs", n, seed=1000), md.make_toy("blobs", n, seed=1001)]
    floor = out["floors"]["energy_distance"]["mean"]
    for seed, row in zip(seeds, out["samplers"]["ddim50"]):
        draw = md.make_toy("blobs", n, seed=3000 + seed)
        expected = md.metrics.versus_floor(draw, refs, "energy_distance", floor=floor).ratio
        assert row["energy_distance"] == pytest.approx(expected)
    assert out["params"] == 0 and out["train_cpu_s"] < 1.0


def test_a_chapter_toy_has_no_support_column_and_is_judged_on_its_distances(bench):
    out = bench.run_toy("moons", "real_draws", [0], n=300, samplers=("ancestral",))
    row = out["samplers"]["ancestral"][0]
    assert row["off_excess"] != row["off_excess"] and "cluster" not in row  # nan: the moons have no known support
    assert bench._passes(row, "ancestral") == (row["energy_distance"] <= 1.5 and row["sliced_wasserstein"] <= 1.5)
    assert "| n/a | n/a |" in bench.table([out])  # neither off-support nor cluster columns
