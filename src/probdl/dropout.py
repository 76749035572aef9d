"""Dropout as variational inference (Gal & Ghahramani 2016; Kingma, Salimans & Welling 2015;
Molchanov, Ashukha & Vetrov 2017).

``mc_predict(model, x, n_samples)``: Monte Carlo dropout, the predictive of a network trained
with dropout, with dropout kept on at test time.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


@contextlib.contextmanager
def dropout_on(model: nn.Module):
    """Eval mode for everything but the dropout layers (and ``PlainMLP``'s functional dropout,
    which follows the model's ``training`` flag); restores every module's mode on leaving."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    for m in model.modules():
        if (
            isinstance(m, nn.modules.dropout._DropoutNd)
            or getattr(m, "dropout", 0)
            or getattr(m, "input_dropout", 0)
        ):
            m.train()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.training = mode


@torch.no_grad()
def mc_predict(
    model: nn.Module, x: torch.Tensor, n_samples: int = 100, *, generator: torch.Generator | None = None
):
    """MC dropout: ``n_samples`` forward passes with dropout on. Regression
    (``model.likelihood == "gaussian"``): the mean and variance of the outputs (epistemic part;
    add ``model.noise_std**2`` for the full predictive variance). Classification: the mean class
    probabilities. ``generator`` seeds the dropout masks (through torch's global generator, which
    is restored afterwards)."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    state = torch.random.get_rng_state() if generator is not None else None
    if generator is not None:
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    try:
        with dropout_on(model):
            outs = torch.stack([model(x) for _ in range(n_samples)]).double()
    finally:
        if state is not None:
            torch.random.set_rng_state(state)
    if getattr(model, "likelihood", "gaussian") == "categorical":
        return torch.softmax(outs, -1).mean(0).float()
    return outs.mean(0).float(), outs.var(0, unbiased=False).float()
