"""PDFs of the built book: one per page of the table of contents and one of the whole
book.

    # _build/html -> _build/pdf/<page>.pdf and book.pdf
    python tools/pdf.py
    python tools/pdf.py --paper letter       # US letter instead of A4
    python tools/pdf.py --site DIR --out DIR

It prints the pages of the built HTML book (build it first: ``jupyter-book build .``)
with the headless Chromium that the browser tests use, offline: the pages are served
from this machine and every other host is unreachable. What the reader sees in the HTML
is what the PDF shows: formulas typeset by the book's own MathJax, figures, numbered
figures, equations and exercises, glued numbers, cross-references and the bibliography,
with every solution opened. The whole-book PDF joins the pages in the order of
``_toc.yml``, with a bookmark per chapter and page numbers.

Why print the HTML rather than use Jupyter Book's LaTeX builder: the LaTeX route drops
what myst-nb and sphinx-exercise add to the page (glued numbers, exercise and solution
blocks render poorly or not at all), needs every figure format redone for LaTeX, and
needs a TeX Live of several hundred megabytes on every machine that builds it; printing
reuses the pages that the browser tests already check.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser_support import CHROMIUM_ARGS  # noqa: E402

PAPER = {"a4": "A4", "letter": "Letter"}
# the page's CSS width becomes about 860 px: the widest formulas and code lines fit
SCALE = 0.8
# Print what a reader of paper needs: no navigation, buttons or sidebars; the article
# full width.
PRINT_CSS = """
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-header-article,
.bd-footer, .bd-footer-article, .prev-next-area, .probdl-reveal-solutions,
.toggle-button, .headerlink, #pst-back-to-top, .header-article-items, .bd-search,
.skip-link { display: none !important; }
.bd-main, .bd-content, .bd-article-container, .bd-article, .bd-page-width {
  max-width: 100% !important; width: 100% !important; margin: 0 !important;
  padding: 0 !important; }
.toggle-hidden > :not(.admonition-title), .toggle-hidden .toggle-details__container {
  display: block !important; visibility: visible !important; }
pre { white-space: pre-wrap !important; word-break: break-word; }
figure, img, .cell_output img { break-inside: avoid; max-width: 100% !important; }
div.cell, div.cell_input, div.highlight, pre, .admonition, mjx-container {
  break-inside: avoid; }
mjx-container[display="true"] { overflow: visible !important; }
mjx-container[display="true"] > svg {
  max-width: 100% !important; height: auto !important; }
h1, h2, h3 { break-after: avoid; }
"""
OPEN_SOLUTIONS = """() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  document.querySelectorAll('.toggle-hidden')
    .forEach(e => e.classList.remove('toggle-hidden'));
}"""
FOOTER = (
    '<div style="font-size:8px; width:100%; text-align:center; color:#555;">'
    '<span class="title"></span> · <span class="pageNumber"></span></div>'
)


def toc_pages(root: Path = ROOT) -> list[str]:
    """The pages of ``_toc.yml`` in reading order (``root``, then each ``file:``
    entry)."""
    text = (root / "_toc.yml").read_text(encoding="utf-8")
    first = re.search(r"^root:\s*(\S+)", text, re.M)
    files = re.findall(r"^\s*-\s*file:\s*(\S+)", text, re.M)
    return ([first.group(1)] if first else []) + files


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(site: Path):
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def _print_page(browser, url: str, out: Path, paper: str) -> str:
    """Print one page to ``out``; return its title (the first heading)."""
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    try:
        page.goto(url, wait_until="load")
        if page.locator('script[src*="mathjax"]').count():
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
            )
            page.evaluate("() => MathJax.startup.promise")
        page.evaluate(OPEN_SOLUTIONS)
        page.add_style_tag(content=PRINT_CSS)
        page.emulate_media(media="print")
        title = page.locator("main h1").first.inner_text().replace("#", "").strip()
        page.pdf(
            path=str(out),
            format=PAPER[paper],
            print_background=True,
            scale=SCALE,
            margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"},
            display_header_footer=True,
            header_template="<div></div>",
            footer_template=FOOTER,
        )
        return title
    finally:
        page.close()


def build(site: Path, out: Path, paper: str = "a4", browser=None) -> dict[str, Path]:
    """Print every page of the table of contents and join them; returns {page stem: pdf
    path}, with ``"book"`` for the whole book. ``browser``: a playwright Chromium to use
    (else one is started)."""
    if not (site / "index.html").is_file():
        raise SystemExit(f"no built book at {site}: run `jupyter-book build .` first")
    if browser is None:
        from playwright.sync_api import sync_playwright

        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise SystemExit("Chromium is missing: `apt-get install chromium` (Debian)")
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=exe, args=CHROMIUM_ARGS, headless=True
            )
            try:
                return build(site, out, paper, browser)
            finally:
                browser.close()
    out.mkdir(parents=True, exist_ok=True)
    httpd, base = _serve(site)
    pdfs, titles = {}, {}
    try:
        for doc in toc_pages():
            html = site / f"{doc}.html"
            if not html.is_file():
                raise SystemExit(
                    f"{html} is missing: is the book built from this _toc.yml?"
                )
            stem = Path(doc).name
            pdfs[stem] = out / f"{stem}.pdf"
            titles[stem] = _print_page(browser, f"{base}/{doc}.html", pdfs[stem], paper)
            print(f"{pdfs[stem]}  {titles[stem]}")
    finally:
        httpd.shutdown()
    pdfs["book"] = _join(pdfs, titles, out / "book.pdf")
    return pdfs


def _join(pdfs: dict[str, Path], titles: dict[str, str], path: Path) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for stem, part in pdfs.items():
        start = len(writer.pages)
        writer.append(str(part))
        writer.add_outline_item(title=titles[stem], page_number=start)
    writer.add_metadata({"/Title": titles[next(iter(titles))]})
    with open(path, "wb") as fh:
        writer.write(fh)
    print(f"{path}  {len(writer.pages)} pages")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--site",
        type=Path,
        default=ROOT / "_build" / "html",
        help="the built HTML book",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "_build" / "pdf", help="where the PDFs go"
    )
    parser.add_argument("--paper", choices=sorted(PAPER), default="a4")
    args = parser.parse_args(argv)
    build(args.site, args.out, args.paper)
    return 0


if __name__ == "__main__":
    sys.exit(main())
