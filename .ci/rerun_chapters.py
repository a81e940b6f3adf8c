"""Rerun chapters in full mode, time them, and compare their text outputs with the stored ones.

    .venv/bin/python .ci/rerun_chapters.py                       # every notebook in notebooks/
    .venv/bin/python .ci/rerun_chapters.py notebooks/03_*.ipynb  # some of them
    .venv/bin/python .ci/rerun_chapters.py --store               # ...and store the new outputs
    .venv/bin/python .ci/rerun_chapters.py --accept notebooks/03_*.ipynb  # store even if numbers changed

Each notebook runs with nbclient in its own kernel (MINIDIFF_SMOKE unset) into a temporary copy; the
stored notebook is never modified. Prints the wall time per chapter, then every text output (stream
and text/plain) that differs from the stored one, line by line. Lines that carry wall-clock times
("33 s", "[13.1 s]", "in 127 s") are expected to differ and are reported separately. Exit status 1
if any other line differs, so "reruns give the same numbers" is checked, not assumed. With ``--store``
a chapter whose numbers all match is written back with its rerun outputs (new timings, figures
redrawn by the current code); a chapter with a differing number is never stored. ``--accept`` stores
it anyway, after printing every differing line: for a chapter whose code changed on purpose, so that
the changed claims are listed (and can go into the closing note). Not part of
`make test`: a full rerun of Part I takes about 15 minutes on 2 CPU cores (chapter 3 about 10).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
# A number followed by a unit of time: the only outputs that may change from run to run.
TIMING = re.compile(r"\d+(?:\.\d+)?\s*(?:s|ms|min)\b")


def text_lines(nb: dict) -> list[tuple[int, str]]:
    """(cell index, line) of every text output; consecutive stdout chunks merge, as Jupyter shows them."""
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                text = "".join(o["text"])
            elif "data" in o and "text/plain" in o["data"] and "image/png" not in o["data"]:
                text = "".join(o["data"]["text/plain"])
            else:
                continue
            out += [(i, line) for line in text.splitlines()]
    return out


def _without_times(line: str) -> str:
    """The line with every wall time replaced, and runs of blanks collapsed (a table pads its time column)."""
    return " ".join(TIMING.sub("<time>", line).split())


def compare(stored: dict, rerun: dict) -> tuple[list[str], list[str]]:
    """(differences in numbers or text, differences only in timings) between two runs of a notebook."""
    a, b = text_lines(stored), text_lines(rerun)
    real, timing = [], []
    if len(a) != len(b):
        real.append(f"{len(a)} stored output lines, {len(b)} in the rerun")
    for (i, x), (_, y) in zip(a, b):
        if x == y:
            continue
        same_but_times = _without_times(x) == _without_times(y)
        (timing if same_but_times else real).append(f"cell {i}:\n    stored: {x}\n    rerun:  {y}")
    return real, timing


def main(argv: list[str]) -> int:
    import nbformat
    from nbclient import NotebookClient

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="Not part of `make test`.")
    p.add_argument("notebooks", nargs="*", type=pathlib.Path, help="notebooks to rerun (default: all of notebooks/)")
    p.add_argument("--store", action="store_true", help="write back the rerun outputs of chapters whose numbers match")
    p.add_argument("--accept", action="store_true", help="write back the rerun outputs even where numbers differ")
    args = p.parse_args(argv)
    missing = [str(path) for path in args.notebooks if not path.is_file()]
    if missing:
        p.error(f"no such notebook: {', '.join(missing)}")
    store = args.store or args.accept
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    env_smoke = os.environ.pop("MINIDIFF_SMOKE", None)
    if env_smoke:
        print(f"note: MINIDIFF_SMOKE={env_smoke} unset for the full rerun")
    failed, total = False, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            stored = nbformat.read(path, as_version=4)
            nb = nbformat.read(path, as_version=4)
            start = time.perf_counter()
            NotebookClient(nb, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            seconds = time.perf_counter() - start
            total += seconds
            nbformat.write(nb, pathlib.Path(tmp) / path.name)
            real, timing = compare(stored, nb)
            print(f"{path.name}: {seconds:.1f} s; {len(real)} differing outputs, {len(timing)} timing-only")
            for d in real:
                print("  DIFFERS " + d)
            failed |= bool(real) and not args.accept
            if store and (args.accept or not real):
                nbformat.write(nb, path)
                print(f"  stored the rerun outputs in {path}")
    print(f"total {total:.1f} s for {len(paths)} chapters")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
