"""Tests of probdl.predictive, the one Monte Carlo predictive: moments over forward
passes of a sampling network (exact for a deterministic one, against stored draws),
probabilities for a classifier, the error rate, the moments of draws already made, and
the generator that draws every pass's noise."""

import pytest
import torch

from probdl import bbb, mlp, predictive


def test_predictive_variance_vanishes_as_sigma_goes_to_zero():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 7).reshape(-1, 1)
    for lrt in (False, True):
        model = bbb.BayesianMLP(
            [1, 10, 1],
            likelihood="gaussian",
            init_sigma=1e-9,
            local_reparameterization=lrt,
        )
        mean, var = predictive.predictive(model, x, n_samples=20)
        assert var.max() < 1e-10
        model.set_sample(False)
        torch.testing.assert_close(mean, model(x), atol=1e-6, rtol=0)
        wide = bbb.BayesianMLP(
            [1, 10, 1],
            likelihood="gaussian",
            init_sigma=0.3,
            local_reparameterization=lrt,
        )
        assert predictive.predictive(wide, x, n_samples=20)[1].min() > 1e-4
    plain = mlp.PlainMLP([1, 10, 1], likelihood="gaussian")
    x_many = torch.linspace(-3, 3, 1000).reshape(-1, 1)
    assert (
        predictive.predictive(plain, x_many, 7)[1].abs().max() == 0
    )  # exactly, not up to rounding
    plain.eval()
    torch.testing.assert_close(
        predictive.predictive(plain, x_many, 7)[0], plain(x_many).detach()
    )
    # the mean and variance against a direct computation over stored draws
    model = bbb.BayesianMLP([1, 10, 1], likelihood="gaussian", init_sigma=0.3)
    mean, var = predictive.predictive(
        model, x, n_samples=50, generator=torch.Generator().manual_seed(5)
    )
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        draws = torch.stack([model(x, g) for _ in range(50)]).double()
    torch.testing.assert_close(mean, draws.mean(0).float())
    torch.testing.assert_close(
        var, draws.var(0, unbiased=False).float(), rtol=1e-4, atol=1e-7
    )


def test_predictive_probabilities_sum_to_one():
    model = bbb.BayesianMLP([4, 6, 3], init_sigma=0.5)
    mean, var = predictive.predictive(
        model, torch.randn(5, 4), n_samples=10, batch_size=2
    )
    torch.testing.assert_close(mean.sum(-1), torch.ones(5))
    assert (var >= 0).all() and model.layers[0].sample


def test_error_rate_of_mean_network_and_predictive():
    torch.manual_seed(0)
    model = bbb.BayesianMLP([4, 3], init_sigma=1e-8)
    x = torch.randn(50, 4)
    model.set_sample(False)
    y = model(x).argmax(-1)
    model.set_sample(True)
    assert predictive.error_rate(model, x, y) == 0.0
    assert predictive.error_rate(model, x, (y + 1) % 3, batch_size=7) == 100.0
    assert predictive.error_rate(model, x, y, n_samples=3) == 0.0
    assert model.layers[0].sample and model.training


def test_moments_of_draws_are_the_population_mean_and_variance():
    """predictive.moments: the mean and the population variance (divided by the number
    of draws, the variance of the equal mixture of the draws) over every sample axis,
    in the draws' dtype; the ensemble's predictive is it over its members."""
    g = torch.Generator().manual_seed(0)
    draws = torch.randn(7, 3, 5, 2, generator=g, dtype=torch.float64) * 2 + 1
    mean, var = predictive.moments(draws, sample_dims=2)
    flat = draws.reshape(21, 5, 2)
    torch.testing.assert_close(mean, flat.mean(0))
    torch.testing.assert_close(var, ((flat - flat.mean(0)) ** 2).sum(0) / 21)
    assert mean.dtype == torch.float64 and var.shape == (5, 2)
    with pytest.raises(ValueError, match="sample_dims"):
        predictive.moments(draws, sample_dims=4)


def test_one_generator_draws_every_pass_and_is_checked():
    """The same generator seed gives the same predictive, for weights (Bayes by
    Backprop) and for dropout masks (dropout=True); torch's global generator is not
    touched; a module that would ignore the generator is refused."""
    x = torch.linspace(-1, 1, 9).reshape(-1, 1)
    nets = [
        (bbb.BayesianMLP([1, 8, 1], likelihood="gaussian", init_sigma=0.3), False),
        (mlp.PlainMLP([1, 8, 1], likelihood="gaussian", dropout=0.5), True),
    ]
    for net, drop in nets:
        state = torch.get_rng_state()
        runs = [
            predictive.predictive(
                net, x, 7, generator=torch.Generator().manual_seed(s), dropout=drop
            )
            for s in (3, 3, 4)
        ]
        assert torch.equal(torch.get_rng_state(), state)
        assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(
            runs[0][1], runs[1][1]
        )
        assert not torch.equal(runs[0][1], runs[2][1]) and runs[0][1].min() > 0
    with pytest.raises(TypeError, match="probdl network"):
        predictive.predictive(
            torch.nn.Linear(1, 1), x, 3, generator=torch.Generator().manual_seed(0)
        )
