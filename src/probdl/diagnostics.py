"""Diagnostics of Markov chains run as several chains: split-R-hat and the effective sample size,
classic (Gelman et al. 2013) and rank-normalized with bulk and tail variants (Vehtari et al.
2021, the estimators of Stan, ArviZ and posterior). Samples are shaped (n, chains, ...), as
:func:`probdl.mcmc.hmc` returns them; everything is computed per trailing element.

Vehtari et al. recommend R-hat (:func:`rhat`, the larger of the bulk and tail values) at most
1.01 and bulk and tail ESS (:func:`ess_bulk`, :func:`ess_tail`) at least 100 per chain before
the draws are trusted."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import ndtri
from scipy.stats import rankdata


def _array(x: torch.Tensor) -> tuple[np.ndarray, tuple]:
    """(n, chains, ...) -> float64 array (n, chains, K) and the trailing shape."""
    x = torch.as_tensor(x).detach().double().cpu().numpy()
    if x.ndim < 2 or x.shape[0] < 4:
        raise ValueError(f"need samples shaped (n >= 4, chains, ...); got {x.shape}")
    return x.reshape(x.shape[0], x.shape[1], -1), x.shape[2:]


def _split(a: np.ndarray) -> np.ndarray:
    """(n, m, K) -> (n // 2, 2 m, K): each chain cut into its first and last halves (the middle
    draw dropped when n is odd), so that a trend within a chain shows as disagreement."""
    half = a.shape[0] // 2
    return np.concatenate([a[:half], a[a.shape[0] - half :]], axis=1)


def _rank_normal(a: np.ndarray) -> np.ndarray:
    """Rank normalization: each draw replaced by Phi^-1((r - 3/8) / (S + 1/4)), r its rank among
    all S draws of its element (ties averaged)."""
    n, m, k = a.shape
    r = rankdata(a.reshape(n * m, k), method="average", axis=0)
    return ndtri((r - 0.375) / (n * m + 0.25)).reshape(n, m, k)


def _rhat(s: np.ndarray) -> np.ndarray:
    """R-hat of already split chains (n, m, K): sqrt(((n - 1) / n W + B / n) / W)."""
    n = s.shape[0]
    w = s.var(axis=0, ddof=1).mean(axis=0)
    b = n * s.mean(axis=0).var(axis=0, ddof=1)
    return np.sqrt(((n - 1) / n * w + b / n) / np.maximum(w, 1e-300))


def _autocov(s: np.ndarray) -> np.ndarray:
    """Autocovariance over axis 0 of (n, m, K) by FFT, (n, m, K), biased (divided by n)."""
    n = s.shape[0]
    c = s - s.mean(axis=0)
    f = np.fft.rfft(c, n=2 * n, axis=0)
    return np.fft.irfft(f * np.conj(f), n=2 * n, axis=0)[:n] / n


def _ess(s: np.ndarray) -> np.ndarray:
    """ESS of already split chains (n, m, K): n m / tau, tau = -1 + 2 sum of Geyer's initial
    monotone sequence of pair sums rho_2k + rho_2k+1 (truncated at the first pair that is not
    positive, whose even term is added when positive), as Stan computes it."""
    n, m, k = s.shape
    acov = _autocov(s)
    w = (acov[0] * n / (n - 1)).mean(axis=0)
    var_plus = (n - 1) / n * w + s.mean(axis=0).var(axis=0, ddof=1)
    rho = 1.0 - (w - acov.mean(axis=1)) / np.maximum(var_plus, 1e-300)  # (n, K)
    rho[0] = 1.0
    count = (n - 1) // 2  # the pairs (0, 1), (2, 3), ... that Stan's loop reaches
    out = np.empty(k)
    for j in range(k):
        if np.ptp(s[..., j]) < np.finfo(float).resolution:  # constant draws: as if independent
            out[j] = n * m
            continue
        pairs = rho[: 2 * count, j].reshape(-1, 2).sum(axis=1)
        bad = np.flatnonzero(pairs[1:] <= 0)
        stop = int(bad[0]) + 1 if len(bad) else count - 1
        tail = max(rho[2 * stop, j], 0.0)
        tau = -1.0 + 2.0 * np.minimum.accumulate(pairs[:stop]).sum() + tail
        out[j] = n * m / max(tau, 1.0 / np.log10(n * m))
    return out


def split_rhat(x: torch.Tensor) -> torch.Tensor:
    """Classic split-R-hat (Gelman et al. 2013, eq. 11.4) of samples (n, chains, ...) per trailing
    element: sqrt of the pooled variance estimate over the mean within-chain variance, each chain
    split in halves. Blind to chains that differ in scale only, and undefined without a finite
    variance; :func:`rhat` is the robust version."""
    a, shape = _array(x)
    return torch.from_numpy(_rhat(_split(a))).reshape(shape)


def ess(x: torch.Tensor) -> torch.Tensor:
    """Effective sample size of the draws themselves (the ESS of their mean: Stan's and ArviZ's
    ``method="mean"``), per trailing element of samples (n, chains, ...), from split chains."""
    a, shape = _array(x)
    return torch.from_numpy(_ess(_split(a))).reshape(shape)


def rhat(x: torch.Tensor) -> torch.Tensor:
    """Rank-normalized split-R-hat (Vehtari et al. 2021), per trailing element of
    samples (n, chains, ...): the larger of the bulk R-hat (split-R-hat of the
    rank-normalized draws) and the tail R-hat (the same of the draws folded about their
    median, |theta - median|), so that chains differing in location or in scale both
    show. Trust the draws below 1.01."""
    a, shape = _array(x)
    s = _split(a)
    bulk = _rhat(_rank_normal(s))
    tail = _rhat(_rank_normal(np.abs(s - np.median(s, axis=(0, 1)))))
    return torch.from_numpy(np.maximum(bulk, tail)).reshape(shape)


def ess_bulk(x: torch.Tensor) -> torch.Tensor:
    """Bulk effective sample size (Vehtari et al. 2021): the ESS of the rank-normalized split
    chains, per trailing element of samples (n, chains, ...); defined for any distribution."""
    a, shape = _array(x)
    return torch.from_numpy(_ess(_rank_normal(_split(a)))).reshape(shape)


def ess_tail(x: torch.Tensor, prob: float = 0.05) -> torch.Tensor:
    """Tail effective sample size (Vehtari et al. 2021): the smaller ESS of the indicators
    I(theta <= q) at the ``prob`` and 1 - ``prob`` quantiles of the pooled draws, per trailing
    element of samples (n, chains, ...): how well the chains pin down the central interval."""
    a, shape = _array(x)
    lo, hi = np.quantile(a, [prob, 1 - prob], axis=(0, 1))
    ess_lo, ess_hi = (_ess(_split((a <= q).astype(float))) for q in (lo, hi))
    return torch.from_numpy(np.minimum(ess_lo, ess_hi)).reshape(shape)


def convergence(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """``rhat``, ``ess_bulk`` and ``ess_tail`` of samples (n, chains, ...), one tensor each."""
    return dict(rhat=rhat(x), ess_bulk=ess_bulk(x), ess_tail=ess_tail(x))
