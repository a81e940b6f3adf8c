"""Build the instructor edition of the book into _build/instructor/html (run by `make book-instructor`).

The instructor edition is the public book plus a part "Instructor edition": the rubrics and the answers to
the assignments' discussion questions (book/instructor/rubrics.md) and the four master notebooks of
assignments/, which hold the solutions and every public and hidden test. Its table of contents and
configuration are generated from _toc.yml and _config.yml (so the two editions never drift apart) beside
them, as _toc_instructor.yml and _config_instructor.yml (relative paths in the configuration resolve from
the book's root), and removed after the build. The public book (`make book`) lists none of these files,
and `only_build_toc_files` keeps them out of it.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "_build" / "instructor"
INSTRUCTOR_PAGES = ["book/instructor/rubrics"] + [f"assignments/{p.stem}" for p in
                                                   sorted((ROOT / "assignments").glob("a*.ipynb"))]


def write_toc_and_config() -> tuple[pathlib.Path, pathlib.Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    toc["parts"].append({"caption": "Instructor edition", "chapters": [{"file": f} for f in INSTRUCTOR_PAGES]})
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = f"{config['title']} (instructor edition)"
    toc_path, config_path = ROOT / "_toc_instructor.yml", ROOT / "_config_instructor.yml"
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False))
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return toc_path, config_path


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    toc, config = write_toc_and_config()
    jb = str(pathlib.Path(sys.executable).parent / "jupyter-book")
    try:
        subprocess.run([jb, "build", str(ROOT), "--toc", str(toc), "--config", str(config), "--path-output",
                        str(OUT), "-W", "-n", "--keep-going"], check=True)
    finally:
        toc.unlink()
        config.unlink()
    (OUT / "_build" / "html").rename(OUT / "html")
    shutil.rmtree(OUT / "_build", ignore_errors=True)
    print(f"The instructor edition is in {(OUT / 'html').relative_to(ROOT)}.")


if __name__ == "__main__":
    main()
