"""Scores of probabilistic predictions that several chapters compare methods by: entropy,
negative log-likelihood, Brier score, expected calibration error (ECE) and the reliability
curve behind it, and classification error. Inputs are class probabilities (N, C) and int64
labels (N,); outputs are plain floats (or tensors where a per-example value is asked for)."""

from __future__ import annotations

import torch


def _check(probs: torch.Tensor, y: torch.Tensor | None = None) -> None:
    if probs.dim() != 2:
        raise ValueError(f"probs must be (N, C) class probabilities, got shape {tuple(probs.shape)}")
    if y is not None and (y.dtype != torch.long or y.shape != probs.shape[:1]):
        raise ValueError(f"labels must be int64 of shape ({probs.shape[0]},), got {y.dtype} {tuple(y.shape)}")


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of class probabilities."""
    return -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1)


def nll(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean negative log-probability of the true labels, in nats."""
    _check(probs, y)
    return -torch.log(probs.gather(1, y[:, None]).clamp_min(1e-30)).mean().item()


def brier(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared distance between the probabilities and the one-hot labels (summed over classes)."""
    _check(probs, y)
    onehot = torch.nn.functional.one_hot(y, probs.shape[1]).to(probs.dtype)
    return ((probs - onehot) ** 2).sum(-1).mean().item()


def error(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Classification error in percent (argmax of the probabilities)."""
    _check(probs, y)
    return 100.0 * (probs.argmax(-1) != y).float().mean().item()


def reliability(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> dict[str, torch.Tensor]:
    """The reliability curve: examples binned by confidence (the top probability) into
    ``n_bins`` equal-width bins of [0, 1]; per bin the mean confidence, the accuracy and the
    count (empty bins have count 0 and NaN means)."""
    _check(probs, y)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf, pred = probs.max(-1)
    correct = (pred == y).double()
    idx = torch.clamp((conf.double() * n_bins).long(), max=n_bins - 1)
    count = torch.bincount(idx, minlength=n_bins).double()
    conf_sum = torch.bincount(idx, weights=conf.double(), minlength=n_bins)
    acc_sum = torch.bincount(idx, weights=correct, minlength=n_bins)
    nan = torch.full_like(count, float("nan"))
    return {
        "confidence": torch.where(count > 0, conf_sum / count.clamp_min(1), nan),
        "accuracy": torch.where(count > 0, acc_sum / count.clamp_min(1), nan),
        "count": count,
        "edges": torch.linspace(0, 1, n_bins + 1, dtype=torch.float64),
    }


def ece(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error (Naeini et al. 2015; Guo et al. 2017): the count-weighted mean
    over confidence bins of |accuracy - mean confidence|, as a fraction in [0, 1]."""
    r = reliability(probs, y, n_bins)
    used = r["count"] > 0
    gap = (r["accuracy"][used] - r["confidence"][used]).abs()
    return float((gap * r["count"][used]).sum() / r["count"].sum())


def calibration_table(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> dict[str, float]:
    """Error (%), NLL (nats), Brier score and ECE of one set of predictions, as a dict of floats."""
    return {
        "error": error(probs, y),
        "nll": nll(probs, y),
        "brier": brier(probs, y),
        "ece": ece(probs, y, n_bins),
    }
