"""Sizes and targets of chapter Mixture posteriors (11).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_mc=100_000,  # Monte Carlo draws per mixture for its entropy
    n_random_mixtures=200,
    # the 2-D model (latent space small enough for quadrature)
    n_train_2d=50_000,
    epochs_2d=10,
    grid=161,  # quadrature points per axis on [-4, 4]^2 (spacing 0.05)
    quadrature_tol=0.05,  # nats: how far a fitted ELBO may exceed the grid's log p(x)
    n_candidates=100,  # test digits searched for a multimodal posterior
    n_show=3,
    fit_steps=400,  # Adam steps of a directly fitted q for one digit
    # MNIST, static binarization, chapter 06's architecture
    n_train=50_000,
    n_test=500,  # test digits for the importance-sampled NLL (every 20th: all classes)
    n_hidden=200,
    n_latent=50,
    components=[1, 2, 5],
    max_components=5,  # the adaptive network's cap
    threshold=0.05,  # halt when the remaining stick is below this
    weight_entropy=0.0,
    epochs=6,  # each of five models; about 40 % of the chapter's time
    batch_size=100,
    lr=1e-3,
    k_is=1000,
    # targets
    min_mix_gain=0.3,  # nats: the best mixture below the K = 1 model (the same sampled-entropy estimator)
    max_nll=118.0,  # nats: far from the study's 143.8 after a few epochs
    min_gap_gain=0.5,  # nats: the mixture's ELBO gap smaller than the Gaussian's on a multimodal digit
)

SMOKE = dict(
    n_mc=20_000,
    n_random_mixtures=20,
    n_train_2d=2_000,
    epochs_2d=2,
    grid=81,
    quadrature_tol=3.0,  # a model trained for seconds puts posterior mass beyond the grid [-4, 4]^2
    n_candidates=20,
    n_show=2,
    fit_steps=60,
    n_train=1_000,
    n_test=100,
    n_hidden=64,
    n_latent=8,
    components=[1, 2],
    max_components=3,
    epochs=2,
    k_is=50,
    min_mix_gain=None,  # two epochs on 1,000 digits: no claim
    max_nll=400.0,
    min_gap_gain=-5.0,
)

PAPER = dict(
    epochs=1000,
    n_test=10_000,
    k_is=5000,
)
