"""Class-conditional samples: does each sample show its requested class, and how varied is each class?

Three numbers per class, each beside the value real digits of that class get at the same n:
- **accuracy**: the share of samples the reference classifier assigns to the requested class;
- **within-class Fréchet distance**: the Fréchet distance (Heusel et al. 2017) between the classifier's
  penultimate features of the class's samples and of its real digits; the floor is the distance between
  two disjoint real subsets of the same n;
- **within-class diversity**: the mean pairwise Euclidean distance between the features of the class's
  samples, as a ratio to real digits of the class (1: as varied as real digits; 0: one image repeated).
Chapter "Classifier-free guidance" (the fidelity/diversity trade-off of guidance, Ho & Salimans 2022).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .classifier import MnistCNN, classifier_features, frechet_beside_floor, predict_proba


class ClassMetrics(NamedTuple):
    """Per-class results (lists indexed by class) and their means over the classes."""

    accuracy: list[float]
    frechet: list[float]
    frechet_floor: list[float]
    diversity: list[float]
    diversity_real: list[float]

    @property
    def mean_accuracy(self) -> float:
        return sum(self.accuracy) / len(self.accuracy)

    @property
    def frechet_ratio(self) -> float:
        """Mean over the classes of FD(samples, real) / FD(real, real), both at the same n."""
        return sum(f / r for f, r in zip(self.frechet, self.frechet_floor)) / len(self.frechet)

    @property
    def diversity_ratio(self) -> float:
        """Mean over the classes of the samples' diversity / real digits' diversity."""
        return sum(d / r for d, r in zip(self.diversity, self.diversity_real)) / len(self.diversity)


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """The mean Euclidean distance over all pairs i < j of the rows of ``features`` (N ≥ 2, d)."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (N, d) with N >= 2, got shape {tuple(features.shape)}")
    d = torch.cdist(features.double(), features.double())
    n = d.shape[0]
    return float(d.sum() / (n * (n - 1)))


def within_class_metrics(classifier: MnistCNN, samples: torch.Tensor, labels: torch.Tensor, real: torch.Tensor,
                         real_labels: torch.Tensor, n_pairs: int = 3, seed: int = 0) -> ClassMetrics:
    """Accuracy, within-class Fréchet distance (with its floor) and diversity of class-conditional samples.

    samples: (N, 1, 28, 28) in [−1, 1], generated for ``labels`` (N,); real: digits with ``real_labels``.
    Every class present in ``labels`` needs at least 2 n_c real digits (n_c: its number of samples).
    The Fréchet values and floors average ``n_pairs`` draws of disjoint real subsets of size n_c.
    """
    if samples.shape[0] != labels.shape[0] or real.shape[0] != real_labels.shape[0]:
        raise ValueError(f"one label per image: samples {samples.shape[0]} vs labels {labels.shape[0]}, "
                         f"real {real.shape[0]} vs real_labels {real_labels.shape[0]}")
    classes = labels.unique().tolist()
    pred = predict_proba(classifier, samples).argmax(1).cpu()
    fs, fr = classifier_features(classifier, samples), classifier_features(classifier, real)
    gen = torch.Generator().manual_seed(seed)
    out = ClassMetrics([], [], [], [], [])
    for c in classes:
        mine, theirs = labels.cpu() == c, (real_labels.cpu() == c).nonzero().flatten()
        n = int(mine.sum())
        if n < 2 or len(theirs) < 2 * n:
            raise ValueError(f"class {c}: need >= 2 samples and >= 2 * {n} = {2 * n} real digits, got {n} samples "
                             f"and {len(theirs)} real digits")
        out.accuracy.append(float((pred[mine] == c).double().mean()))
        value, floor = frechet_beside_floor(fs[mine], fr[theirs], n_pairs, gen)
        out.frechet.append(value)
        out.frechet_floor.append(floor)
        out.diversity.append(mean_pairwise_distance(fs[mine]))
        out.diversity_real.append(mean_pairwise_distance(fr[theirs]))
    return out


__all__ = ["ClassMetrics", "mean_pairwise_distance", "within_class_metrics"]
