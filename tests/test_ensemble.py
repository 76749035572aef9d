"""Tests of probdl.ensemble: the MAP objective its members train with (the scaled log
posterior) and its predictive, the moments of its members' outputs (probabilities for a
classifier)."""

import math

import torch

from probdl import ensemble, mcmc, mlp


def net_with(theta: torch.Tensor) -> mlp.PlainMLP:
    """A 1-2-1 network whose seven parameters are ``theta``."""
    model = mlp.PlainMLP([1, 2, 1], likelihood="gaussian")
    torch.nn.utils.vector_to_parameters(theta.float(), model.layers.parameters())
    return model


def test_map_objective_is_the_scaled_log_posterior():
    torch.manual_seed(2)
    model = mlp.PlainMLP([1, 4, 1], likelihood="gaussian", noise_std=0.3).double()
    x, y = (
        torch.rand(10, 1, dtype=torch.float64),
        torch.randn(10, 1, dtype=torch.float64),
    )
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
    assert len(models) == 2 and not torch.equal(
        mcmc.flatten(models[0]), mcmc.flatten(models[1])
    )


def test_ensemble_predictive_averages_probabilities_for_classification():
    """For classifiers the members' probabilities are averaged, not their logits."""
    torch.manual_seed(0)
    members = [mlp.PlainMLP([3, 8, 4]) for _ in range(3)]
    x = torch.randn(5, 3)
    mean, var = ensemble.predictive(members, x)
    probs = torch.stack([torch.softmax(m(x).detach(), -1) for m in members])
    torch.testing.assert_close(mean, probs.mean(0))
    torch.testing.assert_close(mean.sum(-1), torch.ones(5))
    torch.testing.assert_close(var, probs.var(0, unbiased=False))
