"""The chapters as a learner sees them in JupyterLab (with jupyterlab-myst, installed by
requirements.txt), opened in headless Chromium: exercises rendered as exercises, math
typeset with no undefined macro, and no MyST role or directive left as raw text. Glued
numbers appear as their names in the prose, and the cell that computes each prints
``name = value`` (probdl.report.glue). Needs Chromium and playwright (see
browser_support.py); screenshots go to PROBDL_SCREENSHOTS."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_support import exercise_count, skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(
    os.environ.get("PROBDL_SCREENSHOTS", ROOT / "_build" / "screenshots")
)
CHAPTERS = tuple(sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb")))
RAW = re.compile(
    r"\{(glue:text|glue|numref|cite:p|cite:t|cite|doc|eq|ref|exercise|solution)\}|:label:|:::|```\{"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving the repository on a free local port, every cell rendered (no
    windowing)."""
    try:
        import jupyterlab_myst  # noqa: F401
    except ImportError:
        skip_or_fail(
            "jupyterlab-myst is missing: `pip install -r requirements.txt`",
            under_ci=True,
        )
    settings = tmp_path_factory.mktemp("lab-settings")
    tracker = (
        settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    )
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--ServerApp.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={ROOT}",
        "--allow-root",
    ]
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


PROSE = """() => {
  const md = [...document.querySelectorAll(
    '.jp-MarkdownCell .jp-RenderedMarkdown, .jp-MarkdownCell .myst')];
  return {
    cells: document.querySelectorAll('.jp-MarkdownCell').length,
    text: md.map(e => e.innerText).join('\\n'),
    headers: [...document.querySelectorAll('.myst-exercise')]
      .map(e => e.innerText.trim().slice(0, 40)),
    math: document.querySelectorAll(
      '.jp-MarkdownCell .katex, .jp-MarkdownCell mjx-container').length,
    errors: document.querySelectorAll(
      '.katex-error, .jp-MarkdownCell .text-red-500').length,
  };
}"""


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_reads_well_in_jupyterlab(browser, lab, stem):
    """Every chapter, and the benchmarks appendix."""
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        # a workspace of its own, reset: only this notebook open
        page.goto(f"{lab}/lab/workspaces/{stem}/tree/book/{stem}.ipynb?reset")
        page.wait_for_selector(".jp-MarkdownCell", timeout=180_000)
        page.wait_for_timeout(4000)  # the MyST renderer typesets cell by cell
        r = page.evaluate(PROSE)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"jupyterlab_{stem}.png"))
    finally:
        page.close()
    nb = json.loads((ROOT / "book" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    n_md = sum(c["cell_type"] == "markdown" for c in nb["cells"])
    assert r["cells"] == n_md, f"{stem}: {r['cells']} of {n_md} markdown cells rendered"
    raw = sorted(set(m.group(0) for m in RAW.finditer(r["text"])))
    assert not raw, f"{stem}: raw MyST syntax in JupyterLab: {raw}"
    assert "Undefined control sequence" not in r["text"] and r["errors"] == 0, (
        f"{stem}: math errors"
    )
    md = "".join(
        "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"
    )
    if "$" in md:  # every chapter but the benchmarks appendix
        assert r["math"] > 10, f"{stem}: only {r['math']} formulas typeset"
    shown = [h for h in r["headers"] if h.startswith("Exercise")]
    assert len(shown) == exercise_count(stem), (
        f"{stem}: exercise blocks rendered: {r['headers']}"
    )
