"""The reference MNIST classifier's own figures, and the small-n bias of the Fréchet distance.

Prints, for the MNIST loaded with ``--data`` (default ``mnist-offline``: 4,000 training and 1,000
test digits, no download; ``mnist`` on a machine with internet):

1. the classifier's training time (wall clock and process CPU time, ``--threads`` threads, with the
   load average beside it, since a shared machine slows the wall clock) or that it came from the
   cache, and its accuracy on the test digits;
2. the share of real test digits it classifies with confidence > 0.9 (the peer of a sample's share);
3. the real-vs-real Fréchet distance in its penultimate features: two disjoint halves of the test
   digits (n = half), over ``--pairs`` random splits, mean ± sd: the floor of a sample's value at that n;
4. the small-n bias table: real-vs-real Fréchet distance at n = 100, 500, 1000 (disjoint training
   digits), with an injected parameter-free extractor (4×4 average pooling, 49 features) and with
   the classifier's features: both fall with n, so Fréchet distances at different n are not comparable.

    python bench/image_metrics.py                    # trains once (cached), then seconds
    python bench/image_metrics.py --retrain          # retrains, to time it
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def pooled(x: torch.Tensor) -> torch.Tensor:
    """The injected extractor: 4×4 average pooling of [−1, 1] digits, (B, 1, 28, 28) -> (B, 49)."""
    return F.avg_pool2d(x.float(), 4).flatten(1)


def floor_stats(features: torch.Tensor, n: int, pairs: int) -> tuple[float, float]:
    from minidiff.metrics import frechet_floor

    values = frechet_floor(features, n, n_pairs=pairs, seed=0)
    return float(np.mean(values)), float(np.std(values, ddof=1)) if pairs > 1 else float("nan")


def main(argv: list[str] | None = None) -> int:
    from minidiff.data import load_dataset
    from minidiff.data.images import to_unit_range
    from minidiff.metrics import accuracy, classifier_features, confident_share, extract_features, reference_classifier

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mnist-offline", help="mnist-offline (default) or mnist")
    p.add_argument("--threads", type=int, default=1, help="torch threads to train the classifier on (default 1)")
    p.add_argument("--pairs", type=int, default=5, help="random real-vs-real splits per n (default 5)")
    p.add_argument("--retrain", action="store_true", help="retrain the classifier even if it is cached")
    args = p.parse_args(argv)
    train, test = load_dataset(args.data, "train"), load_dataset(args.data, "test")
    load_before = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    clf = reference_classifier(train, retrain=args.retrain, threads=args.threads)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    cfg = clf.info["config"]
    if clf.info["from_cache"]:
        how = f"loaded from the cache in {elapsed:.1f} s (it trained in {clf.info['train_seconds']:.0f} s)"
    else:
        how = (f"trained in {elapsed:.0f} s wall, {cpu:.0f} s CPU, on {args.threads} thread(s); load average "
               f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores")
    print(f"classifier: {clf.info['architecture']}, {cfg['steps']} steps at batch {cfg['batch_size']} on "
          f"{clf.info['n_train']} {args.data} training digits; {how}")
    print(f"test accuracy: {accuracy(clf, test.images, test.labels):.3f} on {len(test.images)} test digits")
    share, se = confident_share(clf, test.images)
    print(f"real test digits classified with confidence > 0.9: {share:.3f} ± {se:.3f} (n = {len(test.images)})")
    half = len(test.images) // 2
    mean, sd = floor_stats(classifier_features(clf, test.images), half, args.pairs)
    print(f"classifier Fréchet floor, real vs real test digits at n = {half}: {mean:.3f} ± {sd:.3f} "
          f"(mean ± sd over {args.pairs} random splits)")
    print("small-n bias: real-vs-real Fréchet distance, disjoint training digits, "
          f"mean ± sd over {args.pairs} splits")
    print("     n | pooled 4x4 (49 features) | classifier (128 features)")
    pool_features = extract_features(pooled, to_unit_range(train.images))
    clf_features = classifier_features(clf, train.images)
    for n in (100, 500, 1000):
        (pm, ps), (cm, cs) = floor_stats(pool_features, n, args.pairs), floor_stats(clf_features, n, args.pairs)
        print(f"{n:6d} | {pm:10.4f} ± {ps:.4f}      | {cm:9.3f} ± {cs:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
