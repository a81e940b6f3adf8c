"""Image metrics: the reference classifier (trains, caches, reloads), the figures read from it, batched
bits/dim equal to the per-batch negative ELBO, nearest neighbours, and the FID library's clear errors."""

import math
import sys
import types
import urllib.error

import pytest
import torch

import minidiff as md
from minidiff.data import ImageData, load_dataset
from minidiff.metrics import (
    ClassifierConfig,
    FidUnavailableError,
    MnistCNN,
    accuracy,
    bits_per_dim,
    class_histogram,
    classifier_frechet,
    confident_share,
    inception_metrics,
    kl_to_uniform,
    nearest_neighbours,
    reference_classifier,
)
from minidiff.metrics import fid as fid_module


@pytest.fixture(scope="module")
def digits() -> tuple[ImageData, ImageData]:
    return load_dataset("mnist-offline", "train"), load_dataset("mnist-offline", "test")


def untrained() -> MnistCNN:
    torch.manual_seed(0)
    return MnistCNN().eval()


@pytest.mark.slow
def test_reference_classifier_learns_then_reloads_from_the_cache(digits, tmp_path):
    train, test = digits
    subset = ImageData("mnist-offline", train.images[:1000], train.labels[:1000], 10, flip=False)
    config = ClassifierConfig(steps=60, batch_size=64)
    first = reference_classifier(subset, config, root=tmp_path)
    assert first.info["from_cache"] is False and first.info["n_train"] == 1000
    second = reference_classifier(subset, config, root=tmp_path)
    assert second.info["from_cache"] is True and second.info["path"] == first.info["path"]
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    # 60 steps on 1,000 digits: far above chance (0.1) on the 1,000 held-out digits (binomial sd <= 0.016).
    assert accuracy(second, test.images, test.labels) > 0.6
    other = reference_classifier(subset, ClassifierConfig(steps=2, batch_size=64), root=tmp_path)
    assert other.info["from_cache"] is False and other.info["path"] != first.info["path"]


def test_kl_to_uniform_hand_computed():
    assert kl_to_uniform(torch.full((10,), 7)) == pytest.approx(0.0, abs=1e-15)
    assert kl_to_uniform(torch.tensor([0, 0, 5, 0])) == pytest.approx(math.log(4))  # one class only: log K
    assert kl_to_uniform(torch.tensor([1, 3])) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    with pytest.raises(ValueError, match="non-negative counts"):
        kl_to_uniform(torch.tensor([1, -1]))


def test_confident_share_and_histogram_count_every_image(digits):
    _, test = digits
    net = untrained()
    with torch.no_grad():
        net.head.bias.copy_(torch.tensor([100.0] + [0.0] * 9))  # every image is a confident 0
    assert confident_share(net, test.images[:50]) == (1.0, 0.0)
    counts = class_histogram(net, test.images[:50])
    assert counts.tolist() == [50] + [0] * 9 and kl_to_uniform(counts) == pytest.approx(math.log(10))
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\)"):
        confident_share(net, test.images[:5, :, :27])


def test_classifier_frechet_is_at_its_floor_for_real_digits_and_far_above_for_shifted(digits):
    train, test = digits
    net, n = untrained(), 200
    real = classifier_frechet(net, train.images[:n], test.images, n_pairs=3)
    shifted = classifier_frechet(net, torch.roll(train.images[:n], shifts=8, dims=3), test.images, n_pairs=3)
    assert real.floor > 0 and real.ratio < 1.5  # real training digits vs real test digits: at the floor
    assert shifted.ratio > 3 * real.ratio
    with pytest.raises(ValueError, match="at least 2"):
        classifier_frechet(net, test.images[:600], test.images)


@pytest.mark.parametrize("space", ["pixels", "features"])
def test_a_copied_training_image_is_its_own_nearest_neighbour_at_distance_0(digits, space):
    train, _ = digits
    ref = train.images[:300]
    samples = torch.cat([ref[[17, 250]], train.images[300:303]])
    features = None if space == "pixels" else untrained().features
    nn = nearest_neighbours(samples, ref, k=3, features=features)
    assert nn.indices[:2, 0].tolist() == [17, 250] and nn.distances[:2, 0].tolist() == [0.0, 0.0]
    assert bool((nn.distances[2:, 0] > 0).all()) and bool((nn.distances.diff(dim=1) >= 0).all())
    if space == "pixels":  # the distances are the Euclidean ones in [-1, 1] pixel space
        x = ref.float() / 127.5 - 1
        brute = ((x - (samples[3].float() / 127.5 - 1)) ** 2).flatten(1).sum(1).sqrt()
        assert torch.allclose(nn.distances[3].float(), brute.sort().values[:3], atol=1e-5)


class TinyEps(torch.nn.Module):
    """A tiny ε-network for 1×4×4 images: a 3×3 convolution plus a learned function of t."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        self.t_scale = torch.nn.Parameter(torch.tensor(0.01))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.t_scale * t.float().view(-1, 1, 1, 1)


def test_batched_bits_per_dim_equals_the_per_batch_negative_elbo():
    torch.manual_seed(0)
    model, schedule = TinyEps(), md.get_schedule("linear", 20)
    images = torch.randint(0, 256, (10, 1, 4, 4), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    result = bits_per_dim(model, images, schedule, batch_size=4, seed=3, progress=False)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        expected = torch.cat([md.negative_elbo(model, images[i:i + 4].float() / 127.5 - 1, schedule, generator=gen)
                              ["total"] for i in range(0, 10, 4)])
    assert torch.allclose(result.per_image, expected, rtol=1e-6, atol=0)
    assert result.mean == pytest.approx(float(expected.mean()))
    assert result.se == pytest.approx(float(expected.std()) / math.sqrt(10))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got batch_size = 0"):
        bits_per_dim(model, images, schedule, batch_size=0)


def test_fid_without_torch_fidelity_names_the_package_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # import torch_fidelity now raises ImportError
    with pytest.raises(FidUnavailableError, match=r"torch-fidelity.*minidiff\[fid\]"):
        inception_metrics(torch.zeros(4, 1, 28, 28), torch.zeros(4, 1, 28, 28))


def test_offline_inception_weights_error_names_the_file_the_url_and_the_place(monkeypatch, tmp_path):
    def no_network(url, dst, progress=True):
        raise urllib.error.URLError("no internet")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(FidUnavailableError) as err:
        fid_module.inception_weights()
    message = str(err.value)
    assert fid_module.WEIGHTS_FILE in message and fid_module.WEIGHTS_URL in message and str(tmp_path) in message


def test_inception_metrics_hands_torch_fidelity_rgb_uint8_images_and_the_weights(monkeypatch, tmp_path):
    seen = {}

    def calculate_metrics(**kwargs):
        seen.update(kwargs)
        return {"frechet_inception_distance": 12.5, "inception_score_mean": 3.0, "inception_score_std": 0.25}

    monkeypatch.setitem(sys.modules, "torch_fidelity", types.SimpleNamespace(calculate_metrics=calculate_metrics))
    weights = tmp_path / fid_module.WEIGHTS_FILE
    weights.write_bytes(b"stand-in")
    samples = torch.linspace(-1, 1, 3 * 28 * 28).reshape(3, 1, 28, 28)
    out = inception_metrics(samples, torch.zeros(5, 3, 8, 8, dtype=torch.uint8), weights_path=weights, cuda=False)
    assert out == {"fid": 12.5, "is_mean": 3.0, "is_std": 0.25}
    first = seen["input1"][0]
    assert first.dtype == torch.uint8 and first.shape == (3, 28, 28) and torch.equal(first[0], first[2])
    assert int(first.min()) == 0 and int(seen["input1"][2].max()) == 255 and len(seen["input2"]) == 5
    assert seen["feature_extractor_weights_path"] == str(weights) and seen["fid"] and seen["isc"]


def test_reference_classifier_refuses_images_that_are_not_mnist_shaped(tmp_path):
    patches = ImageData("cifar10-offline", torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4).long(), 2,
                        flip=True)
    with pytest.raises(ValueError, match=r"MNIST-shaped digits \(1, 28, 28\), got 'cifar10-offline'"):
        reference_classifier(patches, root=tmp_path)
    with pytest.raises(ValueError, match="steps must be a positive int, got steps = 0"):
        ClassifierConfig(steps=0)


def test_train_classifier_restores_the_torch_thread_count(digits):
    train, _ = digits
    small = ImageData("mnist-offline", train.images[:16], train.labels[:16], 10, flip=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        from minidiff.metrics.classifier import train_classifier

        model = train_classifier(small, ClassifierConfig(steps=1, batch_size=8), threads=1)
        assert torch.get_num_threads() == 2 and not model.training
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be a positive int or None, got threads = 0"):
        train_classifier(small, threads=0)
