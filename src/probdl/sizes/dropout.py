"""Sizes and targets of chapter Dropout as variational inference (09).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    # --- the KL and the gradient estimators
    kl_points=41,  # log alpha values on [-8, 8] where the quadrature is evaluated
    kl_max_error=0.01,  # nats: Molchanov et al.'s fit against the quadrature
    grad_alphas=(0.1, 0.5, 1.0, 2.0),
    grad_batch=100,
    grad_repeats=50,  # noise draws per gradient-variance estimate
    noise_draws=100_000,  # unit noise vs weight noise: draws of one example's pre-activations
    # --- MC dropout on the 1-D regression problem (chapter 04's data)
    reg_n_train=500,
    reg_hidden=50,
    reg_dropout=0.1,  # small p: the 1-D fit needs most units, the spread comes from the rest
    # prior N(0, 1/l^2) on every weight and bias (Gal & Ghahramani's weight decay): l = 1 is
    # chapter 04's N(0, 1) prior of Bayes by Backprop, so that both methods share it
    reg_length_scale=1.0,
    reg_epochs=400,
    reg_batch_size=100,
    reg_lr=0.01,
    reg_mc_samples=500,
    reg_bbb_init_sigma=0.01,
    # epistemic sd off the data / on the data must exceed this for both methods (the bands widen);
    # MC dropout's ratio varies with the seed (1.08 to 1.62 over six seeds at l = 1, p = 0.1)
    reg_min_sd_ratio=1.0,
    reg_seeds=5,  # MC-dropout networks trained from different seeds for the ratio's range
    # --- MC dropout on MNIST
    n_test=10_000,  # MNIST test digits used throughout
    mnist_n_train=50_000,
    mnist_hidden=400,
    mnist_dropout=0.5,
    mnist_length_scale=1.0,  # the N(0, 1) prior of chapter 05's Bayes by Backprop
    mnist_epochs=5,
    mnist_batch_size=128,
    mnist_lr=1e-3,
    mnist_mc_samples=50,
    mnist_max_error=3.0,  # percent, MC predictive
    # on test digits MC dropout and the deterministic network differ little: |NLL difference| at most
    # this (after 5 epochs MC averaging is a little under-confident: 0.088 against 0.075 nats)
    mnist_nll_close=0.03,
    rot_digits=500,  # test digits rotated for the entropy curve
    rot_angles=13,  # 0, 15, ..., 180 degrees
    rot_min_ratio=2.0,  # MC entropy at >= 60 degrees / at 0 degrees
    # --- sparse variational dropout, LeNet-300-100
    svd_n_train=50_000,
    svd_epochs=15,
    svd_warmup_epochs=5,  # the KL weight rises from 0 to 1 over these epochs
    svd_batch_size=100,
    svd_lr=3e-3,
    svd_lr_end=0.02,  # the learning rate decays linearly to this fraction of svd_lr
    svd_threshold=3.0,  # weights with log alpha above it are dropped
    svd_max_error=2.5,  # percent: the book's target
    svd_min_compression=20.0,  # the book's target
    paper_error=1.92,  # Molchanov et al. (2017), Table 1, LeNet-300-100 (published, not run here)
    paper_compression=68.0,
    # --- Bayes by Backprop pruned to the same sparsity
    bbb_epochs=3,
    bbb_lr=1e-3,
    bbb_init_sigma=1e-3,
    bbb_max_error=5.0,  # percent, the dense mean network
)

SMOKE = dict(
    kl_points=9,
    grad_alphas=(0.5, 2.0),
    grad_repeats=20,
    reg_n_train=60,
    reg_epochs=30,
    reg_batch_size=30,
    reg_mc_samples=50,
    reg_seeds=2,
    mnist_n_train=2000,
    mnist_hidden=100,
    mnist_epochs=2,
    mnist_mc_samples=10,
    mnist_max_error=50.0,
    n_test=2000,
    rot_min_ratio=1.0,
    mnist_lr=3e-3,
    mnist_nll_close=0.3,  # a barely trained network: MC averaging makes it even less confident
    rot_digits=50,
    rot_angles=5,
    svd_epochs=3,
    svd_warmup_epochs=3,
    svd_max_error=60.0,  # a short run on 2,000 digits: better than chance, some weights removed
    svd_min_compression=1.5,
    bbb_epochs=1,
    svd_n_train=2000,
    bbb_max_error=60.0,
)

PAPER = dict(
    reg_n_train=1000,
    reg_seeds=10,
    reg_epochs=1000,
    mnist_hidden=1024,
    mnist_epochs=50,
    svd_epochs=200,
    svd_warmup_epochs=20,
    svd_lr=1e-3,
    svd_max_error=1.92,
    svd_min_compression=60.0,
    bbb_epochs=50,
)
