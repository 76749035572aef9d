"""Sizes and targets of chapter Generative adversarial networks (10).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_ks=5000,  # draws for the Kolmogorov-Smirnov test of the inverse-CDF transform
    ks_alpha=0.01,  # the KS test must not reject the right transform at this level
    # the optimal discriminator on two known 1-D densities
    n_dstar=10000,  # samples of each density to train D on
    dstar_hidden=[64, 64],
    dstar_epochs=10,
    dstar_lr=1e-3,
    tol_dstar=0.08,  # E_m |D - D*| under m = (p_data + p_g) / 2
    tol_value=0.03,  # V(D*) - V(D_trained) in nats
    # a GAN in one dimension
    n_1d=10000,
    noise_1d=4,
    hidden_1d=[32, 32],
    epochs_1d=20,
    lr_1d=1e-3,
    max_ks_1d=0.2,  # KS distance of the trained G to p_data, at most (G on one mode only: >= 0.4)
    # the ring of 8 Gaussians
    n_ring=10000,
    ring_std=0.05,
    noise_ring=2,
    hidden_ring=[64, 64],
    epochs_ring=20,
    lr_ring=1e-3,
    min_modes_hit=0.5,  # the best run must cover at least this share of the 8 modes
    lr_ring_fast_g=1e-2,  # a generator ten times faster than its discriminator collapses
    k_ring=5,  # discriminator steps per generator step, the remedy
    ring_seeds=3,  # seeds of the two fast-generator runs
    max_modes_collapsed=3.0,  # the fast generator with k = 1 hits at most this many modes (mean over seeds)
    min_modes_regained=3.0,  # k_ring discriminator steps bring back at least this many (mean over seeds)
    # the exercise gan-ex-seeds: ten seeds for each of the four settings, then the
    # generator's learning rate from 1 to 30 times the discriminator's with k = 1 and
    # k = k_ring; on a smaller ring (the smoke profile's) so that its runs fit the page
    ring_ex=dict(n_ring=1000, ring_std=0.25, hidden_ring=[32, 32], epochs_ring=10, lr_ring=3e-3),
    ring_ex_seeds=10,
    ring_ex_ratios=[1, 2, 3, 5, 10, 20, 30],
    grad_batch=1000,
    grad_pretrain_epochs=3,  # D trained against the initial G before the gradients are measured
    grad_lr=1e-3,
    min_grad_ratio=10.0,  # non-saturating / saturating gradient norm at the start, at least
    # MNIST
    n_train=50000,
    n_valid=1000,  # the Parzen bandwidth is chosen on these
    n_test=1000,  # Parzen and Frechet (squared 2-Wasserstein) scores on these (the paper used all 10,000)
    noise_mnist=100,
    g_hidden=[256],
    d_hidden=[256],
    d_dropout=0.3,
    epochs=6,
    lr=2e-4,
    batch_size=100,
    n_snapshots=3,  # sample grids shown during training
    n_parzen=5000,  # samples the kernel density is built on (the paper: 10,000)
    sigmas=[0.1, 0.15, 0.2, 0.25, 0.3, 0.4],
    parzen_ns=(100, 1000, 10000),  # the exercise: training digits as the "samples"
    vae_hidden=200,
    vae_latent=20,
    vae_epochs=5,
    nade_hidden=100,
    nade_epochs=2,
    clf_sizes=[784, 256, 64, 10],
    clf_epochs=3,
    n_fd=1000,  # samples per model for the Frechet distance (squared 2-Wasserstein)
    max_clf_error=0.06,
    k_vae=100,  # importance samples for the VAE's log p(x)
)

SMOKE = dict(
    n_ks=1000,
    n_dstar=1000,
    dstar_hidden=[32, 32],
    dstar_lr=3e-3,
    tol_dstar=0.12,
    tol_value=0.1,
    n_1d=500,
    hidden_1d=[16, 16],
    epochs_1d=4,
    max_ks_1d=0.6,
    n_ring=1000,
    ring_std=0.25,  # wider modes: a few steps can reach them
    hidden_ring=[32, 32],
    epochs_ring=10,
    lr_ring=3e-3,
    min_modes_hit=0.25,
    # The collapse check runs here too, with BOOK's bounds (max_modes_collapsed, min_modes_regained).
    # Measured at these sizes (seeds 0-9, one thread, about 1 s a seed for both runs):
    # the fast generator with k = 1 hits 0 or 1 modes on every seed, with k = 5 all 8 on every
    # seed; a remedy that is ignored (k = 1 for the same 5x number of discriminator steps) hits
    # 0-4 (mean 1.7), so a train_gan that drops k fails the check.
    k_ring=5,
    ring_seeds=3,
    ring_ex_seeds=2,
    ring_ex_ratios=[1, 10],
    grad_batch=200,
    grad_pretrain_epochs=5,
    grad_lr=1e-2,
    n_train=500,
    n_valid=100,
    n_test=100,
    g_hidden=[32],
    d_hidden=[32],
    epochs=30,
    lr=1e-3,
    n_snapshots=1,
    n_parzen=200,
    sigmas=[0.2, 0.3],
    parzen_ns=(20, 60, 200),
    vae_hidden=32,
    vae_latent=4,
    vae_epochs=1,
    nade_hidden=8,
    nade_epochs=1,
    clf_sizes=[784, 32, 16, 10],
    clf_epochs=10,
    n_fd=100,
    max_clf_error=0.6,
    k_vae=5,
)

PAPER = dict(
    # gan-ex-seeds at the ring's full sizes (BOOK's n_ring, ring_std, hidden_ring, ...)
    ring_ex=dict(n_ring=10000, ring_std=0.05, hidden_ring=[64, 64], epochs_ring=20, lr_ring=1e-3),
    n_test=10000,
    n_parzen=10000,
    g_hidden=[1200, 1200],
    d_hidden=[240, 240],  # the paper's discriminator used maxout units of this width
    d_dropout=0.5,
    epochs=100,
    vae_epochs=100,
    nade_hidden=500,
    nade_epochs=50,
    clf_epochs=10,
    n_fd=10000,
    k_vae=1000,
)
