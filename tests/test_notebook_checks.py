"""The book's notebook checks (.ci/check_notebook_outputs.py, run by `make book`) catch what they claim to."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _ci_script(name: str):
    """Import .ci/NAME.py (the .ci folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / ".ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checks():
    return _ci_script("check_notebook_outputs")


def _nb(*sources: str, executed: bool = True) -> dict:
    cells = [{"cell_type": "code", "source": s, "execution_count": 1 if executed else None, "outputs": []}
             for s in sources]
    return {"cells": cells}


def test_colab_guard_uses_the_repository_and_branch_of_config(checks, tmp_path):
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    guard = checks.colab_guard(ROOT / "_config.yml")
    assert f"git+{repo['url'].rstrip('/')}@{repo['branch']}" in guard
    assert guard.startswith("# NBVAL_SKIP\n")                       # nbval never runs it
    assert 'importlib.util.find_spec("minidiff") is None' in guard   # installs only when missing
    other = tmp_path / "_config.yml"
    other.write_text(yaml.safe_dump({"repository": {"url": "https://example.org/fork/", "branch": "dev"}}))
    assert "git+https://example.org/fork@dev" in checks.colab_guard(other)


def test_guard_check_rejects_a_stale_or_missing_guard(checks):
    guard = checks.colab_guard(ROOT / "_config.yml")
    assert checks.check_colab_guard(_nb(guard, "x = 1"), guard) == []
    stale = guard.replace("@main", "@old-branch")
    assert checks.check_colab_guard(_nb(stale, "x = 1"), guard)
    assert checks.check_colab_guard(_nb("import minidiff"), guard)
    assert checks.check_colab_guard({"cells": []}, guard)


def test_output_check_finds_unexecuted_and_failed_cells(checks):
    assert checks.check_outputs(_nb("a = 1", "b = 2")) == []
    half_run = {"cells": _nb("a = 1")["cells"] + _nb("b = 2", executed=False)["cells"]}
    assert "unexecuted code cells [1]" in checks.check_outputs(half_run)[0]
    failed = _nb("1 / 0")
    failed["cells"][0]["outputs"] = [{"output_type": "error", "ename": "ZeroDivisionError"}]
    assert "cells with errors [0]" in checks.check_outputs(failed)[0]


def test_gpu_chapter_needs_colab_gpu_metadata_and_the_gpu_check(checks):
    gpu_meta = {"accelerator": "GPU", "colab": {"gpuType": "T4"}}
    calls = _nb("import minidiff as md", "device = md.require_gpu()")
    assert checks.check_gpu_chapter(calls)                           # would open on a CPU runtime
    assert checks.check_gpu_chapter({**calls, "metadata": gpu_meta}) == []
    silent = {**_nb("import minidiff as md"), "metadata": gpu_meta}
    assert "never calls minidiff.require_gpu()" in checks.check_gpu_chapter(silent)[0]
    assert checks.check_gpu_chapter(_nb("x = 1")) == []               # a CPU chapter needs neither


def test_every_notebook_in_the_toc_passes(checks):
    assert checks.main() == 0


@pytest.fixture(scope="module")
def rerun():
    return _ci_script("rerun_chapters")


def _outputs(*texts: str) -> dict:
    return {"cells": [{"cell_type": "code", "source": "", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": t} for t in texts]}]}


def test_rerun_comparison_tells_timings_from_numbers(rerun):
    stored = _outputs("3000 steps in 33 s; loss 0.221\n", "ratio 1.26x [13.1 s]\n")
    same_but_times = _outputs("3000 steps in 22 s; loss 0.221\nratio 1.26x [10.7 s]\n")  # chunks merged
    assert rerun.compare(stored, same_but_times) == ([], [
        "cell 0:\n    stored: 3000 steps in 33 s; loss 0.221\n    rerun:  3000 steps in 22 s; loss 0.221",
        "cell 0:\n    stored: ratio 1.26x [13.1 s]\n    rerun:  ratio 1.26x [10.7 s]"])
    other_loss = _outputs("3000 steps in 33 s; loss 0.222\n", "ratio 1.26x [13.1 s]\n")
    real, timing = rerun.compare(stored, other_loss)
    assert len(real) == 1 and "loss 0.222" in real[0] and timing == []
    assert "2 stored output lines, 1 in the rerun" in rerun.compare(stored, _outputs("x\n"))[0][0]
