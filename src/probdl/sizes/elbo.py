"""Sizes and targets of chapter The ELBO (01).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_data=20,
    n_q=5000,  # random Gaussians q per model in the gap = KL check
    grid=201,  # points per axis of the ELBO surface
    n_mc=[10, 100, 1000, 10000, 100000],  # Monte Carlo sample sizes
    n_mnist=5000,
    n_valid=1000,
    n_latent=16,
    steps=1500,
    n_evals=10,
    batch_size=100,
    lr=0.003,
    # targets and tolerances (the identities are exact: double-precision rounding)
    tol_kl=1e-10,  # closed-form Gaussian KL against torch.distributions
    tol_kl_full=1e-8,  # full-covariance KL, relative to 1 + KL
    tol_evidence=1e-8,  # three computations of log p(D)
    tol_gap=1e-9,  # |log p(D) - ELBO - KL(q || posterior)| relative to 1 + KL
    tol_opt=1e-6,  # L-BFGS maximiser against the posterior (in posterior sds)
    tol_max_elbo=1e-9,  # log p(D) - max ELBO, where q can reach the posterior
    tol_jensen=0.1,  # the log-normal Jensen gap against s^2 / 2 (Monte Carlo)
    max_z=4.0,  # |Monte Carlo estimate - exact| / standard error
    max_se_ratio=1.5,  # spread of standard error x sqrt(S) over S (1/sqrt(S) scaling)
    min_mean_field_gap=1e-3,  # a diagonal q stops at least this far below a correlated posterior
)

SMOKE = dict(
    n_q=200,
    grid=41,
    n_mc=[10, 100, 1000],
    n_mnist=500,
    n_valid=200,
    n_latent=4,
    steps=40,
    n_evals=1,
)

PAPER = dict(
    n_mnist=50000,
    n_valid=10000,
    steps=20000,
    n_evals=20,
)
