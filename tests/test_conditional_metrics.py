"""Within-class metrics of class-conditional samples (chapter "Classifier-free guidance")."""

import pytest
import torch

from minidiff.metrics import MnistCNN, mean_pairwise_distance, predict_proba, within_class_metrics


def test_mean_pairwise_distance_closed_form():
    # three points on a line at 0, 1, 3: pair distances 1, 3, 2 -> mean 2
    assert mean_pairwise_distance(torch.tensor([[0.0], [1.0], [3.0]])) == pytest.approx(2.0)
    assert mean_pairwise_distance(torch.ones(5, 4)) == 0.0
    with pytest.raises(ValueError, match="N >= 2"):
        mean_pairwise_distance(torch.ones(1, 4))


@pytest.fixture(scope="module")
def digits():
    """Labelled 'digits': class c is a bright bar at row 3c plus noise, so a small CNN separates them."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(900) % 3
    x = torch.rand(900, 1, 28, 28, generator=gen) * 0.6 - 1
    for c in range(3):
        x[labels == c, :, 3 + 8 * c: 6 + 8 * c, 4:24] = 1.0
    return x, labels


def test_real_against_real_scores_at_the_floor_and_collapse_is_caught(digits):
    x, labels = digits
    torch.manual_seed(0)
    clf = MnistCNN().eval()  # an untrained CNN is still a fixed feature map
    # "samples": 100 real images per class that the floors never use
    samp, samp_labels, real, real_labels = x[:300], labels[:300], x[300:], labels[300:]
    honest = within_class_metrics(clf, samp, samp_labels, real, real_labels, n_pairs=4)
    assert 0.6 < honest.frechet_ratio < 1.6
    assert 0.9 < honest.diversity_ratio < 1.1
    # mode collapse: each class's samples are one image repeated (plus tiny noise)
    collapsed = torch.stack([samp[samp_labels == c][0] for c in samp_labels.tolist()])
    collapsed = collapsed + 1e-3 * torch.randn_like(collapsed)
    bad = within_class_metrics(clf, collapsed, samp_labels, real, real_labels, n_pairs=4)
    assert bad.diversity_ratio < 0.05
    assert bad.frechet_ratio > 2 * honest.frechet_ratio


def test_accuracy_counts_the_requested_class():
    torch.manual_seed(0)
    clf = MnistCNN().eval()
    x = torch.rand(400, 1, 28, 28) * 2 - 1
    guess = predict_proba(clf, x).argmax(1)
    keep = torch.isin(guess, torch.tensor([c for c in guess.unique().tolist() if (guess == c).sum() >= 4]))
    x, guess = x[keep], guess[keep]
    real, r_labels = torch.cat([x, x]), torch.cat([guess, guess])
    assert within_class_metrics(clf, x, guess, real, r_labels, n_pairs=1).mean_accuracy == 1.0
    # the same images requested as another class: none is classified as requested
    other = (guess + 1) % 10
    assert within_class_metrics(clf, x, other, real, (r_labels + 1) % 10, n_pairs=1).mean_accuracy == 0.0


def test_too_few_real_digits_is_named(digits):
    x, labels = digits
    clf = MnistCNN().eval()
    with pytest.raises(ValueError, match="class 0"):
        within_class_metrics(clf, x[:60], labels[:60], x[60:100], labels[60:100])
    with pytest.raises(ValueError, match="one label per image"):
        within_class_metrics(clf, x[:60], labels[:59], x, labels)
