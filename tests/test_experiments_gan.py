"""Tests of probdl.experiments.gan, chapter 10's ring experiment: what one run trains
(the discriminator passes scale with k, the generator's learning rate is the ratio times
the discriminator's), that a run is reproducible, that the mean and standard error over
seeds are the textbook ones, where collapse sets in, and a smoke run that collapses with
a fast generator and recovers with k = 5 (measured on seeds 0-9 at these sizes: 0-1
modes against 7-8)."""

import statistics

import pytest
import torch

from probdl import gan, gan_eval
from probdl.experiments import gan as ex


def small_ring(n=1000, std=0.25, epochs=10):
    x = gan_eval.ring_of_gaussians(
        n, std=std, generator=torch.Generator().manual_seed(0)
    )
    return ex.Ring(x, std=std, noise=2, hidden=[32, 32], epochs=epochs, lr_d=3e-3)


def test_ring_run_trains_k_times_the_passes_at_the_ratio_of_learning_rates(monkeypatch):
    seen = {}

    def fake_train(model, x, **kw):
        seen.update(kw)

    monkeypatch.setattr(gan, "train_gan", fake_train)
    ring = small_ring(n=50)
    samples, cov = ex.ring_run(
        ring, 3, k=5, lr_ratio=10.0, saturating=True, n_samples=40
    )
    assert seen["epochs"] == 5 * ring.epochs and seen["k"] == 5
    assert seen["lr_d"] == 3e-3 and seen["lr_g"] == pytest.approx(3e-2, rel=1e-12)
    assert seen["saturating"] is True
    assert samples.shape == (40, 2)
    assert 0 <= cov["modes"] <= 8 and cov["modes"] == round(8 * cov["modes_hit"])
    with pytest.raises(ValueError, match="k >= 1"):
        ex.ring_run(ring, 0, k=0)


def test_ring_run_is_reproducible_and_depends_on_its_seed():
    ring = small_ring(n=200, epochs=2)
    a, _ = ex.ring_run(ring, 1, progress=False)
    b, _ = ex.ring_run(ring, 1, progress=False)
    c, _ = ex.ring_run(ring, 2, progress=False)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_modes_over_seeds_mean_and_standard_error(monkeypatch):
    modes = {0: 3, 1: 1, 2: 8, 3: 0}

    def fake_run(ring, seed, **options):
        return None, {"modes": modes[seed]}

    monkeypatch.setattr(ex, "ring_run", fake_run)
    mean, se, per_seed = ex.modes_over_seeds(None, range(4))
    assert per_seed == [3, 1, 8, 0]
    assert mean == pytest.approx(statistics.mean(per_seed))
    assert se == pytest.approx(statistics.stdev(per_seed) / 2)
    assert ex.modes_over_seeds(None, [2]) == (8.0, 0.0, [8])


def test_collapse_onset_is_the_smallest_collapsing_ratio():
    assert ex.collapse_onset({30: 0.7, 1: 3.5, 2: 1.3, 20: 0.9}, 3.0) == 2
    assert ex.collapse_onset({1: 8.0, 30: 2.4, 20: 5.1}, 3.0) == 30
    assert ex.collapse_onset({1: 8.0, 10: 7.9}, 3.0) is None
    assert ex.collapse_onset({1: 3.0}, 3.0) == 1  # at most max_modes counts as collapse


def test_fast_generator_collapses_and_k5_recovers():
    ring = small_ring()
    seeds = range(3)
    fast, _, _ = ex.modes_over_seeds(ring, seeds, lr_ratio=10, progress=False)
    remedied, _, _ = ex.modes_over_seeds(ring, seeds, k=5, lr_ratio=10, progress=False)
    assert fast <= 2 and remedied >= 6, (fast, remedied)
