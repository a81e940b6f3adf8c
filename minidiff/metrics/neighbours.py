"""Nearest training neighbours of samples: a memorization probe.

A model that memorized its training set draws near-copies of training images: their distance to the
nearest training image is far below the distance of a held-out real image to its nearest training
image. :func:`nearest_neighbours` finds, for each sample, the k closest training images, in pixel
space or in the features of any extractor (e.g. the reference classifier's penultimate features,
``classifier.features``). Chapter "DDPM on MNIST".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ..data.images import to_unit_range
from .frechet import extract_features

_BLOCK = 1024  # query rows per block of distances


class Neighbours(NamedTuple):
    """For each query, the indices (N, k) into the reference set and the Euclidean distances (N, k), nearest first."""

    indices: torch.Tensor
    distances: torch.Tensor


def _flat(name: str, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) < 1:
        raise ValueError(f"{name} must be a non-empty tensor (N, ...), got {getattr(x, 'shape', type(x).__name__)}")
    x = to_unit_range(x) if x.dtype == torch.uint8 else x
    return x.detach().reshape(len(x), -1).double().cpu()


def nearest_neighbours(samples: torch.Tensor, train: torch.Tensor, k: int = 1,
                       features: Callable[[torch.Tensor], torch.Tensor] | None = None,
                       batch_size: int = 500) -> Neighbours:
    """The k nearest images of ``train`` (M, ...) to each of ``samples`` (N, ...), by Euclidean distance.

    Images are uint8 (scaled to [−1, 1]) or float in [−1, 1]. ``features=None`` compares pixels;
    otherwise ``features`` (any callable batch -> (B, D), e.g. ``classifier.features``) is applied to
    both sets first, in batches of ``batch_size``. Distances are exact differences (no ‖a‖²+‖b‖²−2ab
    shortcut), so an exact copy of a training image is at distance 0.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(train):
        raise ValueError(f"k must be an int in [1, len(train) = {len(train)}], got k = {k!r}")
    if features is None:
        q, ref = _flat("samples", samples), _flat("train", train)
    else:
        q = extract_features(features, _flat("samples", samples).float().reshape(samples.shape), batch_size)
        ref = extract_features(features, _flat("train", train).float().reshape(train.shape), batch_size)
    if q.shape[1] != ref.shape[1]:
        raise ValueError(f"samples and train must have the same size per image, got {tuple(samples.shape[1:])} "
                         f"and {tuple(train.shape[1:])}")
    indices, distances = [], []
    for start in range(0, len(q), _BLOCK):
        d = torch.cdist(q[start:start + _BLOCK], ref, compute_mode="donot_use_mm_for_euclid_dist")
        best = d.topk(k, dim=1, largest=False)
        indices.append(best.indices)
        distances.append(best.values)
    return Neighbours(torch.cat(indices), torch.cat(distances))
