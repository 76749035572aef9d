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
5. Package code shown with ``literalinclude`` and ``:pyobject:`` fits the rendered
   column: the object is dedented and formatted by ruff at :data:`PAGE_WIDTH`
   columns (:func:`format_for_page`). The package itself is formatted at 110 columns
   (so that its modules stay under about 400 lines); the docstrings and comments of
   the objects the book shows are written within 88 (``tests/test_book_layout.py``
   checks both).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE_WIDTH = 88  # characters of code the rendered column shows at 1280 px


def format_for_page(code: str, width: int = PAGE_WIDTH) -> str:
    """``code`` (one Python object, as literalinclude's ``:pyobject:`` reads it),
    dedented and formatted by ``ruff format`` at ``width`` columns. A failure (ruff
    missing, code that does not parse) is an error that says which."""
    text = textwrap.dedent(code)
    cmd = [sys.executable, "-m", "ruff", "format", "--isolated"]
    cmd += ["--line-length", str(width), "--stdin-filename", "shown.py", "-"]
    try:
        run = subprocess.run(
            cmd, input=text, capture_output=True, text=True, check=False
        )
    except OSError as err:  # pragma: no cover - no Python to run
        raise RuntimeError(f"cannot run ruff to format shown code: {err}") from err
    if run.returncode != 0:
        raise RuntimeError(
            "ruff could not format the code a page shows (is ruff installed? "
            f"pip install -r requirements.txt):\n{run.stderr.strip()}\n---\n{text}"
        )
    return run.stdout


def _page_width_literalinclude():
    """literalinclude, with Python objects (``:pyobject:``) formatted for the page."""
    from docutils import nodes
    from sphinx.directives.code import LiteralInclude

    class PageWidthLiteralInclude(LiteralInclude):
        def run(self):
            result = super().run()
            if "pyobject" not in self.options:
                return result
            for node in result:
                blocks = [node] if isinstance(node, nodes.literal_block) else []
                blocks += list(node.findall(nodes.literal_block))
                for block in dict.fromkeys(blocks):
                    text = format_for_page(block.astext())
                    block.rawsource = text
                    block.children = [nodes.Text(text)]
            return result

    return PageWidthLiteralInclude


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
    app.add_directive("literalinclude", _page_width_literalinclude(), override=True)
    app.connect("config-inited", _set_cache_path)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("build-finished", _executed_notebooks_for_download)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if (
    __name__ == "__main__"
):  # the cache key, for CI's cache step: python _ext/probdl_book.py
    print(cache_key())
