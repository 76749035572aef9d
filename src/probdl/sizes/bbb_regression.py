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
    n_mc=200_000,  # draws of the data for the Monte Carlo checks of E[y|x] and of the noise's sd
    noise_bins=25,  # bins of x in [0, 0.5] for the residual sd
    n_grad_draws=200,  # noise draws for the comparison of the two gradient estimators
    # targets
    mc_z=4.0,  # Monte Carlo checks pass within this many standard errors
    max_grad_far=0.05,  # fraction of gradient elements whose two estimators differ by > 3 standard errors
    min_sd_ratio=2.0,  # predictive sd for x in (0.8, 1] over that inside the training range
)

SMOKE = dict(
    n_train=60,
    epochs=20,
    batch_size=30,
    snapshots=2,
    snapshot_samples=20,
    n_pred_samples=50,
    n_mc=20_000,
    n_grad_draws=30,
    min_sd_ratio=1.0,
)

PAPER = dict(
    n_train=1000,
    epochs=1000,
)
