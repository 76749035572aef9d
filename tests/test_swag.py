"""Tests of probdl.swag (SWAG's moments and samples) and probdl.ensemble (MAP objective,
ensemble predictive)."""

import functools
import math

import pytest
import torch

from probdl import ensemble, mcmc, mlp, swag


def net_with(theta: torch.Tensor) -> mlp.PlainMLP:
    model = mlp.PlainMLP([1, 2, 1], likelihood="gaussian")
    torch.nn.utils.vector_to_parameters(theta.float(), model.layers.parameters())
    return model


def test_swag_moments_and_sample_covariance():
    g = torch.Generator().manual_seed(0)
    dim, rank = 7, 5  # [1, 2, 1]: 2 + 2 + 2 + 1 weights
    iterates = torch.randn(12, dim, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2, dim) + 3.0
    s = swag.SWAG(dim, rank=rank)
    for theta in iterates:
        s.collect(net_with(theta))
    theta32 = iterates.float().double()  # the model stores float32
    torch.testing.assert_close(s.mean, theta32.mean(0))
    torch.testing.assert_close(s.variance, theta32.var(0, unbiased=False), rtol=1e-5, atol=1e-6)
    assert len(s.deviations) == rank
    # the deviations are from the running mean at the time each iterate came in (Maddox et al.)
    torch.testing.assert_close(s.deviations[-1], theta32[-1] - theta32.mean(0))
    dev = torch.stack(s.deviations, 1)
    expected = torch.diag(s.variance) / 2 + dev @ dev.T / (2 * (rank - 1))
    draws = s.sample(50_000, generator=g).double()
    torch.testing.assert_close(draws.mean(0), s.mean, atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(draws.T), expected, atol=0.1, rtol=0.05)


def test_swag_errors():
    with pytest.raises(ValueError, match="rank"):
        swag.SWAG(5, rank=1)
    s = swag.SWAG(7, rank=3)
    with pytest.raises(RuntimeError, match="at least two"):
        s.sample(3)
    with pytest.raises(ValueError, match="7"):
        s.collect(mlp.PlainMLP([1, 3, 1]))


def test_fit_swag_collects_per_epoch_and_stays_near_the_mode():
    torch.manual_seed(1)
    x = torch.rand(64, 1)
    y = 2 * x + 0.1 * torch.randn(64, 1)
    model = mlp.PlainMLP([1, 8, 1], likelihood="gaussian", noise_std=0.1)
    obj = functools.partial(ensemble.map_objective, n_data=64, prior_sigma=1.0)
    s, _ = swag.fit_swag(model, obj, (x, y), epochs=6, lr=1e-3, rank=4, batch_size=16)
    assert s.n == 6 and len(s.deviations) == 4
    post = mcmc.NetworkPosterior([1, 8, 1], x, y, noise_std=0.1)
    draws = s.sample(50)
    assert post.predict(draws, x).shape == (50, 64, 1)


def test_map_objective_is_the_scaled_log_posterior():
    torch.manual_seed(2)
    model = mlp.PlainMLP([1, 4, 1], likelihood="gaussian", noise_std=0.3).double()
    x, y = torch.rand(10, 1, dtype=torch.float64), torch.randn(10, 1, dtype=torch.float64)
    post = mcmc.NetworkPosterior([1, 4, 1], x, y, noise_std=0.3, prior_sigma=0.7)
    out = ensemble.map_objective(model, x, y, n_data=10, prior_sigma=0.7)
    theta = mcmc.flatten(model).unsqueeze(0)
    const = post.dim * (math.log(0.7) + 0.5 * math.log(2 * math.pi)) / 10
    torch.testing.assert_close(out["loss"], -post.log_prob(theta)[0] / 10 - const)


def test_ensemble_predictive_is_mean_and_variance_of_members():
    members = [net_with(torch.full((7,), float(v))) for v in (0.5, 1.0, 2.0)]
    x = torch.tensor([[1.0], [2.0]])
    mean, var = ensemble.predictive(members, x)
    outs = torch.stack([m(x).detach() for m in members])
    torch.testing.assert_close(mean, outs.mean(0))
    torch.testing.assert_close(var, outs.var(0, unbiased=False))
    models, hist = ensemble.train_ensemble(
        lambda: mlp.PlainMLP([1, 3, 1], likelihood="gaussian"),
        mlp.nll_objective,
        (x, x),
        2,
        epochs=2,
        batch_size=2,
        progress=False,
    )
    assert len(models) == 2 and not torch.equal(mcmc.flatten(models[0]), mcmc.flatten(models[1]))
