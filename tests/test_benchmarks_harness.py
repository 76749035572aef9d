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


def test_fastest_rounds_goes_round_robin_and_keeps_each_methods_best(monkeypatch):
    calls = []
    speed = {("a", 0): 3.0, ("b", 0): 1.0, ("a", 1): 2.0, ("b", 1): 4.0}

    def fake_measure(target, method, **kwargs):
        r = sum(m == method for m, _ in calls)
        calls.append((method, kwargs))
        return {"per_s": speed[method, r], "round": r}

    monkeypatch.setattr(harness, "measure", fake_measure)
    best = harness.fastest_rounds(None, ["a", "b"], 2, "per_s", device="cpu")
    assert [m for m, _ in calls] == ["a", "b", "a", "b"]
    assert all(kw == {"device": "cpu"} for _, kw in calls)
    assert best == {
        "a": {"per_s": 3.0, "round": 0, "rounds": 2},
        "b": {"per_s": 4.0, "round": 1, "rounds": 2},
    }


def test_objective_step_rates_agree_with_the_median_step():
    import torch

    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(80, 3), torch.randn(80, 1)

    def objective(m, xb, yb):
        return {"loss": ((m(xb) - yb) ** 2).mean()}

    t = harness.time_objective_steps(
        model, objective, x, y, 10, min_seconds=0.0, min_calls=3, warmup=0
    )
    s = t["seconds_median"]
    assert t["seconds_per_step"] == s and t["ms_per_step"] == 1e3 * s
    assert t["examples_per_s"] == 10 / s and t["calls"] >= 3
