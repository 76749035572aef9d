"""Tests of probdl.bbb_tools: Bayes by Backprop's hand-derived gradients (the total
derivative and the path-derivative form, against autograd) and pruning by
signal-to-noise ratio (against pruning at random)."""

import copy

import pytest
import torch
from torch.distributions import Normal

from probdl import bbb, bbb_tools, priors


def test_manual_gradient_matches_autograd():
    torch.manual_seed(0)
    x = torch.rand(16, 1)
    y = torch.sin(6 * x)
    model = bbb.BayesianMLP(
        [1, 7, 7, 1],
        priors.GaussianPrior(1.0),
        likelihood="gaussian",
        noise_std=0.2,
        parameterization="exp",
        init_sigma=0.1,
    ).double()
    x, y = x.double(), y.double()
    eps = [[torch.randn_like(mu) for mu, _ in layer.params()] for layer in model.layers]
    grads, value = bbb_tools.manual_gradients(model, x, y, n_data=100, eps=eps)
    # autograd through the same sample
    h = x
    log_q = log_p = 0.0
    for i, (layer, e) in enumerate(zip(model.layers, eps)):
        w, b = layer.sample_weights(e)
        log_q = log_q + sum(
            Normal(mu, s).log_prob(v).sum()
            for (mu, s), v in zip(layer.params(), (w, b))
        )
        log_p = (
            log_p
            + Normal(0.0, 1.0).log_prob(w).sum()
            + Normal(0.0, 1.0).log_prob(b).sum()
        )
        h = torch.nn.functional.linear(h, w, b)
        if i < 2:
            h = torch.relu(h)
    f = Normal(h, model.noise_std).log_prob(y).sum() * 100 / 16 + log_p - log_q
    torch.testing.assert_close(value, f.detach())
    auto = dict(
        zip(
            [n for n, _ in model.named_parameters()],
            torch.autograd.grad(f, list(model.parameters())),
        )
    )
    assert set(grads) == set(auto)
    for name in auto:
        torch.testing.assert_close(grads[name], auto[name], rtol=1e-8, atol=1e-10)
    # the hand formula without the +1 from log q (a typical slip) is wrong
    assert not torch.allclose(
        grads["layers.0.weight_log_sigma"] - 1.0, auto["layers.0.weight_log_sigma"]
    )


def test_snr_pruning_zeroes_the_lowest_fraction():
    torch.manual_seed(0)
    model = bbb.BayesianMLP([10, 20, 3], init_sigma=0.1)
    before = bbb_tools.snr(model)
    assert before.numel() == model.num_weights()
    pruned = copy.deepcopy(model)
    threshold = bbb_tools.prune_by_snr(pruned, 0.5)
    zeros = sum(
        (mu == 0).sum().item() for layer in pruned.layers for mu, _ in layer.params()
    )
    assert zeros == model.num_weights() // 2
    assert bbb_tools.prune_by_snr(copy.deepcopy(model), 0.0) == 0.0
    # the zeroed weights are exactly those with the lowest SNR
    was_zeroed = bbb_tools.snr(pruned) == 0
    assert (before[was_zeroed] <= threshold).all() and (
        before[~was_zeroed] > threshold
    ).all()
    # random pruning removes the same number, chosen by the generator, reproducibly
    r1, r2 = copy.deepcopy(model), copy.deepcopy(model)
    k = bbb_tools.prune_at_random(r1, 0.5, torch.Generator().manual_seed(1))
    bbb_tools.prune_at_random(r2, 0.5, torch.Generator().manual_seed(1))
    z1 = bbb_tools.snr(r1) == 0
    assert k == z1.sum().item() == model.num_weights() // 2
    assert torch.equal(z1, bbb_tools.snr(r2) == 0) and not torch.equal(z1, was_zeroed)
    with pytest.raises(ValueError, match="fraction"):
        bbb_tools.prune_at_random(r1, 1.0)


def test_path_derivative_is_autograd_with_q_stopped():
    """manual_gradients(path=True) is the exercise's bracket: autograd of log p(y|x,w) +
    log p(w) - log q(w; stop_gradient(mu, sigma)) through w = mu + sigma * eps (Roeder
    et al. 2017); it differs from the total derivative by the score of q."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(10, 1, generator=g, dtype=torch.float64)
    y = torch.sin(6 * x)
    model = bbb.BayesianMLP(
        [1, 6, 1],
        likelihood="gaussian",
        noise_std=0.3,
        parameterization="exp",
        init_sigma=0.2,
    ).double()
    eps = [
        [torch.randn(mu.shape, generator=g, dtype=mu.dtype) for mu, _ in layer.params()]
        for layer in model.layers
    ]
    total, _ = bbb_tools.manual_gradients(model, x, y, n_data=40, eps=eps)
    path, _ = bbb_tools.manual_gradients(model, x, y, n_data=40, eps=eps, path=True)
    h, f = x, 0.0
    for i, (layer, e) in enumerate(zip(model.layers, eps)):
        w = layer.sample_weights(e)
        for (mu, s), wi in zip(layer.params(), w):
            f = (
                f
                + model.prior.log_prob(wi).sum()
                - Normal(mu.detach(), s.detach()).log_prob(wi).sum()
            )
        h = torch.nn.functional.linear(h, *w)
        h = torch.relu(h) if i == 0 else h
    f = f + model.log_likelihood(h, y).sum() * 40 / 10
    auto = dict(
        zip(
            [n for n, _ in model.named_parameters()],
            torch.autograd.grad(f, list(model.parameters())),
        )
    )
    for name in auto:
        torch.testing.assert_close(path[name], auto[name], rtol=1e-8, atol=1e-10)
    for li, (layer, e) in enumerate(zip(model.layers, eps)):
        for kind, (mu, s), ei in zip(("weight", "bias"), layer.params(), e):
            torch.testing.assert_close(
                path[f"layers.{li}.{kind}_mu"] - total[f"layers.{li}.{kind}_mu"],
                ei / s.detach(),
            )
            torch.testing.assert_close(
                path[f"layers.{li}.{kind}_log_sigma"]
                - total[f"layers.{li}.{kind}_log_sigma"],
                ei**2 - 1,
            )


def test_pruning_refuses_a_fraction_of_one():
    with pytest.raises(ValueError, match="fraction"):
        bbb_tools.prune_by_snr(bbb.BayesianMLP([2, 3]), 1.0)
