"""Sizes and targets of chapter The ELBO (01).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_data=20,
    n_q=5000,
    grid=201,
    mc_n=[10, 100, 1000, 10000, 100000],
    n_mnist=5000,
    n_valid=1000,
    latent_dim=16,
    steps=1500,
    n_evals=10,
    batch_size=100,
    lr=0.003,
)

SMOKE = dict(
    n_q=200,
    grid=41,
    mc_n=[10, 100, 1000],
    n_mnist=500,
    n_valid=200,
    latent_dim=4,
    steps=40,
    n_evals=1,
)

PAPER = dict(
    n_mnist=50000,
    n_valid=10000,
    steps=20000,
    n_evals=20,
)
