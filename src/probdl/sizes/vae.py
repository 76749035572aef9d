"""Sizes and targets of chapter The variational autoencoder (06).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys. The `book` profile stops every
training run by its number of epochs (no time cap), so its numbers do not depend on the machine's
speed. On one idle 2-core CPU an epoch of 784-200-200-50 took 3.8 s and 100 epochs per model made
the chapter 992 s. On a slower one an epoch took 6.2 to 7.2 s: 50 epochs per model (20 for the 2-D
model, K = 1000 on 5,000 test images) made it 927 s, and 30 epochs per model (15 for the 2-D model,
2,500 test images for the K-sample estimates) 636 s, every check passing. With the 2-D model at
10 epochs (its 15 took 92 s; the 5-NN accuracy of its codes went from 73.8 % to 71.3 %, against the
60 % asked) the chapter took 541 s on the slower CPU: about 9 minutes, and about 6 on the faster.
The L = 50 model reached 98.52 nats (K = 1000) after 30 epochs, 95.80 after 50 and 93.53 after
100: fewer epochs cost nats, not the chapter's comparisons."""

BOOK = dict(
    binarization="static",  # "static" (comparable with published numbers), "threshold" or "dynamic"
    n_train=50000,
    n_valid=2000,  # held-out ELBO after every epoch
    n_test=10000,  # test ELBO and codes
    n_eval=2500,  # test images for the K-sample estimate: every 4th (the static test set is sorted by label)
    n_hidden=200,
    n_latent=50,  # the IWAE paper's latent size
    n_latent_wide=200,  # "an output size of 200", read literally as the latent size
    batch_size=100,
    lr=0.001,
    adam_eps=1e-08,
    schedule="exp",  # the learning rate decays geometrically to a tenth over the epochs
    epochs=30,  # 3.8 to 6.2 s per epoch of 784-200-200-50 on an idle 2-core CPU; the same for L = 200
    k_eval=1000,  # importance samples per test image (40 to 86 s for 5,000 images)
    ks=[1, 10, 100, 1000],
    eval_batch=500,
    active_threshold=0.01,  # Burda et al. (2016): unit j is active if Cov_x(E_q[z_j]) > 0.01
    n_train_2d=50000,
    n_test_2d=10000,
    epochs_2d=10,
    rtol_grad=1e-5,  # encoder gradient against a central finite difference in float64
    min_detach_error=0.1,  # the same with z.detach(): relative error at least this
    target_nats=100.0,  # test -log p(x) of the L = 50 model must be below this (nats): 98.52 after
    # 30 epochs, 95.80 after 50, 93.53 after 100; the IWAE paper's converged VAE (3,280 epochs) reaches 86.76
    max_wide_gap=1.5,  # |NLL(L = 200) - NLL(L = 50)| in nats: the extra dimensions neither help nor hurt much
    max_active_wide=100,  # at most half of the 200 latent units are active
    min_gain=50.0,  # the held-out ELBO must rise by this much during training (nats)
    min_iw_gain=2.0,  # K = max over K = 1 (nats)
    min_knn_acc=0.6,  # 5-NN accuracy of the digits from the 2-D codes
)

SMOKE = dict(
    n_train=1000,
    n_valid=200,
    n_test=500,
    n_eval=200,
    epochs=3,
    k_eval=100,
    ks=[1, 10, 100],
    eval_batch=200,
    n_train_2d=1000,
    n_test_2d=500,
    epochs_2d=3,
    target_nats=300.0,
    max_wide_gap=30.0,
    max_active_wide=200,
    min_gain=5.0,
    min_iw_gain=0.1,
    min_knn_acc=0.15,
)

PAPER = dict(
    binarization="dynamic",
    n_train=60000,
    n_eval=10000,
    batch_size=20,
    adam_eps=0.0001,
    schedule="iwae",
    epochs=3280,
    k_eval=5000,
    ks=[1, 10, 100, 1000, 5000],
    eval_batch=100,
    epochs_2d=100,
    target_nats=86.76,
    max_wide_gap=1.0,
)
