"""Sizes and targets of chapter Bayes by Backprop on MNIST (05).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys. Training stops by epochs; the
``max_seconds`` values are the expected time at most (about three times it): past it, training
warns and goes on to its last epoch, so a busy machine gives the same numbers, later."""

BOOK = dict(
    n_train=None,  # all 50,000 training digits
    n_valid=None,
    n_test=None,
    hidden=400,  # the paper's smallest network (its Table 1 has H = 400, 800, 1200)
    batch_size=128,
    lr=0.001,
    # epochs per model, for about 8.5 minutes of training on an idle 2-core CPU, estimated (not measured
    # in one clean run): a plain epoch about 4.5 s there, a Bayes-by-Backprop step 2.5-3.5 times a plain
    # one (benchmarks/results/bbb.json: 2.45 with the closed-form KL; the sampled surprise adds to it)
    epochs={"plain": 15, "dropout": 15, "gaussian": 12, "mixture": 12},
    max_seconds={"plain": 200, "dropout": 250, "gaussian": 500, "mixture": 600},  # warn past it, never stop
    gaussian_sigma=1.0,
    init_sigma=0.001,
    mixture_grid=[(0.5, 0, 6)],  # (pi, -log sigma1, -log sigma2)
    n_pred_samples=10,
    n_uncertainty=1000,
    n_bins=15,  # confidence bins of the expected calibration error
    prune_fractions=[0.0, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99],
    patience=None,
    # Table 1 of Blundell et al. (2015): test error % at H = 400, 800, 1200
    paper_errors={
        "plain": (1.83, 1.84, 1.88),
        "dropout": (1.51, 1.33, 1.36),
        "BBB, Gaussian prior": (1.82, 1.99, 2.04),
        "BBB, scale mixture": (1.36, 1.34, 1.32),
    },
    # targets
    max_test_error=3.0,  # % for every model: a sanity bound, passed by a plain network too
    bbb_beats_plain_nll=True,  # both Bayesian networks: lower test NLL than the plain network
    mixture_nll_slack=0.01,  # nats: the scale mixture's test NLL at most the Gaussian prior's + this
    rotated_entropy_factor=2.0,  # mean entropy on rotated digits over that on test digits
    prune_half_cost=0.5,  # points of test error that removing half of the weights by SNR may cost
    prune_random_factor=2.0,  # random pruning of 95 % at least this many times the SNR-pruned error
    prune_95_cost=None,  # points that removing 95 % may cost (asserted only after long training)
)

SMOKE = dict(
    n_train=1000,
    n_valid=500,
    n_test=1000,
    hidden=50,
    batch_size=100,
    epochs={"plain": 1, "dropout": 1, "gaussian": 1, "mixture": 1},
    max_seconds={"plain": 60, "dropout": 60, "gaussian": 60, "mixture": 60},
    n_pred_samples=5,
    n_uncertainty=200,
    prune_fractions=[0.0, 0.5, 0.95],
    max_test_error=90.0,
    bbb_beats_plain_nll=False,  # a few steps say nothing about calibration
    mixture_nll_slack=0.5,  # nats: a few steps on 1,000 digits leave both near log 10
    rotated_entropy_factor=None,
    prune_half_cost=None,
    prune_random_factor=None,
)

PAPER = dict(
    hidden=1200,
    epochs={"plain": 300, "dropout": 300, "gaussian": 300, "mixture": 300},
    max_seconds={"plain": None, "dropout": None, "gaussian": None, "mixture": None},
    mixture_grid=[(pi, a, b) for pi in (0.25, 0.5, 0.75) for a in (0, 1, 2) for b in (6, 7, 8)],
    n_pred_samples=100,
    n_uncertainty=10000,
    patience=20,
    max_test_error=2.5,
    prune_95_cost=0.2,  # the paper: 95 % removed for +0.05 points after long training
)
