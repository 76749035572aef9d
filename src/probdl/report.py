"""Numbers from cells into the book's prose.

``glue(name, value, fmt)`` stores a computed value under ``name`` for the rendered page, where
the text writes ``{glue:text}``name`` ``, so the prose can never disagree with what ran. It uses
myst-nb's ``glue`` when myst-nb is installed. Outside the book build (JupyterLab, Colab, nbval) it
also prints ``name = value``, so a learner running the chapter sees every number the text quotes
in the output of the cell that computes it; the book build (``_ext/probdl_book.py`` sets
``PROBDL_BOOK_BUILD``) shows it in the prose instead. Call it in the cell that asserts the number.
"""

from __future__ import annotations

import numbers
import os

import torch

try:  # the book build and a local install have myst-nb; Colab may not
    from myst_nb import glue as _myst_glue
except ImportError:  # pragma: no cover - exercised where myst-nb is absent
    _myst_glue = None


def _plain(value):
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ValueError(f"glue takes a scalar or a string; got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    return value


class GluedText(str):
    """The text :func:`glue` returns: a ``str`` that a notebook does not echo when a cell ends
    with the call (the page shows the number in the prose; the cell has printed it already)."""

    def _ipython_display_(self) -> None:
        pass


def glue(name: str, value, fmt: str | None = None) -> str:
    """Glue ``value`` (a number or a string) under ``name``, formatted with ``fmt`` (a format
    spec such as ``".2f"``, ``".1%"`` or ``",d"``) when given. Returns the text that the page
    shows."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"a glue name must be a non-empty string without spaces, got {name!r}")
    value = _plain(value)
    if fmt is not None:
        if not isinstance(value, numbers.Number):
            raise TypeError(f"fmt {fmt!r} needs a number, got {type(value).__name__} for {name!r}")
        text = format(value, fmt)
    else:
        text = value if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
    if _myst_glue is not None:
        _myst_glue(name, text, display=False)
    if _myst_glue is None or not os.environ.get("PROBDL_BOOK_BUILD"):
        print(f"{name} = {text}")
    return GluedText(text)


class Table:
    """A table that a notebook shows as Markdown (``_repr_markdown_``) and ``print`` shows as
    aligned plain text: what :func:`table` returns."""

    def __init__(self, header: list[str], cells: list[list[str]]):
        self.header, self.cells = header, cells

    def markdown(self) -> str:
        def line(values):
            return "| " + " | ".join(v.replace("|", r"\|") for v in values) + " |"

        return "\n".join([line(self.header), "|" + "---|" * len(self.header), *map(line, self.cells)])

    def text(self) -> str:
        widths = [max(len(h), *(len(row[i]) for row in self.cells)) for i, h in enumerate(self.header)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(self.header, widths)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in self.cells]
        return "\n".join(lines)

    _repr_markdown_ = markdown
    __str__ = text

    def __repr__(self) -> str:
        return self.text()


def _cell(value, fmt) -> str:
    if callable(fmt):
        return str(fmt(value))
    if value is None:
        return ""
    if fmt is not None and isinstance(value, numbers.Number):
        return format(value, fmt)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def table(rows, columns, fmt=None) -> Table:
    """The one table helper of the book, its benchmarks and its appendix. ``rows`` is a list of
    dicts; ``columns`` the keys to show, a list (the key is the heading) or a dict
    ``{key: heading}``; ``fmt`` a format spec for every number (``".3f"``), or a dict
    ``{key: spec or function of the value}`` (numbers default to 4 significant digits). A
    notebook shows the result as a Markdown table; ``print`` shows it as aligned text."""
    headings = dict(columns) if isinstance(columns, dict) else {c: str(c) for c in columns}
    if not headings:
        raise ValueError("table needs at least one column")
    specs = fmt if isinstance(fmt, dict) else {k: fmt for k in headings}
    unknown = set(specs) - set(headings)
    if unknown:
        raise ValueError(f"fmt names columns that are not in the table: {sorted(unknown)}")
    for i, row in enumerate(rows):
        missing = [k for k in headings if k not in row]
        if missing:
            raise KeyError(f"row {i} has no {missing}; it has {sorted(row)}")
    cells = [[_cell(row[k], specs.get(k)) for k in headings] for row in rows]
    return Table(list(headings.values()), cells)
