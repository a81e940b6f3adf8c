"""Checks on the notebooks listed in _toc.yml, run by `make book` before the build.

1. Every code cell has stored outputs of a full run and none raised (the book never executes).
2. A notebook that uses one of the book's math macros carries the macro cell of .ci/macros.py,
   identical to the definitions in _config.yml, so it renders when opened alone (Jupyter, Colab).
3. The first code cell is the Colab guard, exactly as ``colab_guard`` writes it from the repository
   URL and branch in _config.yml (set there and only there): under Colab, and only when minidiff is
   missing, it installs minidiff from that repository, so the launch button works. Print it with
   ``python .ci/check_notebook_outputs.py --guard``.
4. A GPU chapter (one that calls ``require_gpu``) carries Colab's notebook metadata
   ``"accelerator": "GPU"``, so the launch button opens it on a GPU runtime, and a notebook with that
   metadata calls ``require_gpu``, which stops "Run all" on a CPU with a message on enabling a GPU.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import yaml  # noqa: E402
from macros import macro_cell, macros, uses_macros  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def toc_notebooks(toc: pathlib.Path) -> list[pathlib.Path]:
    files = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)", toc.read_text(), flags=re.M)
    return [p for f in files if (p := toc.parent / f"{f}.ipynb").exists()]


def check_outputs(nb: dict) -> list[str]:
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    missing = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    errors = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    if missing or errors:
        return [f"unexecuted code cells {missing}, cells with errors {errors}"]
    return []


def check_macros(nb: dict, defs: dict[str, str]) -> list[str]:
    cell = macro_cell(defs)
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    used = sorted({name for src in markdown if src.strip() != cell for name in uses_macros(src, defs)})
    if used and not any(src.strip() == cell for src in markdown):
        return [f"uses the macros {used} but has no markdown cell equal to the output of `python .ci/macros.py`"]
    return []


def colab_guard(config: pathlib.Path = ROOT / "_config.yml") -> str:
    """The first code cell of every notebook: install minidiff under Colab when it is missing."""
    repo = yaml.safe_load(config.read_text())["repository"]
    url, branch = repo["url"].rstrip("/"), repo.get("branch", "main")
    return (
        "# NBVAL_SKIP\n"
        "# Google Colab only: install minidiff when it is missing. Elsewhere `make test` (or\n"
        '# `pip install -e ".[notebooks]"`) has installed it.\n'
        "import importlib.util\n"
        "import sys\n"
        "\n"
        'IN_COLAB = "google.colab" in sys.modules\n'
        'if IN_COLAB and importlib.util.find_spec("minidiff") is None:\n'
        f'    %pip install -q "minidiff @ git+{url}@{branch}"'
    )


def check_colab_guard(nb: dict, guard: str) -> list[str]:
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    if not code or code[0] != guard:
        return ["the first code cell must be the Colab guard built from _config.yml's repository "
                "(print it with `python .ci/check_notebook_outputs.py --guard`)"]
    return []


def check_gpu_chapter(nb: dict) -> list[str]:
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    calls = re.search(r"\brequire_gpu\(", code) is not None
    wants_gpu = nb.get("metadata", {}).get("accelerator") == "GPU"
    if calls and not wants_gpu:
        return ['calls require_gpu but lacks the notebook metadata "accelerator": "GPU" (and "colab": '
                '{"gpuType": "T4"}), so Colab would open it on a CPU runtime']
    if wants_gpu and not calls:
        return ['has the notebook metadata "accelerator": "GPU" but never calls minidiff.require_gpu(), '
                "which tells a reader without a GPU how to enable one"]
    return []


def main() -> int:
    root = ROOT
    defs = macros(root / "_config.yml")
    guard = colab_guard(root / "_config.yml")
    if "--guard" in sys.argv[1:]:
        print(guard)
        return 0
    bad = []
    for nb_path in toc_notebooks(root / "_toc.yml"):
        nb = json.loads(nb_path.read_text())
        problems = (check_outputs(nb) + check_macros(nb, defs) + check_colab_guard(nb, guard)
                    + check_gpu_chapter(nb))
        bad += [f"{nb_path.relative_to(root)}: {msg}" for msg in problems]
    if bad:
        print("Notebooks in the TOC fail the book's checks:\n  " + "\n  ".join(bad))
        return 1
    print("notebook outputs and math macros: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
