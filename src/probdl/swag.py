"""SWAG, stochastic weight averaging Gaussian (Maddox et al. 2019): from a trained network, run
SGD with a constant learning rate and fit a Gaussian to the iterates, with a diagonal plus
low-rank covariance

    N(theta_swa, Sigma_diag / 2 + D D^T / (2 (K - 1))),

where theta_swa is the running mean of the iterates, Sigma_diag = mean(theta^2) - theta_swa^2
their diagonal variance and D the last K deviations theta_i - theta_swa (as columns).
Weights are flat vectors in the layout of :func:`probdl.mcmc.flatten` (the network's ``layers``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import train
from .mcmc import flatten


class SWAG:
    """The running moments of SGD iterates and the Gaussian they define. ``collect(model)`` adds
    the model's current weights; ``sample(n)`` draws flat weight vectors (n, dim)."""

    def __init__(self, dim: int, rank: int = 20):
        if rank < 2:
            raise ValueError(f"rank must be >= 2 (the low-rank part divides by K - 1), got {rank}")
        self.dim, self.rank, self.n = dim, rank, 0
        self.mean = torch.zeros(dim, dtype=torch.float64)
        self.sq_mean = torch.zeros(dim, dtype=torch.float64)
        self.deviations: list[torch.Tensor] = []

    def collect(self, model: nn.Module) -> None:
        theta = flatten(model).double()
        if theta.shape != (self.dim,):
            raise ValueError(f"the model has {theta.numel()} weights; this SWAG was made for {self.dim}")
        self.n += 1
        self.mean += (theta - self.mean) / self.n
        self.sq_mean += (theta * theta - self.sq_mean) / self.n
        self.deviations = (self.deviations + [theta - self.mean])[-self.rank :]

    @property
    def variance(self) -> torch.Tensor:
        """The diagonal part Sigma_diag, clamped at zero against round-off."""
        return (self.sq_mean - self.mean**2).clamp_min(0.0)

    def sample(self, n: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
        """``n`` flat weight vectors from N(theta_swa, scale * Sigma) (float32,
        shape (n, dim))."""
        k = len(self.deviations)
        if k < 2:
            raise RuntimeError("collect at least two iterates before sampling")
        z1 = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        z2 = torch.randn(n, k, generator=generator, dtype=torch.float64)
        dev = torch.stack(self.deviations, 1)  # (dim, K)
        diag = self.variance.sqrt() * z1 / math.sqrt(2)
        low = z2 @ dev.T / math.sqrt(2 * (k - 1))
        return (self.mean + math.sqrt(scale) * (diag + low)).float()


def fit_swag(
    model: nn.Module,
    objective,
    data,
    *,
    epochs: int,
    lr: float,
    rank: int = 20,
    momentum: float = 0.9,
    batch_size: int = 100,
    generator: torch.Generator | None = None,
) -> tuple[SWAG, train.History]:
    """Run SGD (constant ``lr``, ``momentum``) on ``objective`` from ``model``'s current (trained)
    weights for ``epochs`` epochs and collect the weights once per epoch. Returns the
    :class:`SWAG` posterior and the last epoch's history; ``model`` ends at the last iterate."""
    swag = SWAG(flatten(model).numel(), rank)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    history = None
    for _ in range(epochs):
        history = train.fit(
            model,
            objective,
            data,
            epochs=1,
            batch_size=batch_size,
            optimizer=optimizer,
            progress=False,
            generator=generator,
        )
        swag.collect(model)
    return swag, history
