"""Packaging facts: a fast import, smoke mode."""

from __future__ import annotations

import subprocess
import sys

import minidiff as md


def test_import_is_fast_and_lazy():
    """`import minidiff` costs < 1 s on top of torch, and loads neither scikit-learn nor ipywidgets."""
    code = ("import time, sys, torch; t = time.perf_counter(); import minidiff; "
            "print(time.perf_counter() - t, 'sklearn' in sys.modules, 'ipywidgets' in sys.modules, "
            "'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 1.0, out
    assert out[1:] == ["False", "False", "False"], out


def test_smoke_switch(monkeypatch):
    monkeypatch.setenv("MINIDIFF_SMOKE", "1")
    assert md.smoke() and md.pick(1000, 10) == 10
    monkeypatch.setenv("MINIDIFF_SMOKE", "0")
    assert not md.smoke() and md.pick(1000, 10) == 1000
    monkeypatch.delenv("MINIDIFF_SMOKE")
    assert not md.smoke()
