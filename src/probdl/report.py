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
