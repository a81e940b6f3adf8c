"""minidiff.require_gpu: the first check of every GPU chapter (chapter "Image data" and after)."""

from __future__ import annotations

import sys

import pytest
import torch

import minidiff as md
from minidiff import gpu


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("MINIDIFF_SMOKE", raising=False)


def test_without_a_gpu_it_stops_and_says_how_to_enable_one(no_cuda):
    with pytest.raises(md.gpu.NoGPUError, match="needs a GPU") as err:
        md.require_gpu(chapter="Chapter 7")
    msg = str(err.value)
    assert msg.startswith("Chapter 7")
    assert "Runtime > Change runtime type" in msg and "MINIDIFF_SMOKE=1" in msg
    assert "no CUDA GPU is visible" in msg


def test_colab_without_a_gpu_is_named(no_cuda, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", object())
    with pytest.raises(md.gpu.NoGPUError, match="this Colab runtime has no GPU"):
        md.require_gpu()


def test_smoke_mode_and_allow_cpu_fall_back_to_the_cpu(no_cuda, monkeypatch, capsys):
    assert md.require_gpu(allow_cpu=True) == torch.device("cpu")
    assert "allow_cpu=True" in capsys.readouterr().out
    monkeypatch.setenv("MINIDIFF_SMOKE", "1")
    assert md.require_gpu() == torch.device("cpu")
    out = capsys.readouterr().out
    assert "smoke mode" in out and "Change runtime type" in out


def test_with_a_gpu_it_reports_it_and_returns_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu, "describe_gpu", lambda index=0: "GPU cuda:0: Tesla T4, 14.7 GiB")
    assert md.require_gpu() == torch.device("cuda")
    assert "Tesla T4" in capsys.readouterr().out


def test_allow_cpu_must_be_a_bool():
    with pytest.raises(TypeError, match="allow_cpu must be a bool, got str 'yes'"):
        md.require_gpu(allow_cpu="yes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_describe_gpu_on_a_real_gpu():
    assert gpu.describe_gpu(0).startswith("GPU cuda:0: ")
