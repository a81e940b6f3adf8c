"""bench/mnist_quality.py: the share of images a classifier recognizes with confidence > 0.9."""

import math

import numpy as np
import pytest
from _helpers import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("mnist_quality")


class _Fixed:
    """A stand-in classifier: image i gets confidence probs[i] for class i % 10."""

    def __init__(self, confidence):
        self.confidence = np.asarray(confidence)

    def predict_proba(self, x):
        p = np.full((len(x), 10), 0.0)
        for i, c in enumerate(self.confidence):
            p[i, :] = (1 - c) / 9
            p[i, i % 10] = c
        return p


def test_confident_share_counts_images_above_the_threshold_with_a_binomial_standard_error(bench):
    images = np.zeros((4, 1, 28, 28), dtype=np.uint8)
    share, se, classes = bench.confident_share(_Fixed([0.95, 0.5, 0.91, 0.9]), images)
    assert share == 0.5 and math.isclose(se, math.sqrt(0.25 / 4)) and list(classes) == [0, 2]
    with pytest.raises(ValueError, match=r"images must be uint8 \(N, 1, 28, 28\), got float64"):
        bench.confident_share(_Fixed([1.0]), np.zeros((1, 1, 28, 28)))


@pytest.mark.slow
def test_the_classifier_recognizes_most_real_test_digits(bench):
    from minidiff.data.standins import load_mnist_offline

    clf = bench.train_classifier()
    share, se, classes = bench.confident_share(clf, load_mnist_offline("test")[0].numpy())
    # measured: 0.915 ± 0.009 (n = 1,000); far from a blank classifier's 0
    assert share > 0.8 and len(set(classes.tolist())) == 10
