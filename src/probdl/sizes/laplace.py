"""Sizes and targets of chapter The Laplace approximation (07).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    # the 1-D problem of chapter 04 (its network, data and Bayes-by-Backprop settings)
    n_train=500,
    hidden=50,
    epochs=400,  # MAP and Bayes by Backprop, minibatches of batch_size
    batch_size=100,
    lr=0.01,
    prior_precision=1.0,  # of the MAP's Gaussian prior (weight decay); the evidence re-chooses it
    init_noise=0.15,
    bbb_prior_sigma=1.0,
    bbb_init_sigma=0.01,
    n_pred_samples=200,  # weight draws of the sampling predictives
    evidence_grid=41,  # prior precisions on the evidence curve
    beta_sizes=[5, 20, 80, 320, 1280],  # data sizes of the Beta-Bernoulli check
    # the UCI table: the standard train/test splits (data/uci), the protocol of
    # experiments.laplace.evaluate_split
    uci_sets=["bostonHousing", "energy", "yacht"],
    uci_splits=2,  # the first splits of the 20 (the whole chapter within ~10 min on 2 cores)
    uci_hidden=50,
    uci_valid_fraction=0.2,  # of each training split, to choose hyperparameters
    uci_prior_grid=[0.1, 1.0, 10.0],  # MAP's prior precisions (weight decay), chosen on validation
    uci_map_epochs=1000,  # full-batch Adam steps
    uci_bbb_sigma_grid=[0.5, 1.0],  # Bayes by Backprop's prior scales, chosen on validation
    uci_bbb_epochs=5000,  # full-batch steps of Bayes by Backprop
    uci_lr=0.01,
    uci_eval_every=100,  # steps between validation-ELBO evaluations
    # MNIST
    mnist_train=None,  # all 50,000
    mnist_test=None,
    mnist_hidden=400,
    mnist_epochs=5,
    mnist_bbb_epochs=5,
    mnist_batch=128,
    mnist_lr=0.001,
    rotations=[0, 15, 30, 45, 60, 90],
    n_rotated=1000,  # test digits per rotation angle
    # targets and tolerances
    tol_exact=1e-8,  # Laplace against the closed form of Bayesian linear regression
    beta_slope=(-1.3, -0.7),  # the log-log slope of |Laplace - exact log evidence| against n (about -1)
    min_sd_ratio=1.5,  # GGN predictive sd away from the data / inside it, at least
    min_sampling_blowup=2.0,  # sampled all-weights GGN sd / linearized sd inside the data, at least
    rtol_last_layer=0.2,  # sampling and linearized sd of the last layer agree (Monte Carlo error)
    uci_max_rmse=0.85,  # test RMSE / the targets' standard deviation (predicting the mean gives 1)
    mnist_nll_slack=0.0,  # last-layer Laplace's test NLL at most MAP's plus this
    mnist_error_slack=0.5,  # its test error (%) at most MAP's plus this
)

SMOKE = dict(
    n_train=60,
    hidden=20,
    epochs=30,
    batch_size=30,
    n_pred_samples=20,
    evidence_grid=9,
    beta_sizes=[5, 80, 1280],
    uci_splits=1,
    uci_prior_grid=[1.0],
    uci_map_epochs=100,
    uci_bbb_sigma_grid=[1.0],
    uci_bbb_epochs=200,
    uci_eval_every=10,
    mnist_train=1000,
    mnist_test=1000,
    mnist_hidden=50,
    mnist_epochs=1,
    mnist_bbb_epochs=1,
    mnist_batch=100,
    rotations=[0, 45, 90],
    n_rotated=200,
    min_sd_ratio=1.0,
    min_sampling_blowup=1.0,
    rtol_last_layer=0.5,
    uci_max_rmse=1.1,
    mnist_nll_slack=0.3,
    mnist_error_slack=3.0,
)

PAPER = dict(
    n_train=1000,
    epochs=1000,
    uci_splits=20,
    uci_map_epochs=4000,
    uci_bbb_epochs=20000,
    uci_prior_grid=[0.01, 0.1, 1.0, 10.0, 100.0],
    uci_bbb_sigma_grid=[0.25, 0.5, 1.0, 2.0],
    mnist_epochs=20,
    mnist_bbb_epochs=25,
)
