"""Sizes and targets of chapter NADE (03).

`BOOK` in full; `SMOKE` and `PAPER` override some of its keys.

The `book` profile stops every model by epochs, so its numbers do not depend on the machine's speed.
Its epoch counts come from the book's builds on idle 2-core CPUs. On one, a training step of the
500-unit NADE (batch 100) took about 101 ms (50 s per epoch of 50,000 images), and 8 + 4 epochs
made the chapter 718 s. On a slower one (146 ms per step, 73 s per epoch) 6 + 3 epochs made it
797 s: 661 s of NADE training and 136 s for the rest. 3 + 3 epochs, and one epoch for the leaky
model, bring it to about 9 minutes there. The thresholded NADE keeps its 3 epochs: at 3 it beats the
FVSBN by about a nat (75.98 against 77.08), and fewer would not. The `max_seconds` keys are
the expected time at most (about three times the slower machine's): past it, training warns and
goes on to its last epoch, so a slow or busy machine gives the same numbers, later.
"""

BOOK = dict(
    n_train=None,  # None: the whole split (static binarized: 50,000 / 10,000 / 10,000)
    n_valid=None,
    n_test=None,
    n_valid_eval=2000,  # validation images scored during training (the test set is scored in full)
    hidden=500,  # the paper's H
    batch_size=100,
    lr=0.002,  # Adam
    epochs=3,  # NADE on the static binarized MNIST (6 epochs: 91.43 nats; the paper's 88.86 converged)
    epochs_threshold=3,  # NADE on the thresholded MNIST (after 1 epoch it is still near 87 nats)
    max_seconds=700,  # warns past it, never stops: 3 epochs take 150 to 220 s idle
    max_seconds_threshold=700,  # the same
    eval_every=500,  # steps: once per epoch
    patience=0,  # 0: no early stopping (stop by epochs)
    # two-sided bounds on NADE's exact test NLL (nats per image); the paper's converged NADE
    # reaches 88.86 on the static set, so a few epochs cannot go far below it: an NLL under the
    # lower bound signals a model that sees the pixel it predicts, not a better one
    nll_static=(85.0, 100.0),
    nll_threshold=(60.0, 80.0),  # thresholded digits are easier (71.5 after a few epochs)
    margin_over_independent=5.0,  # NADE must beat independent pixels by at least this many nats
    # the deliberately wrong model that the lower bound must reject: the trained NADE with its
    # hidden layer also seeing x_d (LeakyNADE), trained further on this many images
    leak_n_train=10_000,
    leak_epochs=1,  # its training loss is near 41 nats after 100 steps, far below the lower bound
    leak_lr=0.002,
    mob_components=100,
    em_iterations=20,
    fvsbn_epochs=10,  # with early stopping on the validation NLL (patience 2)
    fvsbn_lr=0.01,
    fvsbn_l2=1e-05,
    fvsbn_batch=500,
    fvsbn_seconds=150,  # warns past it, never stops: 10 epochs take under a minute
    n_samples=64,
    speed_reps=3,  # training steps timed for the printed (not asserted) speed ratio
)

SMOKE = dict(
    n_train=400,
    n_valid=200,
    n_test=300,
    n_valid_eval=200,
    hidden=16,
    batch_size=50,
    lr=0.01,
    epochs=6,
    epochs_threshold=6,
    max_seconds=60,
    max_seconds_threshold=60,
    eval_every=4,
    # a few hundred images and seconds of training: far from the book's numbers; the upper
    # bound is the margin over independent pixels
    # a 16-unit NADE trained for 48 steps on 400 images stays about 30 nats below independent
    # pixels (217.5 and 174.0 nats, seed 0); the leaky model falls to about 158
    nll_static=(180.0, 400.0),
    nll_threshold=(130.0, 400.0),
    leak_n_train=400,
    leak_epochs=20,
    leak_lr=0.01,
    mob_components=5,
    em_iterations=5,
    fvsbn_epochs=2,
    fvsbn_l2=0.0001,
    fvsbn_batch=50,
    fvsbn_seconds=30,
    n_samples=16,
    speed_reps=1,
)

PAPER = dict(
    n_valid_eval=None,
    lr=0.001,
    epochs=500,
    epochs_threshold=500,
    max_seconds=None,
    max_seconds_threshold=None,
    patience=10,
    nll_static=(84.0, 88.86),  # at or below the paper's 88.86
    mob_components=500,
    em_iterations=100,
    fvsbn_epochs=200,
    fvsbn_lr=0.001,
    fvsbn_batch=100,
    fvsbn_seconds=None,
)
