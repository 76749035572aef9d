"""Sizes and targets of chapter Working with this book (00).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_show=12,
    n_train=50000,
    epochs=3,
    max_test_error=0.1,
    n_regression=100,
    n_mc=1_000_000,  # draws of the regression data, to check E[y|x] by Monte Carlo
)

SMOKE = dict(
    n_mc=100_000,
    n_show=8,
    n_train=2000,
    epochs=1,
    max_test_error=0.3,
)

PAPER = dict()
