"""A reference MNIST classifier, and the sample-quality figures read from it.

:func:`reference_classifier` trains a small CNN on the training split of whatever MNIST is loaded
(``load_dataset("mnist")``, or the 4,000 training digits of ``"mnist-offline"``), saves it in the
data cache (``cache_dir()/classifiers/<data set>-<hash>.pt``, the hash covering the config, the
architecture and the training images) and reloads it on every later call. The network is small:
two 5×5 convolutions with stride 2 (16 and 32 channels, each followed by ReLU; 28 → 14 → 7 pixels),
a 128-unit hidden layer (the *penultimate features*) and 10 logits, about 0.9 M multiply-adds per
image. It sees images in [−1, 1], the scale of the diffusion models (Sec. 3.3), and trains with
±2-pixel random shifts, 1,500 AdamW steps at batch 128 (3.2 epochs of full MNIST). The design target
is ≥ 98 % test accuracy on full MNIST; that is untested here (no internet on the machine that wrote
this). On the offline digits, ``bench/image_metrics.py`` measures its training time, test accuracy,
confident share and Fréchet floor (figures in ``bench/README.md``).

From it, for a batch of generated digits (Part II, chapter "DDPM on MNIST"):

- :func:`confident_share`: the share classified with confidence (max probability) > 0.9, with its
  binomial standard error; compare it with the same share on real test digits;
- :func:`class_histogram` and :func:`kl_to_uniform`: how the samples spread over the ten digits (a
  model that draws few classes shows a large KL);
- :func:`classifier_frechet`: the Fréchet distance in the penultimate features, reported beside its
  real-vs-real noise floor at the same n, as Part I does for the 2D metrics.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.download import cache_dir
from ..data.images import ImageData, load_dataset, to_unit_range
from .frechet import extract_features, frechet_distance
from .two_d import FloorReport

ARCHITECTURE = "cnn-5x5-stride2-v1"  # part of the cache key: change it whenever MnistCNN changes


@dataclass(frozen=True)
class ClassifierConfig:
    """How the reference classifier is built and trained (AdamW, cosine learning-rate decay)."""

    channels: tuple[int, int] = (16, 32)
    hidden: int = 128
    steps: int = 1500
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_shift: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {name} = {value!r}")
        if len(self.channels) != 2 or any(not isinstance(c, int) or c < 1 for c in self.channels):
            raise ValueError(f"channels must be two positive ints, got channels = {self.channels!r}")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0, got lr = {self.lr!r}, "
                             f"weight_decay = {self.weight_decay!r}")
        if isinstance(self.max_shift, bool) or not isinstance(self.max_shift, int) or not 0 <= self.max_shift < 14:
            raise ValueError(f"max_shift must be an int in [0, 13], got max_shift = {self.max_shift!r}")


class MnistCNN(nn.Module):
    """conv5×5/2(c1)-ReLU, conv5×5/2(c2)-ReLU, linear(hidden)-ReLU = features, linear(10) = logits.

    x: (B, 1, 28, 28) in [−1, 1]. :meth:`features` gives the (B, hidden) penultimate features.
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, stride=2, padding=2)
        self.fc = nn.Linear(c2 * 7 * 7, hidden)
        self.head = nn.Linear(hidden, num_classes)
        self.info: dict = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def as_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 {0..255} images -> float [−1, 1]; floating-point images are taken as already in [−1, 1]."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor (N, 1, 28, 28), got {type(images).__name__}")
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"images must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return to_unit_range(images)
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or floating point in [-1, 1], got dtype {images.dtype}")
    return images.float()


def _random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer (dx, dy) in [−max_shift, max_shift]², filling with the background −1."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    offset = torch.randint(0, 2 * max_shift + 1, (b, 2), generator=gen)
    rows = (torch.arange(h) + offset[:, :1])[:, :, None]  # (B, H, 1)
    cols = (torch.arange(w) + offset[:, 1:])[:, None, :]  # (B, 1, W)
    return padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)


def _cache_key(data: ImageData, config: ClassifierConfig) -> str:
    digest = hashlib.sha256(json.dumps([ARCHITECTURE, dataclasses.asdict(config)], sort_keys=True).encode())
    digest.update(data.images.contiguous().numpy().tobytes())
    digest.update(data.labels.contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def train_classifier(data: ImageData, config: ClassifierConfig | None = None, progress: bool = False,
                     threads: int | None = 1) -> MnistCNN:
    """Train :class:`MnistCNN` on ``data`` (uint8 images and labels) for ``config.steps`` steps; no caching.

    Runs on ``threads`` torch threads (restored afterwards; ``None``: leave torch's setting). One thread
    is the default because it is the fastest here: on this project's shared 2-core machine the default
    config trained in 22 s on one thread and in 315 s on two (``bench/image_metrics.py``). Deterministic
    for a given config and thread count on one machine (its own generator for weights, batches and shifts).
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got threads = {threads!r}")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(data, config or ClassifierConfig(), progress)
    finally:
        torch.set_num_threads(before)


def _train(data: ImageData, config: ClassifierConfig, progress: bool) -> MnistCNN:
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = MnistCNN(config.channels, config.hidden, data.num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps)
    n, perm, pos = len(data.images), torch.randperm(len(data.images), generator=gen), 0
    model.train()
    for _ in tqdm(range(config.steps), disable=not progress, desc="reference classifier"):
        if pos + config.batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos:pos + config.batch_size]
        pos += config.batch_size
        x = _random_shift(to_unit_range(data.images[idx]), config.max_shift, gen)
        loss = F.cross_entropy(model(x), data.labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def reference_classifier(data: str | ImageData, config: ClassifierConfig | None = None, *,
                         root: str | os.PathLike | None = None, retrain: bool = False,
                         progress: bool = False, threads: int | None = 1) -> MnistCNN:
    """The reference MNIST classifier for ``data``: loaded from the cache, or trained once and cached.

    ``data``: a data set name (``"mnist"``, ``"mnist-offline"``), whose training split is loaded, or
    an :class:`~minidiff.data.ImageData` of training digits. It trains on ``threads`` threads (see
    :func:`train_classifier`) for a fixed number of steps, so its time does not grow with the data. The file is
    ``cache_dir(root)/classifiers/<name>-<hash>.pt``. ``retrain=True`` trains and overwrites it.
    The returned model is in eval mode on the CPU; ``model.info`` says where it came from
    (``from_cache``, ``train_seconds`` of the run that made it, ``path``, ``n_train``).
    """
    if isinstance(data, str):
        data = load_dataset(data, "train", root)
    if not isinstance(data, ImageData):
        raise TypeError(f"data must be a data set name or an ImageData, got {type(data).__name__}")
    if data.image_shape != (1, 28, 28):
        raise ValueError(f"the reference classifier is for MNIST-shaped digits (1, 28, 28), got {data.name!r} "
                         f"with images {data.image_shape}")
    config = config or ClassifierConfig()
    path = cache_dir(root) / "classifiers" / f"{data.name}-{_cache_key(data, config)}.pt"
    if path.exists() and not retrain:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = MnistCNN(config.channels, config.hidden, data.num_classes)
        model.load_state_dict(saved["state_dict"])
        model.info = {**saved["info"], "from_cache": True, "path": str(path)}
        return model.eval()
    start = time.perf_counter()
    model = train_classifier(data, config, progress, threads)
    info = {"data": data.name, "n_train": len(data.images), "train_seconds": time.perf_counter() - start,
            "config": dataclasses.asdict(config), "architecture": ARCHITECTURE}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    torch.save({"state_dict": model.state_dict(), "info": info}, partial)
    os.replace(partial, path)
    model.info = {**info, "from_cache": False, "path": str(path)}
    return model


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def predict_proba(classifier: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Class probabilities (N, 10), float64, of images (N, 1, 28, 28): uint8, or float in [−1, 1]."""
    x = as_model_input(images).to(_device(classifier))
    logits = extract_features(classifier.eval(), x, batch_size)
    return logits.softmax(1)


def accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of images whose most probable class is their label."""
    return float((predict_proba(classifier, images).argmax(1) == labels.cpu()).double().mean())


def confident_share(classifier: nn.Module, images: torch.Tensor, threshold: float = 0.9) -> tuple[float, float]:
    """(share of images whose largest class probability exceeds ``threshold``, its binomial standard error)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got threshold = {threshold!r}")
    share = float((predict_proba(classifier, images).max(1).values > threshold).double().mean())
    return share, math.sqrt(share * (1 - share) / len(images))


def class_histogram(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """How many images the classifier assigns to each class: (num_classes,) int64 counts."""
    probs = predict_proba(classifier, images)
    return torch.bincount(probs.argmax(1), minlength=probs.shape[1])


def kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(p ‖ uniform) = Σ_k p_k log(K p_k) in nats, p = counts / Σ counts; 0 for balanced classes, log K at most."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() < 2 or bool((counts < 0).any()) or not float(counts.sum()) > 0:
        raise ValueError(f"counts must be a 1-D tensor of K >= 2 non-negative counts with a positive sum, "
                         f"got {counts.tolist()}")
    p = counts / counts.sum()
    terms = torch.where(p > 0, p * (p * len(p)).log(), torch.zeros_like(p))
    return float(terms.sum())


def classifier_features(classifier: MnistCNN, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The penultimate (hidden-layer) features (N, hidden), float64, of images (N, 1, 28, 28)."""
    x = as_model_input(images).to(_device(classifier))
    return extract_features(classifier.eval().features, x, batch_size)


def classifier_frechet(classifier: MnistCNN, samples: torch.Tensor, real: torch.Tensor, n_pairs: int = 3,
                       seed: int = 0) -> FloorReport:
    """The Fréchet distance of ``samples`` to real digits in the classifier's features, beside its floor.

    n = len(samples), and ``real`` must hold at least 2n digits. ``n_pairs`` times, two disjoint random
    subsets A, B of n real digits are drawn: the value is the mean of FD(samples, A), the floor the mean
    of FD(A, B), so both are measured at the same n (the estimate is biased upwards at small n; see
    :mod:`minidiff.metrics.frechet`). A ratio near 1 means indistinguishable from real digits at this n.
    """
    n = len(samples)
    if len(real) < 2 * n:
        raise ValueError(f"real must hold at least 2 * len(samples) = {2 * n} digits for the floor, got {len(real)}")
    fs, fr = classifier_features(classifier, samples), classifier_features(classifier, real)
    value, floor = frechet_beside_floor(fs, fr, n_pairs, torch.Generator().manual_seed(seed))
    return FloorReport("classifier_frechet", value, floor)


def frechet_beside_floor(fs: torch.Tensor, fr: torch.Tensor, n_pairs: int,
                         gen: torch.Generator) -> tuple[float, float]:
    """(mean FD(fs, A), mean FD(A, B)) over ``n_pairs`` draws of disjoint random subsets A, B of len(fs) rows of fr.

    Features in, so callers that score several sets against the same real features compute those once.
    """
    n = len(fs)
    values, floors = [], []
    for _ in range(n_pairs):
        order = torch.randperm(len(fr), generator=gen)
        a, b = fr[order[:n]], fr[order[n:2 * n]]
        values.append(frechet_distance(fs, a))
        floors.append(frechet_distance(a, b))
    return sum(values) / n_pairs, sum(floors) / n_pairs
