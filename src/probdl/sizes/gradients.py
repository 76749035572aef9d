"""Sizes and targets of chapter Gradients of expectations (02).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_data=100,
    n_grad=200000,  # draws per unbiasedness check
    var_S=[1, 4, 16, 64, 256],  # samples per estimate in the variance-against-S plot
    var_reps=2000,  # independent estimates per S
    n_sigmas=15,  # widths of q in the variance-against-sigma plot
    n_var=50000,  # draws per per-sample variance
    vae_images=100,
    vae_reps=400,  # one-backward estimates averaged in the VAE check
    minibatch_reps=20000,
    batch_size=10,
    sga_steps=10000,
    rho0=0.002,
    t0=250,
    n_dist=13,  # distances of q from the posterior in the path-derivative comparison
    # targets and tolerances
    max_z=4.0,  # |estimate - exact| / standard error, for every unbiasedness check
    max_chi=2.0,  # chi of an unbiased one-backward VAE estimate (near 1)
    min_chi_naive=10.0,  # chi of the naive (z detached) encoder gradient
    tol_slope=0.15,  # |slope + 1| of log variance against log S
    min_sf_ratio=1e3,  # score-function / pathwise variance at the narrowest q
    zero_var=1e-20,  # "zero" variance of the path derivative at the posterior (float64 rounding)
    sga_tol_mu=0.5,  # |final mu - mu_N| / sigma_N after Robbins-Monro ascent
    sga_tol_log_sigma=0.15,  # |final log sigma - log sigma_N|
    landing_steps=4000,  # full-batch constant-step ascent, total vs path derivative
    landing_rho=0.005,
    tol_landing=1e-8,  # |final - posterior| of the path-derivative run (in sigma_N and in log sigma)
)

SMOKE = dict(
    n_grad=20000,
    var_S=[1, 4, 16, 64],
    var_reps=300,
    n_sigmas=6,
    n_var=5000,
    vae_images=50,
    vae_reps=40,
    minibatch_reps=1000,
    sga_steps=2000,
    n_dist=5,
    sga_tol_mu=1.0,  # fewer steps: not yet settled
    landing_steps=1500,
    tol_landing=1e-4,
)

PAPER = dict()
