"""The 2D metrics see a 5 % error and pass a fresh real sample (minidiff.metrics.two_d, .support).

The bars, fixed before any model was measured: at n = 5,000, a model passes if energy distance and
sliced Wasserstein are <= 1.5x their floor (ancestral) or <= 2x (DDIM-50), its off-support mass is at
most 1 (2) percentage points above a real sample's, and its largest per-cluster share error is <= 1.5x
(2x) the real floor. Here: moving 5 % of a real sample into an empty region must push each metric past
the looser bar (ratio > 2, or > 2 points off the support), and a fresh real sample must pass the
tighter one. On separated clusters (see CLUSTERED) the floors of the two distances are dominated by
how many points land in each cluster: there a fresh real sample is held to 2x, and sliced
Wasserstein is not required to see the move (it reached only ~1.5x); the per-cluster error and
energy distance are the metrics that see it.
"""

import pytest
import torch

import minidiff as md

M = md.metrics
N = 5000
MOVE = 0.05  # the share of the sample moved into an empty region
# An empty point of each held-out toy (far from its support; checked below) where the moved mass lands.
EMPTY = {"checkerboard": (1.5, -1.5), "blobs": (0.1, 0.35), "rings": (0.0, 0.0), "grid": (0.9, 0.0),
         "spiral": (-1.5, -1.5)}
# Separated clusters: the floors of energy distance and sliced Wasserstein are dominated by how many points
# land in each cluster (one pair's spread ±35-65 % of the floor at n = 5,000), so a fresh real sample
# can score 1.8x (grid, energy distance) and a 5 % move only ~1.5x (sliced Wasserstein, blobs and rings).
CLUSTERED = {"blobs", "rings", "grid"}


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _moved(x: torch.Tensor, where: tuple[float, float], seed: int = 5) -> torch.Tensor:
    """x with MOVE of its points replaced by a tight blob (std 0.05) at ``where``."""
    gen = torch.Generator().manual_seed(seed)
    k = round(MOVE * x.shape[0])
    out = x.clone()
    out[torch.randperm(x.shape[0], generator=gen)[:k]] = torch.tensor(where) + 0.05 * torch.randn(k, 2, generator=gen)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", md.data.HELD_OUT_TOYS)
def test_each_metric_flags_five_percent_of_the_mass_moved_into_an_empty_region(name, one_thread):
    st = md.data.toy_structure(name)

    def real(n: int, seed: int) -> torch.Tensor:
        return md.make_toy(name, n, seed=seed)

    assert not st.support(torch.tensor([EMPTY[name]])).any(), "the empty region must be off the support"
    refs = [real(N, 1000 + k) for k in range(2)]
    fresh, moved = real(N, 0), _moved(real(N, 0), EMPTY[name])
    for metric in ("energy_distance", "sliced_wasserstein"):
        floor = M.floor_stats(real, metric, N, n_pairs=4, references=refs)
        fresh_ratio = M.versus_floor(fresh, refs, metric, floor=floor.mean).ratio
        moved_ratio = M.versus_floor(moved, refs, metric, floor=floor.mean).ratio
        assert fresh_ratio <= (2.0 if name in CLUSTERED else 1.5), (metric, fresh_ratio, str(floor))
        if metric == "energy_distance" or name not in CLUSTERED:
            assert moved_ratio > 2, (metric, moved_ratio, str(floor))
    off_real = M.off_support_mass(fresh, st.support)
    assert off_real < 0.002
    assert M.off_support_mass(moved, st.support) - off_real > 0.02
    if st.assign is not None:
        floor = M.cluster_error_floor(real, st.assign, st.shares, N, n_draws=10)
        assert M.cluster_mass_error(fresh, st.assign, st.shares).max <= 1.5 * floor.mean
        assert M.cluster_mass_error(moved, st.assign, st.shares).max > 2 * floor.mean


def test_held_out_toys_are_normalized_like_the_toys_and_match_their_structure():
    for name in md.data.HELD_OUT_TOYS:
        x = md.make_toy(name, 40_000, seed=3)
        assert torch.equal(x, md.make_toy(name, 40_000, seed=3)) and x.shape == (40_000, 2)
        se = 4 / 40_000**0.5  # a generous 4 standard errors of a mean of unit-variance coordinates
        assert x.mean(0).abs().max() < se, (name, x.mean(0))
        assert abs(x.pow(2).mean().sqrt().item() - 1) < 0.02, name
        st = md.data.toy_structure(name)
        assert M.off_support_mass(x, st.support) < 1e-3, name  # < 10⁻³ by construction (4 std)
        if st.assign is not None:  # cluster shares within 4 binomial standard errors
            err = M.cluster_mass_error(x, st.assign, st.shares)
            assert err.max < 4 * (0.25 / 40_000) ** 0.5, (name, err)


def test_support_metrics_name_their_bad_input():
    x = torch.zeros(10, 2)
    with pytest.raises(ValueError, match="shares"):
        M.cluster_mass_error(x, lambda p: torch.zeros(len(p), dtype=torch.long), [0.5, 0.6])
    with pytest.raises(ValueError, match="radius"):
        M.near_reference(x, 0)
    with pytest.raises(ValueError, match="support"):
        M.off_support_mass(x, lambda p: torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="noise"):
        md.make_toy("rings", 10, noise=0.1)


def test_near_reference_and_over_seeds():
    ref = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    inside = M.near_reference(ref, 0.5)(torch.tensor([[0.1, 0.0], [0.5, 0.6], [1.2, 0.1]]))
    assert inside.tolist() == [True, False, True]
    s = M.over_seeds(lambda seed: float(seed), seeds=(1, 2, 3))
    assert (s.mean, s.worst) == (2.0, 3.0) and abs(s.spread - 1.0) < 1e-12
