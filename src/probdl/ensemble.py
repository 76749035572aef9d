"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017): several networks trained from
different random initialisations and minibatch orders (each with
:func:`probdl.mlp.map_objective`), their predictions averaged."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from . import mlp, train
from .predictive import moments


def map_objective(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, n_data: int, prior_sigma: float
) -> dict:
    """Kept for one release: :func:`probdl.mlp.map_objective` with the prior's precision
    1 / prior_sigma^2."""
    return mlp.map_objective(model, x, y, n_data=n_data, prior_precision=prior_sigma**-2)


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
        outs.append(out)
    return moments(torch.stack(outs).float())
