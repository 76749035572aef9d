"""The PDFs of the book (tools/pdf.py), built from the built HTML book with headless
Chromium and read back as text and images: every page of the table of contents is there,
numbered per chapter, with its figures, and no raw TeX or MyST syntax is left. Needs a
built book (skips without one, unless PROBDL_REQUIRE_BROWSER=1) and Chromium (see
browser_support.py)."""

from __future__ import annotations

import collections
import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from browser_support import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("PROBDL_SITE", ROOT / "_build" / "html"))
sys.path.insert(0, str(ROOT / "tools"))
import pdf  # noqa: E402

RAW_TEX = re.compile(
    r"\$\$|\\(begin|end|frac|mathcal|mathbb|mathrm|sum|int|log|sqrt)\b"
)
RAW_MYST = re.compile(
    r"\{(glue:text|glue|numref|cite:p|cite:t|cite|doc|eq|exercise|solution)\}|:label:|```\{|:::"
)


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory, browser):
    if not (SITE / "index.html").is_file():
        skip_or_fail(
            f"no built book at {SITE}: build it first with `jupyter-book build .`"
        )
    if shutil.which("pdftotext") is None or shutil.which("pdfimages") is None:
        skip_or_fail(
            "poppler's pdftotext and pdfimages are missing: `apt-get install "
            "poppler-utils`"
        )
    return pdf.build(SITE, tmp_path_factory.mktemp("pdf"), browser=browser)


def read(path: Path) -> str:
    """The PDF's text, by poppler's pdftotext."""
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def images(path: Path) -> int:
    """The images the PDF holds, by poppler's pdfimages (two header lines, then one line
    each)."""
    out = subprocess.run(
        ["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True
    )
    return len(out.stdout.splitlines()) - 2


def title(stem: str) -> str:
    if stem == "intro":
        text = (ROOT / "book" / "intro.md").read_text()
    elif stem == "99_bibliography":
        text = (ROOT / "book" / "99_bibliography.md").read_text()
    else:
        cells = json.loads((ROOT / "book" / f"{stem}.ipynb").read_text())["cells"]
        text = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    return re.search(r"^# (.+)$", text, re.M).group(1).strip()


def page_html(stem: str) -> str:
    path = SITE / ("book" if stem != "intro" else "book") / f"{stem}.html"
    html = path.read_text(encoding="utf-8")
    return html[html.find("<main") :]


def figures(stem: str) -> int:
    """The page's figures and plots (images under _images/, not the launch buttons'
    logos)."""
    return len(re.findall(r"<img\b[^>]*src=\"[^\"]*_images/", page_html(stem)))


def code_tex(stem: str) -> dict[str, int]:
    """TeX the page's code cells hold as text (plot labels, docstrings): allowed in the
    PDF."""
    code = " ".join(re.findall(r"<pre[^>]*>(.*?)</pre>", page_html(stem), flags=re.S))
    code = html_lib.unescape(re.sub(r"<[^>]+>", "", code))
    return collections.Counter(m.group(0) for m in RAW_TEX.finditer(code))


def test_whole_book_has_every_page_in_order_with_bookmarks(pdfs):
    stems = [Path(d).name for d in pdf.toc_pages()]
    assert set(pdfs) == set(stems) | {"book"}
    from pypdf import PdfReader

    reader = PdfReader(str(pdfs["book"]))
    assert [o.title for o in reader.outline] == [title(s) for s in stems]
    text = read(pdfs["book"])
    flat = re.sub(r"\s+", " ", text)
    positions = [flat.find(title(s)) for s in stems]
    assert all(p >= 0 for p in positions), dict(zip(stems, positions))
    assert len(reader.pages) >= 3 * len(stems)


@pytest.mark.parametrize("stem", [Path(d).name for d in pdf.toc_pages()])
def test_page_pdf_is_typeset_numbered_and_has_its_figures(pdfs, stem):
    text = read(pdfs[stem])
    found = collections.Counter(m.group(0) for m in RAW_TEX.finditer(text))
    extra = {k: n for k, n in (found - code_tex(stem)).items()}
    assert not extra, (
        f"{stem}: TeX left untypeset in the PDF (beyond what its code shows): {extra}"
    )
    raw = sorted(set(m.group(0) for m in RAW_MYST.finditer(text)))
    assert not raw, f"{stem}: raw MyST in the PDF: {raw}"
    n = images(pdfs[stem])
    assert n >= figures(stem), (
        f"{stem}: {n} images in the PDF, {figures(stem)} in the page"
    )
    number = re.match(r"(\d\d)_", stem)
    if (
        number
        and 1 <= int(number.group(1)) <= 11
        and "{exercise}"
        in json.dumps(json.loads((ROOT / "book" / f"{stem}.ipynb").read_text()))
    ):
        assert f"Exercise {int(number.group(1))}.1" in text, (
            f"{stem}: exercises not numbered per chapter"
        )
    if stem == "99_bibliography":
        assert "Blundell" in text and "Kingma" in text
