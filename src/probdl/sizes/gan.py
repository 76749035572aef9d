"""Sizes and targets of chapter Generative adversarial networks (10).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_ks=5000,  # draws for the Kolmogorov-Smirnov test of the inverse-CDF transform
    ks_alpha=0.01,  # the KS test must not reject at this level
    # the optimal discriminator on two known 1-D densities
    n_dstar=20000,  # samples of each density to train D on
    dstar_hidden=[64, 64],
    dstar_epochs=20,
    dstar_tol=0.05,  # max |D - D*| where both densities exceed 1% of their peak
    # a GAN in one dimension
    n_1d=10000,
    noise_1d=1,
    hidden_1d=[32, 32],
    epochs_1d=30,
    lr_1d=1e-3,
    # the ring of 8 Gaussians
    n_ring=20000,
    ring_std=0.05,
    noise_ring=2,
    hidden_ring=[128, 128],
    epochs_ring=30,
    lr_ring=1e-3,
    k_ring=[1, 5],  # discriminator steps per generator step, compared
    min_modes_hit=0.6,  # the best run must cover at least this share of the 8 modes
    grad_batch=1000,
    grad_pretrain_epochs=5,  # D trained against the initial G before the gradients are measured
    min_grad_ratio=10.0,  # non-saturating / saturating gradient norm at the start, at least
    # MNIST
    n_train=50000,
    n_valid=1000,  # the Parzen bandwidth is chosen on these
    n_test=1000,  # Parzen and Frechet scores on these (the paper used all 10,000)
    noise_mnist=100,
    g_hidden=[256, 512],
    d_hidden=[512, 256],
    d_dropout=0.3,
    epochs=8,
    lr=2e-4,
    batch_size=100,
    n_parzen=5000,  # samples the kernel density is built on (the paper: 10,000)
    sigmas=[0.08, 0.1, 0.15, 0.2, 0.3],
    vae_hidden=200,
    vae_latent=20,
    vae_epochs=5,
    nade_hidden=200,
    nade_epochs=3,
    clf_sizes=[784, 256, 64, 10],
    clf_epochs=3,
    n_fd=1000,  # samples per model for the Frechet distance
    max_clf_error=0.06,
    min_fd_gain=2.0,  # FD(noise) / FD(GAN) at least
)

SMOKE = dict(
    n_ks=1000,
    n_dstar=2000,
    dstar_epochs=3,
    dstar_tol=0.25,
    n_1d=1000,
    epochs_1d=3,
    n_ring=2000,
    epochs_ring=3,
    min_modes_hit=0.1,
    grad_pretrain_epochs=2,
    min_grad_ratio=2.0,
    n_train=1000,
    n_valid=200,
    n_test=200,
    g_hidden=[64, 128],
    d_hidden=[128, 64],
    epochs=2,
    n_parzen=500,
    vae_hidden=50,
    vae_epochs=2,
    nade_hidden=20,
    nade_epochs=1,
    clf_sizes=[784, 64, 32, 10],
    clf_epochs=2,
    n_fd=200,
    max_clf_error=0.5,
    min_fd_gain=1.0,
)

PAPER = dict(
    n_train=50000,
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
)
