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
    assert md.smoke.enabled() and md.smoke.pick(1000, 10) == 10
    monkeypatch.setenv("MINIDIFF_SMOKE", "0")
    assert not md.smoke.enabled() and md.smoke.pick(1000, 10) == 1000
    monkeypatch.delenv("MINIDIFF_SMOKE")
    assert not md.smoke.enabled()


def test_public_api_is_small_and_every_name_resolves():
    """`minidiff.__all__` is what a reader of the book calls (at most 35 names); the rest lives in modules."""
    assert len(md.__all__) <= 35, len(md.__all__)
    assert len(set(md.__all__)) == len(md.__all__)
    for name in md.__all__:
        assert getattr(md, name) is not None
    for hidden in ("pick", "extract", "x0_from_eps", "TrainConfig"):
        assert hidden not in md.__all__
    assert md.smoke.pick and md.schedules.extract and md.parameterization.x0_from_eps and md.training.TrainConfig


def test_no_module_imports_another_modules_private_name():
    """One math layer: no `from .x import _y` anywhere in the package (the twins are gone)."""
    import ast
    from pathlib import Path

    bad = []
    for path in Path(md.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("minidiff")):
                bad += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert not bad, bad


def _time_conversions(source: str) -> list[str]:
    """Lines of notebook code that shift a time index by one (t − 1, taus + 1, T − 1, ...).

    A loop bound ``range(a, b + 1)`` (b inclusive) and comments are not conversions and are skipped.
    """
    import re

    shift = re.compile(r"(\b(?:t|tt|ts|taus|T|s)\b|\.T\b|\])\)?\s+[-+]\s+1\b")  # code style: spaces around
    bad = []
    for line in source.splitlines():
        code = re.sub(r"range\([^()]*\+\s*1\)", "range(...)", line.split("#")[0])
        if shift.search(code) or "code ind" in line:
            bad.append(line.strip())
    return bad


def test_no_notebook_converts_between_time_indices():
    """One time index: no chapter adds or subtracts 1 to move between the paper's t and a code index."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "notebooks"
    bad = {}
    for path in sorted(root.glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        lines = [x for c in cells if c["cell_type"] == "code" for x in _time_conversions("".join(c["source"]))]
        if lines:
            bad[path.name] = lines
    assert not bad, bad
    assert _time_conversions("x = md.q_sample(x0, t - 1, sch)\nprint((taus + 1).tolist())") == [
        "x = md.q_sample(x0, t - 1, sch)", "print((taus + 1).tolist())"]  # the check can fail
