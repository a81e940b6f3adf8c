"""Fail if a notebook listed in _toc.yml has code cells without stored outputs (the book never executes)."""

from __future__ import annotations

import json
import pathlib
import re
import sys


def toc_notebooks(toc: pathlib.Path) -> list[pathlib.Path]:
    files = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)", toc.read_text(), flags=re.M)
    return [p for f in files if (p := toc.parent / f"{f}.ipynb").exists()]


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    bad = []
    for nb_path in toc_notebooks(root / "_toc.yml"):
        nb = json.loads(nb_path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
        missing = [i for i, c in enumerate(code) if c.get("execution_count") is None]
        errors = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        if missing or errors:
            bad.append(f"{nb_path.relative_to(root)}: unexecuted code cells {missing}, cells with errors {errors}")
    if bad:
        print("Notebooks in the TOC must be stored with the outputs of a full run:\n  " + "\n  ".join(bad))
        return 1
    print("notebook outputs: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
