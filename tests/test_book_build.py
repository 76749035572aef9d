"""The book build's own extension (_ext/probdl_book.py): the execution cache is keyed by
the run profile and by the helper package's source, so a smoke build never serves a book
build and a change in src/probdl re-executes the chapters, while an unchanged rebuild
reuses the cache."""

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "probdl_book", ROOT / "_ext" / "probdl_book.py"
)
probdl_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probdl_book)


@pytest.fixture
def package(tmp_path):
    src = tmp_path / "probdl"
    shutil.copytree(
        ROOT / "src" / "probdl", src, ignore=shutil.ignore_patterns("__pycache__")
    )
    return src


def test_cache_key_is_stable_for_an_unchanged_package(package):
    assert probdl_book.cache_key("book", package) == probdl_book.cache_key(
        "book", package
    )
    assert probdl_book.cache_key("book", package) == probdl_book.cache_key(
        "book", ROOT / "src" / "probdl"
    )


def test_cache_key_differs_by_profile(package):
    keys = {probdl_book.cache_key(p, package) for p in ("smoke", "book", "paper")}
    assert len(keys) == 3


def test_cache_key_changes_with_the_package_source(package):
    before = probdl_book.cache_key("book", package)
    with open(package / "vi.py", "a") as fh:
        fh.write("\n# a fix\n")
    assert probdl_book.cache_key("book", package) != before
    (package / "new_module.py").write_text("x = 1\n")
    assert probdl_book.cache_key("book", package) != before


def test_cache_key_follows_the_profile_variable(monkeypatch):
    monkeypatch.setenv("PROBDL_PROFILE", "smoke")
    smoke = probdl_book.cache_key()
    monkeypatch.setenv("PROBDL_PROFILE", "book")
    assert probdl_book.cache_key() != smoke and smoke.startswith("smoke-")


def test_config_loads_the_extension_and_serves_mathjax_itself():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = cfg["sphinx"]
    assert sphinx["local_extensions"] == {"probdl_book": "_ext"}
    assert not sphinx["config"]["mathjax_path"].startswith(("http", "//"))
    assert (ROOT / "_assets" / sphinx["config"]["mathjax_path"]).is_file()
    assert not (ROOT / "_static").exists(), (
        "a root _static/ makes Jupyter Book load every .js in it twice"
    )
    assert "binderhub_url" not in cfg.get("launch_buttons", {})


def test_the_book_build_tells_glue_not_to_print(monkeypatch):
    """The executing kernels inherit PROBDL_BOOK_BUILD: glued numbers stand in the prose
    only."""
    monkeypatch.setenv(
        "PROBDL_BOOK_BUILD", ""
    )  # undone after the test, whatever setup sets
    monkeypatch.delenv("PROBDL_BOOK_BUILD")

    class App:
        directives = {}

        def connect(self, *args, **kwargs):
            pass

        def add_directive(self, name, cls, override=False):
            self.directives[name] = (cls, override)

    app = App()
    probdl_book.setup(app)
    assert os.environ.get("PROBDL_BOOK_BUILD") == "1"
    # and the package code a page shows is formatted for the column
    cls, override = app.directives["literalinclude"]
    assert override and cls.__name__ == "PageWidthLiteralInclude"
