"""Every size a chapter reads exists in its sizes module, and every size the module
defines is read: a mistyped key fails here, by name, before any chapter runs."""

import difflib
import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEY = re.compile(
    r"""\bS(?:\[\s*["']([A-Za-z0-9_]+)["']\s*\]|\.get\(\s*["']([A-Za-z0-9_]+)["'])"""
)
DYNAMIC = re.compile(r"""\bS\[\s*f["']([A-Za-z0-9_]*)\{""")  # S[f"n_{split}"]: a prefix
CHAPTER = re.compile(r'config\.(?:sizes|describe)\(\s*"([a-z_]+)"')


def chapters():
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "code"
        )
        found = CHAPTER.findall(code)
        if found:
            yield pytest.param(nb.name, found[0], code, id=nb.stem)


@pytest.mark.parametrize("notebook, chapter, code", list(chapters()))
def test_a_chapter_reads_only_the_sizes_its_module_defines(notebook, chapter, code):
    book = importlib.import_module(f"probdl.sizes.{chapter}").BOOK
    read = {a or b for a, b in KEY.findall(code)}
    unknown = {
        key: difflib.get_close_matches(key, book, n=1)
        for key in sorted(read - set(book))
    }
    assert not unknown, (
        f"{notebook} reads sizes probdl/sizes/{chapter}.py lacks: {unknown}"
    )
    prefixes = DYNAMIC.findall(code)
    unused = [
        k for k in book if k not in read and not any(k.startswith(p) for p in prefixes)
    ]
    assert not unused, (
        f"probdl/sizes/{chapter}.py defines sizes {notebook} never reads: {unused}"
    )


def test_the_check_finds_a_typo():
    code = 'S = config.sizes("nade")\nx = S["hiden"]'
    read = {a or b for a, b in KEY.findall(code)}
    book = importlib.import_module("probdl.sizes.nade").BOOK
    assert read == {"hiden"} and "hiden" not in book
    assert difflib.get_close_matches("hiden", book, n=1) == ["hidden"]


KINDS = {"n", "tol", "rtol", "atol", "min", "max"}


def test_sizes_keys_follow_the_naming_rule():
    """A key reads [section_]kind_what: counts n_*, a check's tolerances tol_* (rtol_*
    when relative) and its bounds min_* and max_*, the kind before what it qualifies
    (tol_gap, never gap_tol or gap_max)."""
    import pkgutil

    import probdl.sizes

    wrong = {}
    for m in pkgutil.iter_modules(probdl.sizes.__path__):
        book = importlib.import_module(f"probdl.sizes.{m.name}").BOOK
        bad = [k for k in book if k.split("_")[-1] in KINDS]
        if bad:
            wrong[m.name] = bad
    assert not wrong, f"sizes keys with the kind last: {wrong}"
