"""report: glue (numbers into prose) and table (the one table helper)."""

import pytest
import torch

from probdl import report


def test_table_markdown_and_text():
    rows = [
        {"method": "HMC", "rmse": 0.123456, "n": 3},
        {"method": "a|b", "rmse": 12.0, "n": 40},
    ]
    t = report.table(
        rows, {"method": "method", "rmse": "RMSE", "n": "runs"}, {"rmse": ".3f"}
    )
    assert t.markdown().splitlines() == [
        "| method | RMSE | runs |",
        "|---|---|---|",
        "| HMC | 0.123 | 3 |",
        r"| a\|b | 12.000 | 40 |",  # a | inside a cell is escaped, not a new column
    ]
    assert t._repr_markdown_() == t.markdown()  # what a notebook shows
    assert str(t).splitlines() == [
        "method  RMSE    runs",
        "------  ------  ----",
        "HMC     0.123   3",
        "a|b     12.000  40",
    ]
    # one spec for every number; the default is four significant digits; functions
    # format too
    assert report.table(rows, ["rmse"], ".1f").cells == [["0.1"], ["12.0"]]
    assert report.table(rows, ["rmse"]).cells == [["0.1235"], ["12"]]
    assert report.table(rows, ["n"], {"n": lambda v: f"{v} x"}).cells == [
        ["3 x"],
        ["40 x"],
    ]


def test_table_errors_say_what_is_wrong():
    with pytest.raises(KeyError, match="row 1 has no"):
        report.table([{"a": 1}, {"b": 2}], ["a"])
    with pytest.raises(ValueError, match="not in the table"):
        report.table([{"a": 1}], ["a"], {"b": ".2f"})
    with pytest.raises(ValueError, match="at least one column"):
        report.table([{"a": 1}], [])


def test_glue_formats_and_rejects(capsys, monkeypatch):
    monkeypatch.delenv("PROBDL_BOOK_BUILD", raising=False)
    assert report.glue("x-one", torch.tensor(0.12345), ".2f") == "0.12"
    assert (
        "x-one = 0.12" in capsys.readouterr().out
    )  # a learner sees the number in the cell
    assert report.glue("x-two", 1234567, ",d") == "1,234,567"
    assert report.glue("x-three", "as text") == "as text"
    with pytest.raises(ValueError, match="without spaces"):
        report.glue("two words", 1)
    with pytest.raises(TypeError, match="needs a number"):
        report.glue("x-four", "text", ".2f")
    with pytest.raises(ValueError, match="scalar"):
        report.glue("x-five", torch.ones(2))


def test_a_cell_ending_in_glue_does_not_echo_its_text():
    """The cell prints ``name = value``; IPython must not show the returned text a
    second time (as 'above' or '0.66' under the cell), while the text stays an ordinary
    string."""
    from IPython.core.formatters import DisplayFormatter

    text = report.glue("test-echo", 0.25, ".2f")
    assert DisplayFormatter().format(text) == ({}, {})
    assert DisplayFormatter().format(str(text))[0]["text/plain"] == "'0.25'"
    assert text + "!" == "0.25!" and type(text + "!") is str


def test_glue_prints_the_number_outside_the_book_build(capsys, monkeypatch):
    """A learner running a chapter in JupyterLab or Colab sees every glued number in the
    output of the cell that computes it; the book build shows it in the prose only."""
    monkeypatch.delenv("PROBDL_BOOK_BUILD", raising=False)
    report.glue("test-g", 2.5, ".1f")
    assert "test-g = 2.5" in capsys.readouterr().out
    monkeypatch.setenv("PROBDL_BOOK_BUILD", "1")
    report.glue("test-h", 2.5, ".1f")
    assert "test-h" not in capsys.readouterr().out
