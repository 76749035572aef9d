"""The built book as a reader sees it: pages opened in headless Chromium with every host
but this machine unreachable, checked on the rendered DOM (formulas typeset by the
book's own MathJax, figures loaded, exercise and solution blocks present, no console
errors, nothing fetched from the network), plus static checks of the HTML and of the
download button's notebooks.

They need a built book (``jupyter-book build .``; ``PROBDL_SITE`` points elsewhere) and,
for the browser, Debian's ``chromium`` (``apt-get install chromium``) and the
``playwright`` package; where either is missing they skip with a message that says so,
unless ``PROBDL_REQUIRE_BROWSER=1`` (set by ``.ci/run`` after it has built the book),
which turns a skip into a failure. Screenshots go to ``PROBDL_SCREENSHOTS`` (default
``_build/screenshots``).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser_support import exercise_count, skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("PROBDL_SITE", ROOT / "_build" / "html"))
SCREENSHOTS = Path(
    os.environ.get("PROBDL_SCREENSHOTS", ROOT / "_build" / "screenshots")
)
SCREENSHOT_PAGES = ("01_elbo", "04_bbb_regression")


def chapter_pages() -> list[str]:
    return sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        skip_or_fail(
            f"no built book at {SITE}: build it first with `jupyter-book build .`"
        )
    return SITE


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def open_page(browser, url: str):
    """Open ``url``; wait until MathJax has typeset; return (page, console errors,
    remote requests)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, remote = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "request",
        lambda r: (
            remote.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", None)
            else None
        ),
    )
    page.goto(url, wait_until="load")
    if page.locator(
        'script[src*="mathjax"]'
    ).count():  # Sphinx loads MathJax only on pages with math
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
            timeout=30_000,
        )
        page.evaluate("() => MathJax.startup.promise")
    return page, errors, remote


RENDERED = """() => {
  const main = document.querySelector('main') || document.body;
  const display = [...main.querySelectorAll('div.math')];
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, .highlight, mjx-container')
    .forEach(e => e.remove());
  const text = clone.innerText;
  const imgs = [...main.querySelectorAll('img')];
  return {
    display: display.length,
    typeset: display.filter(d => d.querySelector('mjx-container')).length,
    raw: (text.match(/\\$\\$|\\\\begin\\{/g) || []).length,
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0))
      .map(i => i.getAttribute('src')),
    exercises: main.querySelectorAll('.exercise').length,
    solutions: main.querySelectorAll('.solution').length,
  };
}"""


# Code blocks (cells and package code) and printed outputs that scroll sideways at the
# page's width, with every dropdown open: the longest line of each
# (_assets/book/code.css fits 88 characters; it wraps longer output, as JupyterLab).
CODE_SCROLLS = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const sel = ['ipython', 'python', 'default'].map(
    k => `div[class*="highlight-${k}"] > div.highlight > pre`)
    .concat(['div.cell_output div.output > div.highlight > pre']).join(', ');
  return [...document.querySelectorAll(sel)]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => e.innerText.split('\\n')
      .reduce((a, l) => l.length > a.length ? l : a, ''));
}"""


# Display formulas wider than the column (they would scroll sideways), by label, with
# every dropdown open: a long formula is broken into aligned or gathered lines.
MATH_SCROLLS = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  return [...document.querySelectorAll('mjx-container[display="true"]')]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => {
      const m = e.closest('div.math');
      return (m && m.id) || e.textContent.slice(0, 40);
    });
}"""


@pytest.mark.parametrize("stem", chapter_pages())
def test_chapter_renders_offline_in_a_browser(browser, server, stem):
    page, errors, remote = open_page(browser, f"{server}/book/{stem}.html")
    try:
        r = page.evaluate(RENDERED)
        scrolls = page.evaluate(CODE_SCROLLS)
        wide_math = page.evaluate(MATH_SCROLLS)
        if stem in SCREENSHOT_PAGES:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            first = page.locator("div.math").first
            if first.count():
                first.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / f"{stem}.png"))
    finally:
        page.close()
    assert r["typeset"] == r["display"], (
        f"{stem}: {r['display'] - r['typeset']} display formulas not typeset"
    )
    assert r["raw"] == 0, f"{stem}: {r['raw']} raw $$ or \\begin left in the text"
    assert not r["broken"], f"{stem}: images that did not load: {r['broken']}"
    n_ex = exercise_count(stem)
    assert r["exercises"] == n_ex, (
        f"{stem}: {r['exercises']} exercise blocks rendered, the notebook has {n_ex}"
    )
    if n_ex:
        assert r["solutions"] > 0, f"{stem}: exercises but no solution blocks"
    assert not errors, f"{stem}: console errors {errors}"
    assert not remote, f"{stem}: requests to the network {remote}"
    assert not scrolls, (
        f"{stem}: code or output wider than the column at 1280: {scrolls}"
    )
    assert not wide_math, f"{stem}: formulas wider than the column at 1280: {wide_math}"


def test_math_is_typeset_on_the_intro_and_the_chapters_have_math(browser, server):
    page, errors, remote = open_page(browser, f"{server}/book/01_elbo.html")
    try:
        r = page.evaluate(RENDERED)
    finally:
        page.close()
    assert r["display"] >= 5 and r["typeset"] == r["display"]
    assert not errors and not remote


def test_no_page_loads_a_script_or_stylesheet_from_the_network(site):
    remote = re.compile(r"<(?:script[^>]+src|link[^>]+href)=\"(?:https?:)?//", re.I)
    offenders = [
        p.name
        for p in site.rglob("*.html")
        if remote.search(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, (
        f"pages that load a script or stylesheet from the network: {offenders}"
    )
    assert (site / "_static" / "mathjax" / "tex-svg-full.js").is_file()


def test_download_button_gives_the_executed_notebook(site):
    sources = site / "_sources" / "book"
    notebooks = sorted(sources.glob("*.ipynb"))
    assert notebooks, f"no notebooks under {sources}"
    for nb in notebooks:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        assert any(c.get("outputs") for c in cells if c["cell_type"] == "code"), (
            f"{nb.name} has no outputs"
        )
