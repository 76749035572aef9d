"""Chapter experiments: code that trains and compares several models for one chapter.

One module per chapter (named after the chapter's sizes module), functions with explicit
arguments (never a chapter's sizes dict), each with a smoke test in ``tests/``. The notebook
keeps what the reader should see: the loop over settings, the table, the figure and the
checks.
"""
