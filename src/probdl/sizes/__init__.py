"""Each chapter's sizes and pass/fail targets, one module per chapter (``probdl.sizes.nade`` ...).

Each module defines ``BOOK`` (every key, the sizes of the rendered book) and ``SMOKE`` and
``PAPER`` (only the keys that differ). Read them with :func:`probdl.config.sizes`.
"""
