"""Build the course kit: `otter assign` every master notebook in assignments/ (run by `make assignments`).

For each master ``assignments/<name>.ipynb`` this writes, offline,
``_build/assignments/<name>/student/<name>.ipynb`` (solutions stripped, public tests only) and
``_build/assignments/<name>/autograder/`` (the notebook with solutions and hidden tests, and
``autograder.zip`` for ``otter run`` or Gradescope). `otter assign` also runs every test on the
solutions, in smoke mode (``MINIDIFF_SMOKE=1``, unless set otherwise), and fails if one fails.

``--time-grading N`` then grades N copies of each solution notebook with ``otter run`` and prints the
wall time, the way an instructor grades a folder of submissions (see the instructor's guide).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MASTERS = ROOT / "assignments"
OUT = ROOT / "_build" / "assignments"


def otter() -> str:
    return str(pathlib.Path(sys.executable).parent / "otter")


def smoke_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MINIDIFF_SMOKE", "1")
    return env


def masters() -> list[pathlib.Path]:
    return sorted(MASTERS.glob("a*.ipynb"))


def build(master: pathlib.Path, out: pathlib.Path = OUT) -> pathlib.Path:
    """`otter assign` one master into out/<name>/{student,autograder}; returns out/<name>."""
    dest = out / master.stem
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run([otter(), "assign", str(master), str(dest)], check=True, env=smoke_env(),
                   stdout=subprocess.DEVNULL)
    zips = sorted((dest / "autograder").glob("*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"expected one autograder zip in {dest / 'autograder'}, got {zips}")
    zips[0].rename(dest / "autograder" / "autograder.zip")  # a stable name (otter's has a timestamp)
    return dest


def grade(autograder_zip: pathlib.Path, submission: pathlib.Path) -> dict[str, tuple[float, float]]:
    """`otter run` one submission; returns {question: (score, max_score)}."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([otter(), "run", "-a", str(autograder_zip), "-o", tmp, str(submission)], check=True,
                       env=smoke_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results = json.loads((pathlib.Path(tmp) / "results.json").read_text())
    return {t["name"]: (float(t["score"]), float(t["max_score"])) for t in results["tests"] if "score" in t}


def time_grading(dest: pathlib.Path, copies: int) -> float:
    """Grade `copies` copies of a correct submission (the solution notebook) one after the other, as for a
    folder of submissions; a correct one runs every cell, training included, so it is the slowest to grade."""
    student = next((dest / "autograder").glob("*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        subs = []
        for i in range(copies):
            sub = pathlib.Path(tmp) / f"student{i:02d}" / student.name
            sub.parent.mkdir()
            shutil.copy(student, sub)
            subs.append(sub)
        start = time.perf_counter()
        for sub in subs:
            grade(dest / "autograder" / "autograder.zip", sub)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-grading", type=int, default=0, metavar="N",
                        help="grade N copies of each solution with otter run and print the time")
    args = parser.parse_args()
    for master in masters():
        dest = build(master)
        print(f"{master.name}: {dest.relative_to(ROOT)}/student, {dest.relative_to(ROOT)}/autograder/autograder.zip")
        if args.time_grading:
            seconds = time_grading(dest, args.time_grading)
            print(f"  otter run on {args.time_grading} submissions: {seconds:.0f} s")


if __name__ == "__main__":
    main()
