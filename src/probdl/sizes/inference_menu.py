"""Sizes and targets of chapter the inference menu with HMC as reference (08).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    # the correlated 2-D Gaussian and the conjugate regression (known answers)
    gauss_rho=0.95,
    gauss_chains=4,
    gauss_warmup=500,
    gauss_samples=1000,
    gauss_leapfrog=10,
    energy_steps=(0.1, 0.05, 0.025, 0.0125),  # step sizes at a fixed trajectory length of 2
    tol_energy_slope=0.2,  # |slope - 2| of log |dH| against log step size
    moment_z=4.5,  # moments within this many Monte Carlo standard errors
    # the regression problem of chapter 04
    n_train=500,
    n_test=400,  # held out, uniform on [0, 1]
    n_grid=200,
    hidden=50,
    prior_sigma=1.0,
    init_noise=0.15,
    epochs=200,  # maximum-likelihood / MAP training of every point network
    batch_size=100,
    lr=0.01,
    # HMC, the reference: chains from prior draws (no menu method's output), warmed up into
    # the region that fits the data; 8 x 2400 x 50 = 960,000 gradient evaluations
    hmc_chains=8,
    hmc_seed=1000,  # the prior draws' generator: a seed no other method uses
    hmc_warmup=1000,  # with a diagonal mass matrix adapted in its middle
    hmc_samples=1400,
    hmc_leapfrog=50,
    hmc_target_accept=0.8,
    min_accept=0.4,  # the sampling phase's acceptance rate lies between these
    max_accept=0.99,
    max_rhat=1.01,  # rank-normalized R-hat of f(x) inside the data (Vehtari et al. 2021)
    max_rhat_out=1.05,  # and beyond the data
    min_ess=400,  # bulk ESS of f(x) inside the data
    noise_z=2.0,  # a distance to HMC counts when above this many times HMC's own standard error
    # the menu
    sgld_steps=4000,  # per chain, after warm-up; every 10th kept; chains start at the ensemble
    sgld_warmup=1000,
    sgld_thin=10,
    # one leapfrog step of size h is a Langevin step of h^2 M^-1_ii in direction i (h^2 with
    # M = I); the chapter computes the range HMC's adapted metric gives and where this lies in it
    sgld_step=3e-6,
    swag_epochs=40,
    swag_lr=0.02,  # constant SGD rate; 0.002-0.02 keep the loss near the mode's, the spread grows with it
    swag_rank=20,
    ensemble_members=5,
    dropout=0.1,
    bbb_epochs=400,
    bbb_init_sigma=0.01,
    n_pred_samples=400,  # weight samples for SWAG, MC dropout and BBB predictives
    # targets
    min_sd_ratio=3.0,  # HMC's predictive sd beyond the data over its sd within, at least
    max_mean_in=0.5,  # every method's RMS distance to HMC's mean in the data, at most, in units of s
)

SMOKE = dict(
    gauss_chains=2,
    gauss_warmup=80,
    gauss_samples=120,
    moment_z=6.0,
    n_train=60,
    n_test=60,
    n_grid=50,
    epochs=20,
    batch_size=30,
    hmc_chains=3,
    hmc_warmup=60,  # enough for the mass-matrix windows and a step size after them
    hmc_samples=20,
    hmc_leapfrog=10,
    max_accept=1.0,  # 20 draws per chain: all may be accepted
    sgld_steps=100,
    sgld_warmup=20,
    sgld_thin=2,
    swag_epochs=4,
    swag_rank=3,
    ensemble_members=2,
    bbb_epochs=20,
    n_pred_samples=20,
    min_sd_ratio=1.0,
    max_mean_in=1.5,  # 60 points and 80 HMC iterations: a check of signs and shapes
)

PAPER = dict(
    hmc_chains=8,
    hmc_warmup=2000,
    hmc_samples=5000,
    hmc_leapfrog=200,
    sgld_steps=40000,
)
