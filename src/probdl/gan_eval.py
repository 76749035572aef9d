"""How to score a generative adversarial network (Goodfellow et al. 2014) and any implicit
model, the evaluation half of chapter ``book/10_gan.ipynb`` (:mod:`probdl.gan` holds the
models and the game):

* Known densities: :func:`optimal_discriminator`, :func:`value_by_quadrature`,
  :func:`jensen_shannon` (the identities of the paper's Theorem 1, on a grid).
* Toy data and scores: :func:`ring_of_gaussians`, :func:`mode_coverage`.
* Scores of samples: :func:`parzen_log_likelihood` (the Parzen-window estimate of the paper's
  Table 1), :func:`select_parzen_sigma`, :func:`frechet_distance` (the squared 2-Wasserstein
  distance between fitted Gaussians, as pytorch-fid computes it), :func:`mlp_features`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn


def optimal_discriminator(log_p_data: torch.Tensor, log_p_g: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) from the two log densities at the same
    points, computed as sigmoid(log p_data - log p_g) (stable where both densities are
    tiny)."""
    return torch.sigmoid(log_p_data - log_p_g)


def _trapezoid(y: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return torch.trapezoid(y, grid)


def value_by_quadrature(
    d: torch.Tensor, log_p_data: torch.Tensor, log_p_g: torch.Tensor, grid: torch.Tensor
) -> torch.Tensor:
    """V(D, G) = int p_data log D + p_g log(1 - D) dx by the trapezoid rule on a 1-D ``grid``,
    given D and both log densities on it."""
    eps = torch.finfo(d.dtype).tiny
    f = log_p_data.exp() * torch.log(d.clamp_min(eps)) + log_p_g.exp() * torch.log((1 - d).clamp_min(eps))
    return _trapezoid(f, grid)


def jensen_shannon(log_p: torch.Tensor, log_q: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """JSD(p || q) = KL(p || m)/2 + KL(q || m)/2 with m = (p + q)/2, in nats, by the
    trapezoid rule on a 1-D ``grid`` from both log densities on it."""
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    kl_p = _trapezoid(log_p.exp() * (log_p - log_m), grid)
    kl_q = _trapezoid(log_q.exp() * (log_q - log_m), grid)
    return 0.5 * (kl_p + kl_q)


# --- toy data and mode coverage ------------------------------------------------------------


def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The (modes, 2) centres of the ring, evenly spaced on a circle of ``radius``."""
    angle = torch.arange(modes, dtype=torch.float32) * (2 * math.pi / modes)
    return radius * torch.stack([angle.cos(), angle.sin()], dim=1)


def ring_of_gaussians(
    n: int, modes: int = 8, radius: float = 2.0, std: float = 0.05, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n points from an equal mixture of ``modes`` isotropic Gaussians (``std``) on a ring."""
    idx = torch.randint(modes, (n,), generator=generator)
    return ring_centers(modes, radius)[idx] + std * torch.randn(n, 2, generator=generator)


def mode_coverage(
    samples: torch.Tensor, centers: torch.Tensor, std: float, n_std: float = 3.0, min_share: float = 0.01
) -> dict[str, float]:
    """How well 2-D samples cover the modes: ``near`` = the share of samples within ``n_std``
    standard deviations of their nearest centre; ``modes_hit`` = the share of centres that
    receive at least ``min_share`` of the samples as near ones; ``counts`` per centre."""
    dist = torch.cdist(samples.float(), centers.float())
    d_min, nearest = dist.min(dim=1)
    near = d_min <= n_std * std
    counts = torch.bincount(nearest[near], minlength=len(centers))
    hit = counts >= min_share * len(samples)
    return {"near": float(near.float().mean()), "modes_hit": float(hit.float().mean()), "counts": counts}


# --- scores of samples --------------------------------------------------------------------------


def _parzen(samples: torch.Tensor, x: torch.Tensor, sigmas: Sequence[float], batch_size: int) -> torch.Tensor:
    """Mean Parzen log-likelihood of the rows of ``x`` for every bandwidth in ``sigmas``
    (float64); the squared distances of each block of ``x`` to all samples are computed
    once."""
    if samples.dim() != 2 or x.dim() != 2 or samples.shape[1] != x.shape[1]:
        raise ValueError(
            "samples and x must be (n, d) and (m, d) with the same d; "
            f"got {tuple(samples.shape)} and {tuple(x.shape)}"
        )
    if len(sigmas) == 0 or not all(s > 0 for s in sigmas):
        raise ValueError(f"give at least one bandwidth, every one positive; got {list(sigmas)}")
    s = samples.double()
    n, d = s.shape
    sig = torch.tensor([float(v) for v in sigmas], dtype=torch.float64, device=s.device)
    const = -math.log(n) - 0.5 * d * torch.log(2 * math.pi * sig**2)  # (n_sigmas,)
    s_sq = (s**2).sum(1)
    total = torch.zeros(len(sig), dtype=torch.float64, device=s.device)
    for xb in x.double().to(s.device).split(batch_size):
        sq = ((xb**2).sum(1, keepdim=True) + s_sq - 2 * xb @ s.T).clamp_min(0)  # (b, n)
        for j, v in enumerate(sig):
            total[j] += (torch.logsumexp(-sq / (2 * v**2), dim=1) + const[j]).sum()
    return total / len(x)


def parzen_log_likelihood(
    samples: torch.Tensor, x: torch.Tensor, sigma: float, batch_size: int = 100
) -> torch.Tensor:
    """The mean over the rows of ``x`` of log p_hat(x), where p_hat = (1/n) sum_i N(x; s_i,
    sigma^2 I) is the Gaussian kernel density estimate on the n rows of ``samples``; computed in
    float64, ``batch_size`` rows of ``x`` at a time, with log-sum-exp. Returns a 0-d tensor."""
    return _parzen(samples, x, [sigma], batch_size)[0]


def select_parzen_sigma(
    samples: torch.Tensor, x_valid: torch.Tensor, sigmas: Sequence[float], batch_size: int = 100
) -> tuple[float, dict[float, float]]:
    """The bandwidth of ``sigmas`` with the highest Parzen log-likelihood of ``x_valid`` (the
    paper's procedure), and the score of every candidate."""
    values = _parzen(samples, x_valid, list(sigmas), batch_size)
    scores = {float(s): float(v) for s, v in zip(sigmas, values)}
    return max(scores, key=scores.get), scores


def _mean_cov(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features.detach().cpu() if torch.is_tensor(features) else features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must be (n, d) with n >= 2, got shape {f.shape}")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))  # unbiased (n - 1), as pytorch-fid


def frechet_distance(features_a, features_b) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets (n, d), which
    is the *squared* 2-Wasserstein distance W_2^2 between the two Gaussians (squared
    feature units): ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), with unbiased
    covariances as pytorch-fid computes them. The trace of the square root is taken from
    the eigenvalues of the symmetric S_a^(1/2) S_b S_a^(1/2), which has the same
    spectrum as S_a S_b."""
    mu_a, cov_a = _mean_cov(features_a)
    mu_b, cov_b = _mean_cov(features_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"the feature sets differ in dimension: {mu_a.shape[0]} and {mu_b.shape[0]}")
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(w.clip(min=0))) @ v.T
    middle = root_a @ cov_b @ root_a
    tr_sqrt = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)


@torch.no_grad()
def mlp_features(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The last hidden layer's activations of a :class:`probdl.mlp.PlainMLP` (every layer but the
    output one, with its activation), in eval mode: the feature space of a Fréchet distance
    (squared 2-Wasserstein)."""
    was = model.training
    model.eval()
    out = []
    try:
        for xb in x.split(batch_size):
            h = xb
            for layer in model.layers[:-1]:
                h = model.activation(layer(h))
            out.append(h)
    finally:
        model.train(was)
    return torch.cat(out)
