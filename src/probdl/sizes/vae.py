"""Sizes and targets of chapter The variational autoencoder (06).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    binarization="static",
    n_train=50000,
    n_valid=2000,
    n_test=10000,
    n_hidden=200,
    n_latent=50,
    batch_size=100,
    lr=0.001,
    adam_eps=1e-08,
    schedule="exp",
    epochs=150,
    max_seconds=580,
    k_eval=1000,
    ks=[1, 10, 100, 1000],
    eval_batch=500,
    n_train_2d=50000,
    n_test_2d=10000,
    epochs_2d=30,
    max_seconds_2d=150,
    target_nats=95.0,
    min_gain=50.0,
    min_iw_gain=2.0,
    min_knn_acc=0.6,
)

SMOKE = dict(
    n_train=1000,
    n_valid=200,
    n_test=200,
    epochs=3,
    max_seconds=60,
    k_eval=100,
    ks=[1, 10, 100],
    eval_batch=200,
    n_train_2d=1000,
    n_test_2d=500,
    epochs_2d=3,
    max_seconds_2d=60,
    target_nats=300.0,
    min_gain=5.0,
    min_iw_gain=0.1,
    min_knn_acc=0.15,
)

PAPER = dict(
    binarization="dynamic",
    n_train=60000,
    batch_size=20,
    adam_eps=0.0001,
    schedule="iwae",
    epochs=3280,
    max_seconds=None,
    k_eval=5000,
    ks=[1, 10, 100, 1000, 5000],
    eval_batch=100,
    epochs_2d=100,
    max_seconds_2d=None,
    target_nats=86.76,
)
