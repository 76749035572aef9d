"""Sizes and targets of chapter Bayes by Backprop on 1-D regression (04).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_train=500,
    hidden=50,
    epochs=400,
    batch_size=100,
    lr=0.01,
    prior_sigma=1.0,
    init_sigma=0.01,
    init_noise=0.15,
    snapshots=4,
    snapshot_samples=100,
    n_pred_samples=1000,
)

SMOKE = dict(
    n_train=60,
    epochs=20,
    batch_size=30,
    snapshots=2,
    snapshot_samples=20,
    n_pred_samples=50,
)

PAPER = dict(
    n_train=1000,
    epochs=1000,
)
