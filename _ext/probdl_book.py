"""A small Sphinx extension of the workbook (loaded through ``_config.yml``'s
``sphinx.local_extensions``).

1. The execution cache is keyed by the run profile and by a hash of the helper package's
   source. jupyter-cache keys a notebook by its code cells only, so without this a
   ``smoke`` build followed by a ``book`` build would serve the smoke numbers, and a fix
   in ``src/probdl`` would leave old outputs in place. Each (profile, package) pair gets
   its own cache folder under ``_build/.jupyter_cache/``; an unchanged rebuild reuses
   it.
2. ``PROBDL_BOOK_BUILD=1`` for the executing kernels (:func:`probdl.report.glue` prints
   numbers only outside the book build).
3. No Thebe scripts (see :func:`_drop_thebe`).
4. The download button gives the executed notebook: after the build, the notebooks that
   myst-nb executed (``_build/jupyter_execute/``) replace the output-free sources under
   ``_sources/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_hash(src: Path = ROOT / "src" / "probdl") -> str:
    """A short sha256 over the paths and bytes of every ``.py`` file of the package."""
    h = hashlib.sha256()
    for path in sorted(src.rglob("*.py")):
        h.update(path.relative_to(src).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def active_profile() -> str:
    """The profile the notebooks will run in (``probdl.config.profile``'s rules)."""
    sys.path.insert(0, str(ROOT / "src"))
    try:
        from probdl import config
    finally:
        sys.path.pop(0)
    return config.profile()


def cache_key(profile: str | None = None, src: Path = ROOT / "src" / "probdl") -> str:
    return f"{profile or active_profile()}-{package_hash(src)}"


def _set_cache_path(app, config) -> None:
    if os.environ.get("PROBDL_CACHE_KEY") == "off":
        return
    path = Path(app.outdir).parent / ".jupyter_cache" / cache_key()
    config.nb_execution_cache_path = str(path)


def _executed_notebooks_for_download(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    executed = Path(app.outdir).parent / "jupyter_execute"
    sources = Path(app.outdir) / "_sources"
    for nb in executed.rglob("*.ipynb"):
        target = sources / nb.relative_to(executed)
        if target.exists():
            shutil.copyfile(nb, target)


def _drop_thebe(app, pagename, templatename, context, doctree) -> None:
    """The book has no live-code (Thebe) button, but sphinx-thebe, which Jupyter Book
    always loads, adds its inline configuration twice (a console error) and names a CDN:
    leave its scripts out."""
    scripts = context.get("script_files")
    if scripts:
        keep = [
            s
            for s in scripts
            if "thebe" not in str(s) + str(getattr(s, "attributes", {}))
        ]
        context["script_files"] = keep


def setup(app):
    # The kernels that execute the chapters inherit this: probdl.report.glue then shows
    # a number only in the prose, not also as printed output (a learner's own run prints
    # it).
    os.environ["PROBDL_BOOK_BUILD"] = "1"
    app.connect("config-inited", _set_cache_path)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("build-finished", _executed_notebooks_for_download)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if (
    __name__ == "__main__"
):  # the cache key, for CI's cache step: python _ext/probdl_book.py
    print(cache_key())
