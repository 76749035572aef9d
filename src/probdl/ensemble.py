"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017): several networks trained from
different random initialisations and minibatch orders, their predictions averaged, and the
maximum-a-posteriori objective they (and SWAG) train with."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from . import train


def map_objective(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, n_data: int, prior_sigma: float
) -> dict:
    """The negative log posterior per training example, -(1/N) [sum_batch (N/B) log p(y|x,w)
    + log N(w; 0, prior_sigma^2 I)] up to a constant: the mean NLL plus weight decay
    |w|^2 / (2 prior_sigma^2 N), over the network's ``layers`` (not its noise scale)."""
    ll = model.log_likelihood(model(x), y).mean()
    sq = sum((p * p).sum() for p in model.layers.parameters())
    penalty = sq / (2 * prior_sigma**2 * n_data)
    return {"loss": -ll + penalty, "log_lik": ll, "penalty": penalty}


def train_ensemble(
    make_model: Callable[[], nn.Module],
    objective,
    data: Sequence[torch.Tensor],
    n_members: int,
    *,
    seed: int = 0,
    **fit_options,
) -> tuple[list[nn.Module], list[train.History]]:
    """``n_members`` networks, member i built by ``make_model()`` after ``torch.manual_seed(seed + i)``
    and trained by ``train.fit(model, objective, data, **fit_options)`` with its own minibatch
    order. Returns the models (in eval mode) and their histories."""
    if n_members < 1:
        raise ValueError(f"n_members must be >= 1, got {n_members}")
    models, histories = [], []
    for i in range(n_members):
        torch.manual_seed(seed + i)
        model = make_model()
        g = torch.Generator().manual_seed(seed + i)
        histories.append(train.fit(model, objective, data, generator=g, **fit_options))
        models.append(model.eval())
    return models, histories


@torch.no_grad()
def predictive(models: Sequence[nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ensemble's predictive mean and variance of f(x): the mean and (population) variance of
    the members' outputs, each in eval mode. For regression with a shared noise scale s the
    predictive of y adds s^2; for classification the outputs are softmax probabilities."""
    outs = []
    for model in models:
        with train.evaluating(model):
            out = model(x)
        if getattr(model, "likelihood", "gaussian") == "categorical":
            out = torch.softmax(out, -1)
        outs.append(out.double())
    outs = torch.stack(outs)
    return outs.mean(0).float(), outs.var(0, unbiased=False).float()
