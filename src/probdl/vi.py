"""Variational-inference helpers every model chapter reuses.

Gaussian KL in closed form, the reparameterized sampler, and a numerically stable log-mean-exp.
The ELBO chapters derive each of these and test them in ``tests/test_vi.py``.
"""
from __future__ import annotations

import math

import torch


def kl_normal(mu_q: torch.Tensor, sigma_q: torch.Tensor, mu_p=0.0, sigma_p=1.0) -> torch.Tensor:
    """Elementwise KL( N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2) ) in nats:

    log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2.

    Sum over the last dimension for a diagonal Gaussian. Scales must be positive.
    """
    mu_q, sigma_q = torch.as_tensor(mu_q), torch.as_tensor(sigma_q)
    mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype, device=mu_q.device)
    sigma_p = torch.as_tensor(sigma_p, dtype=mu_q.dtype, device=mu_q.device)
    if (sigma_q <= 0).any() or (sigma_p <= 0).any():
        raise ValueError("kl_normal needs positive standard deviations")
    var_ratio = (sigma_q / sigma_p) ** 2
    return 0.5 * (var_ratio + ((mu_q - mu_p) / sigma_p) ** 2 - 1.0 - torch.log(var_ratio))


def reparameterize(mu: torch.Tensor, sigma: torch.Tensor, n: int | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw z = mu + sigma * eps with eps ~ N(0, I), differentiable in mu and sigma.

    With ``n`` given, returns ``n`` draws stacked in a new leading dimension."""
    shape = torch.broadcast_shapes(mu.shape, sigma.shape)
    if n is not None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        shape = (n, *shape)
    eps = torch.randn(shape, dtype=mu.dtype, device=mu.device, generator=generator)
    return mu + sigma * eps


def log_mean_exp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log( mean_i exp(x_i) ) along ``dim``, without overflow (logsumexp - log n)."""
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])
