"""probdl.metrics against direct computations."""

import math

import pytest
import torch

from probdl import metrics


def probs_and_labels(n=2000, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2 * torch.randn(n, c, generator=g, dtype=torch.float64), -1)
    y = torch.multinomial(probs, 1, generator=g).squeeze(
        1
    )  # labels drawn from the probabilities
    return probs, y


def test_nll_brier_error_against_direct_sums():
    probs, y = probs_and_labels()
    nll = -sum(math.log(probs[i, y[i]]) for i in range(len(y))) / len(y)
    brier = sum(
        ((probs[i] - torch.eye(5, dtype=probs.dtype)[y[i]]) ** 2).sum().item()
        for i in range(len(y))
    ) / len(y)
    assert metrics.nll(probs, y) == pytest.approx(nll, rel=1e-9)
    assert metrics.brier(probs, y) == pytest.approx(brier, rel=1e-9)
    assert metrics.error(probs, y) == pytest.approx(
        100 * (probs.argmax(1) != y).double().mean().item()
    )


def test_ece_is_small_for_calibrated_and_large_for_overconfident_predictions():
    probs, y = probs_and_labels(n=20_000)
    assert (
        metrics.ece(probs, y) < 0.02
    )  # labels drawn from the probabilities: calibrated
    sharp = torch.softmax(
        10 * torch.log(probs), -1
    )  # the same argmax, far more confident
    assert metrics.ece(sharp, y) > 0.1


def test_ece_against_a_hand_computed_example():
    probs = torch.tensor(
        [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], dtype=torch.float64
    )
    y = torch.tensor([0, 1, 1, 0])
    # bins of width 0.5: confidences 0.9, 0.8, 0.7, 0.6 all in [0.5, 1): accuracy 3/4,
    # mean conf 0.75
    assert metrics.ece(probs, y, n_bins=2) == pytest.approx(0.0)
    # ten bins: each example alone; |acc - conf| = 0.1, 0.8, 0.3, 0.4
    assert metrics.ece(probs, y, n_bins=10) == pytest.approx(
        (0.1 + 0.8 + 0.3 + 0.4) / 4
    )


def test_reliability_counts_and_entropy():
    probs, y = probs_and_labels()
    r = metrics.reliability(probs, y, n_bins=10)
    assert r["count"].sum() == len(y) and r["edges"].shape == (11,)
    uniform = torch.full((3, 4), 0.25)
    torch.testing.assert_close(metrics.entropy(uniform), torch.full((3,), math.log(4)))


def test_metrics_reject_wrong_shapes():
    with pytest.raises(ValueError, match="int64"):
        metrics.nll(torch.full((3, 2), 0.5), torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        metrics.ece(torch.full((3,), 0.5), torch.tensor([0, 1, 0]))
