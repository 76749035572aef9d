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
