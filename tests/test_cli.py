"""The minidiff command line: train, sample, info; one-line errors with exit status 2."""

import subprocess
import sys

import pytest
from PIL import Image

from minidiff.cli import main

TRAIN = ["train", "--preset", "tiny", "--data", "mnist-offline", "--steps", "2", "--batch-size", "2",
         "--log-every", "1", "--sample-every", "0", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


def test_train_writes_checkpoints_and_log(run_dir):
    assert (run_dir / "last.pt").is_file() and (run_dir / "ckpt-00000002.pt").is_file()
    assert (run_dir / "log.csv").read_text().splitlines()[0].startswith("step,loss")


def test_train_resume_continues_from_the_checkpoint(run_dir, capsys):
    assert main([*TRAIN[:6], "3", *TRAIN[7:], "--out", str(run_dir), "--resume"]) == 0
    assert "from step 2 to 3" in capsys.readouterr().err


def test_sample_writes_a_png_grid_of_n_images(run_dir, tmp_path):
    assert main(["sample", "--ckpt", str(run_dir / "last.pt"), "--sampler", "ddim", "--steps", "2", "--n", "4",
                 "--out", str(tmp_path / "grid.png"), "--device", "cpu"]) == 0
    with Image.open(tmp_path / "grid.png") as im:
        assert im.size == (2 * 30 + 2, 2 * 30 + 2)  # 2x2 tiles of 28x28 with 2-pixel padding


def test_info_prints_the_parameter_count(capsys):
    assert main(["info", "--preset", "cifar10"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 35,746,307" in out and "16x16" in out


@pytest.mark.parametrize("argv, message", [
    (["info", "--preset", "imagenet"], "unknown preset 'imagenet'"),
    (["sample", "--ckpt", "no/such/file.pt"], "no checkpoint at no/such/file.pt"),
    (["train", "--steps", "zero"], "expected a positive integer"),
    (["bogus"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_corrupt_checkpoint_and_checkpoint_from_another_preset_are_refused(run_dir, tmp_path, capsys):
    (tmp_path / "bad.pt").write_bytes(b"truncated")
    assert main(["sample", "--ckpt", str(tmp_path / "bad.pt")]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert main(["sample", "--ckpt", str(run_dir / "last.pt"), "--preset", "mnist"]) == 2
    assert "a 'tiny' checkpoint, not 'mnist'" in capsys.readouterr().err
    assert main(["train", "--preset", "mnist", "--data", "mnist-offline", "--out", str(run_dir), "--resume"]) == 2
    assert "preset: the checkpoint has 'tiny', this run has 'mnist'" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_minidiff_exits_2_without_a_traceback():
    r = subprocess.run([sys.executable, "-m", "minidiff", "info", "--preset", "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("minidiff: error: unknown preset") and "Traceback" not in r.stderr
