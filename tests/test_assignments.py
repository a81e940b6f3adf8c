"""The course kit works: every master notebook in assignments/ builds with `otter assign`, its solutions
score full marks under `otter run`, its student notebook scores zero on every question, and the student
notebook holds neither solution code nor hidden tests. Grading runs in smoke mode (MINIDIFF_SMOKE=1)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("build_assignments", ROOT / ".ci" / "build_assignments.py")
kit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kit)

MASTERS = kit.masters()


def _cells(path: pathlib.Path) -> list[dict]:
    return [{"type": c["cell_type"], "source": "".join(c["source"])} for c in json.loads(path.read_text())["cells"]]


def _test_cells(cells: list[dict]) -> list[tuple[bool, str]]:
    """(hidden, test function name) of every test cell of a master notebook."""
    out, in_tests = [], False
    for c in cells:
        if c["type"] == "raw" and c["source"].strip() in ("# BEGIN TESTS", "# END TESTS"):
            in_tests = c["source"].strip() == "# BEGIN TESTS"
        elif in_tests and c["type"] == "code":
            hidden = re.search(r"^hidden:\s*true\s*$", c["source"], flags=re.M) is not None
            out.append((hidden, re.search(r"^def (\w+)\(", c["source"], flags=re.M).group(1)))
    return out


def _solution_lines(cells: list[dict]) -> set[str]:
    """Lines of solution code in a master (inside BEGIN/END SOLUTION, or marked # SOLUTION) that appear
    nowhere else in it (so a line the prompt also shows, such as `return x`, is not counted)."""
    solution, other = set(), set()
    for c in cells:
        if c["type"] != "code":
            continue
        inside = False
        for line in c["source"].split("\n"):
            s = line.strip()
            if s == "# BEGIN SOLUTION":
                inside = True
            elif s == "# END SOLUTION":
                inside = False
            elif inside:
                solution.add(s)
            elif s.endswith("# SOLUTION"):
                solution.add(s[: -len("# SOLUTION")].strip())
            else:
                other.add(s)
    return {s for s in solution - other if len(s) >= 12 and not s.startswith("#")}


@pytest.mark.parametrize("master", MASTERS, ids=[m.stem for m in MASTERS])
def test_master_states_goals_time_points_and_installs_in_colab(master: pathlib.Path) -> None:
    cells = _cells(master)
    intro = next(c["source"] for c in cells if c["type"] == "markdown")
    assert "**Learning goals.**" in intro and re.search(r"\*\*Expected time:\*\* about [1-3](\.5)? hours", intro)
    assert re.search(r"\*\*Points:\*\* \d+", intro)
    first_code = next(c["source"] for c in cells if c["type"] == "code")
    assert 'IN_COLAB = "google.colab" in sys.modules' in first_code and "otter-grader==7.0.0" in first_code
    assert "minidiff @ git+" in first_code
    raw = "\n".join(c["source"] for c in cells if c["type"] == "raw")
    points = [int(p) for p in re.findall(r"^points: (\d+)$", raw, flags=re.M)]
    assert f"**Points:** {sum(points)}" in intro, f"the intro must state the total of the questions' points {points}"
    tests = _test_cells(cells)
    assert any(h for h, _ in tests) and any(not h for h, _ in tests), "public and hidden tests"


@pytest.mark.slow
@pytest.mark.parametrize("master", MASTERS, ids=[m.stem for m in MASTERS])
def test_solution_full_marks_student_zero_and_nothing_leaks(master: pathlib.Path, tmp_path: pathlib.Path) -> None:
    dest = kit.build(master, tmp_path)  # otter assign also fails if a test fails on the solutions
    autograder_zip = dest / "autograder" / "autograder.zip"
    solution = kit.grade(autograder_zip, dest / "autograder" / master.name)
    assert solution and all(score == top for score, top in solution.values()), f"solution scores {solution}"
    student_nb = dest / "student" / master.name
    stub = kit.grade(autograder_zip, student_nb)
    assert stub.keys() == solution.keys() and all(score == 0 for score, _ in stub.values()), f"stub scores {stub}"

    master_cells = _cells(master)
    public_files = sorted((dest / "student" / "tests").glob("*.py"))  # handed out with the notebook
    assert public_files, "the student folder must hold the public tests (tests/*.py)"
    student_text = student_nb.read_text() + "".join(p.read_text() for p in public_files)
    tests = _test_cells(master_cells)
    for hidden, name in tests:
        assert (name in student_text) != hidden, f"{name}: hidden tests must be absent, public ones present"
    student_code = "\n".join(c["source"] for c in _cells(student_nb) if c["type"] == "code")
    leaked = sorted(line for line in _solution_lines(master_cells) if line in student_code)
    assert not leaked, f"solution code in the student notebook: {leaked}"
    assert len(_solution_lines(master_cells)) >= 5  # the check above has something to find


@pytest.mark.slow
def test_a_submission_calling_minidiffs_own_function_scores_zero_on_that_question(tmp_path: pathlib.Path) -> None:
    master = ROOT / "assignments" / "a1_forward_process.ipynb"
    dest = kit.build(master, tmp_path)
    nb = json.loads((dest / "autograder" / master.name).read_text())
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and src.startswith("def q_sample("):
            head = src.split('"""')[0] + '"""x_t (Eq. 4)."""\n'
            cell["source"] = head + "    return md.q_sample(x0, t, schedule, noise, generator)\n"
            break
    else:
        raise AssertionError("no q_sample cell in the autograder notebook")
    cheat = tmp_path / "cheat" / master.name
    cheat.parent.mkdir()
    cheat.write_text(json.dumps(nb))
    scores = kit.grade(dest / "autograder" / "autograder.zip", cheat)
    assert scores["q2"][0] == 0, f"calling md.q_sample must score zero on q2, got {scores['q2']}"
    assert all(s == top for q, (s, top) in scores.items() if q != "q2"), f"the other answers are right: {scores}"
