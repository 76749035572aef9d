"""Binary data for the tests of NADE and its baselines: every binary vector of a
length, a seeded random binary matrix, and a Bernoulli log-probability by hand."""

import itertools

import torch


def all_binary(d, dtype=torch.float64):
    """All 2^d binary vectors of length d, one per row."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)), dtype=dtype)


def random_binary(n, d, seed=1, dtype=torch.float64):
    """n binary vectors of length d, each pixel on with probability 0.4."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g) < 0.4).to(dtype)


def bernoulli_logp(p, v):
    """log p if v == 1, else log(1 - p)."""
    return torch.log(p) if v == 1 else torch.log1p(-p)
