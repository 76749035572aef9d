"""Diagnostics of Markov chains run as several chains: split-R-hat and the effective sample size
(Gelman et al. 2013; Vehtari et al. 2021). Samples are shaped (n, chains, ...), as
:func:`probdl.mcmc.hmc` returns them; both are computed per trailing element."""

from __future__ import annotations

import numpy as np
import torch


def _split(x: torch.Tensor) -> np.ndarray:
    """(n, chains, ...) -> (n // 2, 2 chains, K) float64: each chain cut into two halves."""
    x = torch.as_tensor(x).detach().double().cpu().numpy()
    if x.ndim < 2 or x.shape[0] < 4:
        raise ValueError(f"need samples shaped (n >= 4, chains, ...); got {x.shape}")
    n = x.shape[0] // 2
    x = x[: 2 * n].reshape(2 * n, x.shape[1], -1)
    return np.concatenate([x[:n], x[n:]], axis=1)


def split_rhat(x: torch.Tensor) -> torch.Tensor:
    """Split-R-hat (Gelman et al. 2013, eq. 11.4) of samples (n, chains, ...) per trailing element:
    sqrt of the pooled variance estimate over the mean within-chain variance, each chain split
    in halves. Near 1 when the chains agree; above about 1.01-1.1 they have not mixed."""
    s = _split(x)
    n = s.shape[0]
    w = s.var(axis=0, ddof=1).mean(axis=0)
    b = n * s.mean(axis=0).var(axis=0, ddof=1)
    var_plus = (n - 1) / n * w + b / n
    out = np.sqrt(var_plus / np.maximum(w, 1e-300))
    return torch.from_numpy(out).reshape(torch.as_tensor(x).shape[2:])


def _autocov(s: np.ndarray) -> np.ndarray:
    """Autocovariance over axis 0 of (n, m, K) by FFT, (n, m, K), biased (divided by n)."""
    n = s.shape[0]
    c = s - s.mean(axis=0)
    f = np.fft.rfft(c, n=2 * n, axis=0)
    return np.fft.irfft(f * np.conj(f), axis=0)[:n] / n


def ess(x: torch.Tensor) -> torch.Tensor:
    """Effective sample size of samples (n, chains, ...) per trailing element, from split chains
    and Geyer's initial monotone sequence of summed autocorrelation pairs (Gelman et al. 2013,
    section 11.5; Stan's estimator without rank normalisation)."""
    s = _split(x)
    n, m, k = s.shape
    acov = _autocov(s)
    w = (acov[0] * n / (n - 1)).mean(axis=0)
    var_plus = (n - 1) / n * w + s.mean(axis=0).var(axis=0, ddof=1)
    rho = 1.0 - (w - acov.mean(axis=1)) / np.maximum(var_plus, 1e-300)  # (n, K)
    rho[0] = 1.0
    out = np.empty(k)
    for j in range(k):
        pairs = rho[: 2 * (n // 2), j].reshape(-1, 2).sum(axis=1)
        stop = np.argmax(pairs <= 0) if (pairs <= 0).any() else len(pairs)
        pairs = np.minimum.accumulate(pairs[:stop])
        tau = -1.0 + 2.0 * pairs.sum()
        out[j] = n * m / max(tau, 1.0 / np.log10(n * m))
    return torch.from_numpy(out).reshape(torch.as_tensor(x).shape[2:])
