"""benchmarks/harness.py: the helpers every benchmark uses to pick its best round and to
compare with the peer of the same run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import harness  # noqa: E402


def test_best_round_is_the_fastest():
    rounds = [{"per_s": 3.0, "i": 0}, {"per_s": 5.0, "i": 1}, {"per_s": 4.0, "i": 2}]
    assert harness.best_round(rounds, "per_s")["i"] == 1


def test_add_ratio_divides_by_the_base_row_and_skips_rows_without_the_key():
    rows = [{"m": "a", "t": 2.0, "v": 8.0}, {"m": "b", "t": 6.0}, {"m": "c", "t": 1.0}]
    harness.add_ratio(rows, "t", rows[0], "ratio")
    harness.add_ratio(rows, "v", rows[0])
    assert [r["ratio"] for r in rows] == [1.0, 3.0, 0.5]
    assert rows[0]["v_ratio"] == 1.0 and "v_ratio" not in rows[1]


def test_print_table_leaves_missing_columns_blank(capsys):
    harness.print_table([{"m": "a", "x": 1.5}, {"m": "b"}], ["m", "x"])
    out = capsys.readouterr().out
    assert "1.5" in out and out.count("\n") >= 3
