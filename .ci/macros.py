"""The book's math macros, defined once in _config.yml, as the markdown cell a notebook carries.

MathJax in the book gets the macros from ``sphinx.config.mathjax3_config.tex.macros`` in
_config.yml. A notebook opened alone (Jupyter, Colab) does not see that file, so a notebook that
uses a macro carries a markdown cell with the same definitions as ``\\newcommand``s, exactly as
printed by ``python .ci/macros.py``. ``.ci/check_notebook_outputs.py`` fails the book build when a
notebook uses a macro without carrying the current cell.
"""

from __future__ import annotations

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def macros(config: pathlib.Path = ROOT / "_config.yml") -> dict[str, str]:
    """name -> LaTeX body, from _config.yml's mathjax3_config."""
    cfg = yaml.safe_load(config.read_text())
    return dict(cfg["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"])


def macro_cell(defs: dict[str, str] | None = None) -> str:
    """The markdown cell source: one inline-math span of \\newcommand definitions."""
    defs = macros() if defs is None else defs
    return "$" + "".join(f"\\newcommand{{\\{name}}}{{{body}}}" for name, body in defs.items()) + "$"


def uses_macros(text: str, defs: dict[str, str]) -> list[str]:
    """The macro names used (as ``\\name`` not followed by a letter) in ``text``."""
    return [name for name in defs if re.search(rf"\\{name}(?![A-Za-z])", text)]


if __name__ == "__main__":
    sys.stdout.write(macro_cell() + "\n")
