"""Tests of probdl.priors: the scale-mixture prior's log density against its formula and
torch.distributions, and the checks of their scales."""

import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from probdl import priors


def test_scale_mixture_log_prob_against_formula_and_torch():
    prior = priors.ScaleMixturePrior(0.25, math.exp(-1), math.exp(-7))
    w = torch.linspace(-3, 3, 101, dtype=torch.float64)
    s1, s2 = math.exp(-1), math.exp(-7)
    direct = torch.log(
        0.25 * torch.exp(-(w**2) / (2 * s1**2)) / (s1 * math.sqrt(2 * math.pi))
        + 0.75 * torch.exp(-(w**2) / (2 * s2**2)) / (s2 * math.sqrt(2 * math.pi))
    )
    torch.testing.assert_close(prior.log_prob(w), direct)
    torch.testing.assert_close(prior.log_prob(w), prior.dist(w).log_prob(w))
    mix = MixtureSameFamily(
        Categorical(probs=torch.tensor([0.25, 0.75], dtype=torch.float64)),
        Normal(
            torch.zeros(2, dtype=torch.float64),
            torch.tensor([s1, s2], dtype=torch.float64),
        ),
    )
    torch.testing.assert_close(
        prior.log_prob(w.reshape(1, -1)), mix.log_prob(w.reshape(1, -1))
    )
    with pytest.raises(NotImplementedError, match="closed-form"):
        prior.kl(w, w.abs() + 1)


def test_gaussian_prior_against_torch_and_every_scale_checked():
    prior = priors.GaussianPrior(0.7)
    w = torch.linspace(-3, 3, 13, dtype=torch.float64)
    torch.testing.assert_close(prior.log_prob(w), Normal(0.0, 0.7).log_prob(w))
    mu, s = torch.tensor([0.3, -1.0]), torch.tensor([0.2, 1.5])
    ref = torch.distributions.kl_divergence(Normal(mu, s), Normal(0.0, 0.7))
    torch.testing.assert_close(prior.kl(mu, s), ref)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma must be a positive, finite"):
            priors.GaussianPrior(bad)
    with pytest.raises(ValueError, match="sigma2 must be"):
        priors.ScaleMixturePrior(0.5, 1.0, 0.0)
    with pytest.raises(ValueError, match="tensor of shape \\(2,\\)"):
        priors.positive("a scale", torch.ones(2))
    assert priors.positive("a scale", torch.tensor([2.5])) == 2.5
