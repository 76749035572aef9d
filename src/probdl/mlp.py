"""The plain (non-Bayesian) multilayer perceptron that several chapters use as a baseline or as
the network under an approximate posterior (Laplace, HMC, ensembles, MC dropout), its likelihoods,
and its maximum-likelihood objective."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from .priors import positive


def check_sizes(sizes) -> list[int]:
    sizes = list(sizes)
    if len(sizes) < 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise ValueError(f"sizes must be at least two positive ints (input, ..., output); got {sizes}")
    return sizes


def log_likelihood(out: torch.Tensor, y: torch.Tensor, likelihood: str, noise_std=None) -> torch.Tensor:
    """Per-example log p(y | x, w) from a network's output ``out``: ``"categorical"`` (``out``
    are logits, ``y`` int64 labels) or ``"gaussian"`` (``out`` is the mean of N(y; out,
    noise_std^2), summed over output dimensions)."""
    if likelihood == "categorical":
        if y.dtype != torch.long or y.shape != out.shape[:1]:
            raise ValueError(
                f"categorical labels must be int64 of shape ({out.shape[0]},); got {y.dtype} {tuple(y.shape)}"
            )
        return -F.cross_entropy(out, y, reduction="none")
    if y.shape != out.shape:
        raise ValueError(
            f"gaussian targets must have the output's shape {tuple(out.shape)}; got {tuple(y.shape)}"
        )
    return Normal(out, noise_std).log_prob(y).sum(-1)


def check_likelihood(likelihood: str) -> str:
    if likelihood not in ("categorical", "gaussian"):
        raise ValueError(f"likelihood must be 'categorical' or 'gaussian', got {likelihood!r}")
    return likelihood


class PlainMLP(nn.Module):
    """The non-Bayesian baseline: the same architecture with point weights, optional dropout
    (Srivastava et al. 2014) on the hidden units (and ``input_dropout`` on the inputs), and for
    regression a Gaussian likelihood whose noise scale ``learn_noise`` fits by maximum likelihood."""

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        activation=F.relu,
        likelihood: str = "categorical",
        noise_std: float = 0.1,
        learn_noise: bool = False,
    ):
        super().__init__()
        sizes = check_sizes(sizes)
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must lie in [0, 1); got {p}")
        check_likelihood(likelihood)
        self.sizes, self.likelihood, self.activation = sizes, likelihood, activation
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout, self.input_dropout = dropout, input_dropout
        log_noise = torch.tensor(math.log(positive("noise_std", noise_std)))
        if learn_noise:
            self.log_noise = nn.Parameter(log_noise)
        else:
            self.register_buffer("log_noise", log_noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, self.input_dropout, self.training)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.dropout(self.activation(x), self.dropout, self.training)
        return x

    def log_likelihood(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example log p(y | x, w) from the network's output (see :func:`log_likelihood`)."""
        return log_likelihood(out, y, self.likelihood, self.noise_std)

    @property
    def noise_std(self) -> torch.Tensor:
        return self.log_noise.exp()


def nll_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The plain networks' objective: the mean negative log-likelihood (cross-entropy or the
    Gaussian NLL), for ``probdl.train.fit``."""
    ll = model.log_likelihood(model(x), y).mean()
    return {"loss": -ll, "log_lik": ll}
