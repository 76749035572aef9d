"""The exercise edition's round trip (tools/exercise_edition.py): the generated edition
stubs every solution region with a message naming its exercise; each graded exercise's
checks fail on its stub with that message and on every registered wrong answer, and pass
on the solution; the rendered edition shows the exercises without their solutions."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "exercise_edition", ROOT / "tools" / "exercise_edition.py"
)
ee = importlib.util.module_from_spec(_spec)
sys.modules["exercise_edition"] = ee
_spec.loader.exec_module(ee)


def run_checks(label: str, package: Path) -> subprocess.CompletedProcess:
    """The checks of exercise ``label`` (pytest, in a fresh process) against the package
    in ``package``."""
    env = {**os.environ, "PYTHONPATH": str(package)}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        *ee.GRADED[label].tests,
    ]
    return subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("edition") / "exercises"
    return out, ee.build(out)


def test_every_region_is_stubbed_with_its_exercise(edition):
    out, regions = edition
    assert set(ee.GRADED) <= {label for labels in regions.values() for label in labels}
    for where, labels in regions.items():
        text = (out / where).read_text(encoding="utf-8")
        assert ee.BEGIN not in text and ee.END not in text, where
        for label in labels:
            stubs = [f"NotImplementedError({q}Exercise {label}: " for q in "'\""]
            assert any(stub in text for stub in stubs), (where, label)
        if where.endswith(".py"):
            compile(text, where, "exec")  # the stubbed module still imports
        # no solution line survives: every region's code is gone
        solution = (ROOT / where).read_text(encoding="utf-8")
        for block in re.findall(rf"{ee.BEGIN}\n(.*?)\n\s*{ee.END}", solution, re.S):
            assert block not in text, (where, block[:80])
    # the edition carries what a student needs to run and grade it
    for name in (
        "book/01_elbo.ipynb",
        "tests/test_vi.py",
        "tools/exercise_edition.py",
        "_config.yml",
    ):
        assert (out / name).is_file(), name
    assert "hide_solutions: true" in (out / "_config.yml").read_text()
    assert (out / "data").resolve() == (ROOT / "data").resolve()


def test_every_exercise_is_graded_or_worked():
    """Each of the book's exercises is graded by unit tests, or is a derivation whose
    worked solution is in the book, or is code written in its chapter and checked by the
    cells after it."""
    kinds = ee.classify()
    assert set(kinds) == set(ee.exercises())
    assert {label for label, kind in kinds.items() if kind == "unit tests"} == set(
        ee.GRADED
    )
    assert set(kinds.values()) <= {
        "unit tests",
        "pen and paper",
        "chapter code",
        "no worked solution",
    }
    unsolved = {label for label, kind in kinds.items() if kind == "no worked solution"}
    assert not unsolved, f"exercises without a worked solution: {sorted(unsolved)}"
    with pytest.raises(ValueError, match="no '# exercise"):
        ee.stub_regions(
            "x = 1\n    ### BEGIN SOLUTION\n    y = 2\n    ### END SOLUTION\n", "here"
        )
    with pytest.raises(ValueError, match="without ### END"):
        ee.stub_regions("# exercise a-b: task\n### BEGIN SOLUTION\ny = 2\n", "here")


def test_checks_pass_on_the_solution():
    for label in ee.GRADED:
        run = run_checks(label, ROOT / "src")
        assert run.returncode == 0, (label, run.stdout[-2000:])


@pytest.mark.parametrize("label", sorted(ee.GRADED))
def test_checks_fail_on_the_stub_with_the_exercises_message(label, tmp_path):
    ee.stub_package(ROOT / "src" / "probdl", tmp_path / "probdl", only=label)
    run = run_checks(label, tmp_path)
    assert run.returncode != 0, f"{label}: the checks pass on the stub"
    assert f"NotImplementedError: Exercise {label}: " in run.stdout, run.stdout[-2000:]


@pytest.mark.parametrize(
    "label, index",
    [(label, i) for label, g in sorted(ee.GRADED.items()) for i in range(len(g.wrong))],
)
def test_checks_reject_a_wrong_answer(label, index, tmp_path):
    where, right, wrong = ee.GRADED[label].wrong[index]
    shutil.copytree(
        ROOT / "src" / "probdl",
        tmp_path / "probdl",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    path = tmp_path / "probdl" / Path(where).name
    text = path.read_text(encoding="utf-8")
    assert text.count(right) == 1, (
        f"{where}: the wrong answer's anchor {right!r} is not there once"
    )
    path.write_text(text.replace(right, wrong), encoding="utf-8")
    run = run_checks(label, tmp_path)
    assert run.returncode != 0, f"{label}: the checks accept the wrong answer {wrong!r}"


def test_every_chapter_code_exercise_has_wrong_answers():
    kinds = ee.classify()
    written = {label for label, kind in kinds.items() if kind == "chapter code"}
    assert set(ee.CHAPTER_WRONG) == written
    assert all(ee.CHAPTER_WRONG[label] for label in written)


@pytest.mark.parametrize(
    "label, index",
    [(lb, i) for lb, w in sorted(ee.CHAPTER_WRONG.items()) for i in range(len(w))],
)
def test_chapter_checks_reject_a_wrong_answer(label, index, tmp_path):
    """The chapter with one wrong answer in the exercise's solution region (smoke
    profile) stops with an AssertionError at or after the cell that holds it, within the
    exercise's solution."""
    pytest.importorskip("nbclient")
    stem, right, wrong = ee.CHAPTER_WRONG[label][index]
    source = ROOT / "book" / f"{stem}.ipynb"
    nb = json.loads(source.read_text(encoding="utf-8"))
    texts = ["".join(c["source"]) for c in nb["cells"]]
    hits = [i for i, t in enumerate(texts) if right in t]
    assert len(hits) == 1 and texts[hits[0]].count(right) == 1, (label, right, hits)
    cell = hits[0]
    regions = re.findall(
        rf"# exercise {label}: .*?{ee.BEGIN}(.*?){ee.END}", texts[cell], re.S
    )
    assert any(right in r for r in regions), f"{right!r} is not in a region of {label}"
    solution = ee.solution_cells(source, label)
    assert cell in solution
    text = texts[cell].replace(right, wrong)
    lines = text.split("\n")
    nb["cells"][cell]["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
    mutated = tmp_path / f"{stem}.ipynb"
    mutated.write_text(json.dumps(nb), encoding="utf-8")
    failed = ee.run_chapter(mutated, until=solution[-1], cwd=ROOT / "book")
    assert failed is not None, (
        f"{label}: the chapter accepts the wrong answer {wrong!r}"
    )
    where, name, message = failed
    assert name == "AssertionError" and cell <= where <= solution[-1], failed


def test_grade_runs_a_chapter_exercise(edition, capsys):
    """`grade` on an exercise written in its chapter: the student edition stops at its
    stub with the exercise's message, the solution edition passes."""
    out, _ = edition
    assert ee.grade("bbbr-ex-a", out / "src") == 1
    assert "NotImplementedError: Exercise bbbr-ex-a: " in capsys.readouterr().out
    assert ee.grade("bbbr-ex-a", ROOT / "src") == 0
    assert "bbbr-ex-a: the chapter's checks pass" in capsys.readouterr().out


def test_rendered_edition_shows_exercises_without_solutions(edition):
    out, _ = edition
    index = ee.render(out, ["01_elbo"])
    page = (index.parent / "book" / "01_elbo.html").read_text(encoding="utf-8")
    assert page.count('class="exercise') >= 4  # the chapter's exercises are there
    assert "solution-content" not in page and "Solution to" not in page
    # the package code the chapter shows is the stub, not the solution
    assert "Exercise elbo-ex-kl: the KL divergence" in page
    assert "var_ratio" not in page
    # the figures and numbers are there: the cells ran with the solution package
    assert page.count("<img") >= 3
    nb = json.loads(
        (out / "site" / "book" / "01_elbo.ipynb").read_text(encoding="utf-8")
    )
    assert not any("{solution-start}" in "".join(c["source"]) for c in nb["cells"])


@pytest.mark.parametrize("stem", ["04_bbb_regression", "06_vae"])
def test_student_chapter_stops_at_its_first_exercise_with_its_name(edition, stem):
    """Run the student edition's chapter (smoke profile, its stubbed package): it stops
    at the first solution region with the exercise's message; the solution chapter runs
    through (nbval, in the main suite)."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    out, regions = edition
    first = regions[f"book/{stem}.ipynb"][0]
    nb = nbformat.read(out / "book" / f"{stem}.ipynb", as_version=4)
    env = {"PROBDL_PROFILE": "smoke", "PYTHONPATH": str(out / "src")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        where = {"metadata": {"path": str(out / "book")}}
        client = nbclient.NotebookClient(nb, timeout=600, resources=where)
        with pytest.raises(nbclient.exceptions.CellExecutionError) as err:
            client.execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert err.value.ename == "NotImplementedError", str(err.value)[-1500:]
    assert err.value.evalue.startswith(f"Exercise {first}: "), err.value.evalue
