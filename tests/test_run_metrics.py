"""minidiff.metrics.runs: one table row per run equals the metrics computed by hand, with the run's own
parameterization and variance and the samples of md.sample(seed=s) (so every run starts from the same x_T), and a
stored result reloaded only for the same key."""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import minidiff as md
from minidiff.data.images import to_uint8
from minidiff.metrics.classifier import MnistCNN, classifier_frechet, confident_share
from minidiff.metrics.likelihood import bits_per_dim
from minidiff.metrics.runs import evaluate_run, seed_spread

T = 8


class TinyNet(nn.Module):
    """A 3x3 convolution of x_t plus a learned per-t bias: enough to give a t-dependent output."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, out_channels, 3, padding=1)
        self.bias = nn.Parameter(0.1 * torch.randn(T + 1, out_channels))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.bias[t][:, :, None, None]


def run(tmp_path, parameterization="mu", variance="learned_range", step=10):
    config = {"schedule": "linear", "T": T, "parameterization": parameterization, "variance": variance}
    return SimpleNamespace(config=config, step=step, path=tmp_path / "last.pt")


@pytest.fixture(scope="module")
def digits():
    gen = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (40, 1, 28, 28), generator=gen, dtype=torch.uint8)
    test = torch.randint(0, 256, (5, 1, 28, 28), generator=gen, dtype=torch.uint8)
    torch.manual_seed(1)
    return real, test, MnistCNN().eval()


def test_seed_spread_is_mean_and_sample_std():
    values = [1.0, 2.5, 4.0]
    s = seed_spread(values)
    assert s.mean == pytest.approx(statistics.mean(values))
    assert s.std == pytest.approx(statistics.stdev(values))
    assert seed_spread([3.0]).std == 0.0
    with pytest.raises(ValueError, match="finite"):
        seed_spread([1.0, float("nan")])
    with pytest.raises(ValueError, match="non-empty"):
        seed_spread([])


@pytest.mark.parametrize("parameterization,variance", [("mu", "learned_range"), ("eps", "fixed_large")])
def test_row_equals_metrics_computed_by_hand_with_the_runs_own_variance(tmp_path, digits, parameterization, variance):
    real, test, classifier = digits
    model = TinyNet(2 if variance == "learned_range" else 1)
    info = run(tmp_path, parameterization, variance)
    row = evaluate_run(model, info, classifier, real, test, seeds=(3, 4), n_samples=8, n_test=4, progress=False)
    sch = md.get_schedule("linear", T=T)
    fds, conf = [], []
    for s in (3, 4):
        x = to_uint8(md.sample(model, (8, 1, 28, 28), sch, seed=s, clip_x0=1.0, parameterization=parameterization,
                               variance=variance))
        fds.append(classifier_frechet(classifier, x, real).value)
        conf.append(confident_share(classifier, x)[0])
        if s == 3:
            assert torch.equal(row.samples, x)
    bpd = bits_per_dim(model, test[:4], sch, parameterization=parameterization, variance=variance, progress=False)
    assert row.frechet.values == pytest.approx(fds)
    assert row.confident.values == pytest.approx(conf)
    assert row.bpd == pytest.approx(bpd.mean) and row.bpd_se == pytest.approx(bpd.se)
    # the bound depends on the variance: the same network read with another fixed variance gives another value
    other = bits_per_dim(model, test[:4], sch, parameterization=parameterization,
                         variance="fixed_small" if variance == "fixed_large" else "learned_range", progress=False)
    if variance == "fixed_large":
        assert abs(other.mean - row.bpd) > 1e-3
    assert set(row.as_row()) >= {"classifier FD (mean ± std over seeds)", "bits/dim (± se)"}


def test_result_is_stored_and_reloaded_only_for_the_same_key(tmp_path, digits):
    real, test, classifier = digits
    model, info = TinyNet(1), run(tmp_path, "eps", "fixed_large")
    kw = dict(seeds=(0, 1), n_samples=4, n_test=2, progress=False)
    assert evaluate_run(model, info, classifier, real, test, stored_only=True, **kw) is None
    assert not list(tmp_path.glob("eval-*.pt"))
    first = evaluate_run(model, info, classifier, real, test, **kw)
    again = evaluate_run(model, info, classifier, real, test, **kw)
    assert not first.loaded and again.loaded
    assert evaluate_run(model, info, classifier, real, test, stored_only=True, **kw).loaded
    assert again.frechet == first.frechet and again.bpd == first.bpd and torch.equal(again.samples, first.samples)
    assert len(list(tmp_path.glob("eval-*.pt"))) == 1
    later = evaluate_run(model, run(tmp_path, "eps", "fixed_large", step=20), classifier, real, test, **kw)
    assert not later.loaded and len(list(tmp_path.glob("eval-*.pt"))) == 2


def test_bad_settings_name_the_value(tmp_path, digits):
    real, test, classifier = digits
    with pytest.raises(ValueError, match="n_test"):
        evaluate_run(TinyNet(1), run(tmp_path, "eps", "fixed_large"), classifier, real, test, n_test=6)
    with pytest.raises(ValueError, match="seeds"):
        evaluate_run(TinyNet(1), run(tmp_path, "eps", "fixed_large"), classifier, real, test, seeds=())
