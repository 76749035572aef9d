"""Sizes and targets of chapter NADE (03).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_train=None,
    n_valid=None,
    n_test=None,
    n_valid_eval=2000,
    hidden=500,
    batch_size=100,
    lr=0.002,
    epochs=20,
    max_seconds=390,
    max_seconds_threshold=180,
    eval_every=500,
    patience=0,
    mob_components=100,
    em_iterations=20,
    fvsbn_epochs=10,
    fvsbn_lr=0.01,
    fvsbn_l2=1e-05,
    fvsbn_batch=500,
    fvsbn_seconds=60,
    n_samples=64,
)

SMOKE = dict(
    n_train=400,
    n_valid=200,
    n_test=300,
    n_valid_eval=200,
    hidden=16,
    batch_size=50,
    lr=0.01,
    epochs=6,
    max_seconds=15,
    max_seconds_threshold=10,
    eval_every=4,
    mob_components=5,
    em_iterations=5,
    fvsbn_epochs=2,
    fvsbn_l2=0.0001,
    fvsbn_batch=50,
    fvsbn_seconds=10,
    n_samples=16,
)

PAPER = dict(
    n_valid_eval=None,
    lr=0.001,
    epochs=500,
    max_seconds=None,
    max_seconds_threshold=None,
    patience=10,
    mob_components=500,
    em_iterations=100,
    fvsbn_epochs=200,
    fvsbn_lr=0.001,
    fvsbn_batch=100,
    fvsbn_seconds=None,
)
