"""One table row per trained image run: sample quality over several sampling seeds, and bits/dim.

:func:`evaluate_run` takes a run that :func:`minidiff.training.train_or_load` returned and measures,
with the run's own parameterization and reverse variance (the ones it was trained with):

- for each sampling seed, ``n_samples`` digits from the 1,000-step ancestral sampler (Algorithm 2),
  the same seeds, and with them the same x_T, for every run; from each seed's digits the Fréchet
  distance in the reference classifier's features (beside its real-vs-real floor at the same n) and
  the confident share (:mod:`minidiff.metrics.classifier`); the row gives mean ± standard deviation
  over the seeds (:func:`seed_spread`);
- the negative ELBO in bits/dim (Eqs. 5 and 13) of ``n_test`` held-out digits
  (:func:`minidiff.metrics.likelihood.bits_per_dim`), with ``variance`` set to the run's, so that a
  fixed σ_t² = β_t and a learned Σ_θ each enter the bound as they enter the sampler.

The result is stored beside the run's checkpoint (``eval-<key>.pt``, the key covering the run's
config and step, the settings and the classifier) and reloaded by a later call with the same key.
Chapter "The paper's Table 2 on MNIST".
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .._checks import check_int, check_real
from ..data.images import to_uint8
from ..samplers import sample
from ..schedules import get_schedule
from .classifier import MnistCNN, classifier_frechet, confident_share
from .likelihood import bits_per_dim


class SeedSpread(NamedTuple):
    """A metric's mean and standard deviation (n − 1 in the denominator; 0 for one seed) over seeds."""

    mean: float
    std: float
    values: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.mean:.3g} ± {self.std:.2g}"


def seed_spread(values: Sequence[float]) -> SeedSpread:
    """Mean ± sample standard deviation of one metric measured once per seed."""
    values = tuple(float(v) for v in values)
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"values must be a non-empty sequence of finite numbers, got {values!r}")
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return SeedSpread(mean, std, values)


class RunMetrics(NamedTuple):
    """One row: Fréchet distance and its floor, confident share (each over seeds), bits/dim (mean, se).

    ``samples``: the uint8 digits of the first seed, for a sample grid; ``seconds``: the evaluation's
    time (of the call that measured it, when ``loaded`` from the stored file).
    """

    frechet: SeedSpread
    floor: float
    confident: SeedSpread
    bpd: float
    bpd_se: float
    seeds: tuple[int, ...]
    n_samples: int
    n_test: int
    samples: torch.Tensor
    seconds: float
    loaded: bool = False

    def as_row(self) -> dict[str, str]:
        """The row as text, for a pandas table."""
        return {"classifier FD (mean ± std over seeds)": str(self.frechet),
                "real-vs-real floor": f"{self.floor:.3g}",
                "FD ÷ floor": f"{self.frechet.mean / self.floor:.1f}" if self.floor > 0 else "inf",
                "confident share": f"{self.confident.mean:.2f} ± {self.confident.std:.2f}",
                "bits/dim (± se)": f"{self.bpd:.2f} ± {self.bpd_se:.2f}"}


def _key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def evaluate_run(model: torch.nn.Module, info: Any, classifier: MnistCNN, real: torch.Tensor,
                 test_images: torch.Tensor, *, seeds: Sequence[int] = (0, 1, 2), n_samples: int = 25,
                 n_test: int = 15, clip_x0: float | None = 1.0, cache: bool = True, stored_only: bool = False,
                 progress: bool = True) -> RunMetrics | None:
    """Sample quality over ``seeds`` and bits/dim of the first ``n_test`` of ``test_images``, for one run.

    ``model``, ``info``: what :func:`~minidiff.training.train_or_load` returned (``info.config`` gives
    the schedule, parameterization and variance; ``info.path`` the checkpoint). ``real``: real digits
    (at least 2 ``n_samples``) for the Fréchet distance and its floor. Sampling: Algorithm 2 on all T
    steps, x̂_0 clipped to [−``clip_x0``, ``clip_x0``] (the paper's image sampler clips to [−1, 1]), one
    batch of ``n_samples`` per seed. Bits/dim: Eqs. (5) and (13), unclipped, seed 0. See the module
    docstring for the stored file (``cache=False``: neither read nor write it; ``stored_only=True``: return the
    stored result, or None when there is none, computing nothing, e.g. while another process evaluates the run).
    """
    seeds = tuple(check_int("seed", s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must name at least one sampling seed, got ()")
    n_samples = check_int("n_samples", n_samples, ge=2)
    n_test = check_int("n_test", n_test, ge=1)
    if clip_x0 is not None:
        clip_x0 = check_real("clip_x0", clip_x0, gt=0.0)
    if len(test_images) < n_test:
        raise ValueError(f"test_images must hold at least n_test = {n_test} images, got {len(test_images)}")
    config = info.config
    settings = {"config": config, "step": int(info.step), "seeds": seeds, "n_samples": n_samples,
                "n_test": n_test, "clip_x0": clip_x0, "classifier": getattr(classifier, "info", {}).get("path"),
                "real": len(real)}
    path = Path(info.path).parent / f"eval-{_key(settings)}.pt"
    if cache and path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=False)
        return RunMetrics(**{**saved, "loaded": True})
    if stored_only:
        return None
    start = time.perf_counter()
    schedule = get_schedule(config["schedule"], T=config["T"])
    options = {"parameterization": config["parameterization"], "variance": config["variance"]}
    device = next(model.parameters()).device
    fds, confident, first, floor = [], [], None, 0.0
    for s in seeds:
        x = sample(model, (n_samples, *test_images.shape[1:]), schedule, seed=s, clip_x0=clip_x0,
                   progress=progress, device=device, **options)
        digits = to_uint8(x.cpu())
        first = digits if first is None else first
        report = classifier_frechet(classifier, digits, real)
        fds.append(report.value)
        floor = report.floor  # the same real subsets for every seed (classifier_frechet's seed 0)
        confident.append(confident_share(classifier, digits)[0])
    bpd = bits_per_dim(model, test_images[:n_test], schedule, progress=progress, **options)
    metrics = RunMetrics(seed_spread(fds), floor, seed_spread(confident), bpd.mean, bpd.se, seeds, n_samples,
                         n_test, first, time.perf_counter() - start)
    if cache:
        partial = path.with_suffix(".part")
        torch.save({k: v for k, v in metrics._asdict().items() if k != "loaded"}, partial)
        partial.replace(path)
    return metrics
