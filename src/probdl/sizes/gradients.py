"""Sizes and targets of chapter Gradients of expectations (02).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys."""

BOOK = dict(
    n_data=100,
    n_grad=200000,
    var_S=[1, 4, 16, 64, 256],
    var_reps=2000,
    n_sigmas=15,
    n_var=50000,
    vae_images=100,
    vae_reps=400,
    minibatch_reps=20000,
    batch_size=10,
    sga_steps=10000,
    rho0=0.002,
    t0=250,
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
)

PAPER = dict()
