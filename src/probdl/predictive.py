"""Monte Carlo predictive moments and test error of a network whose forward pass may be random
(Bayes by Backprop's weight sampling, dropout kept on, variational dropout's weight noise) or
deterministic (a plain network in eval mode, or a Bayesian network's mean network)."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .bbb import mean_network, sampling_mode
from .mlp import MLPBase


def sampling_network(model: nn.Module):
    """Context manager: every Bayesian layer samples its weights, the model is in eval mode (so a
    plain network's dropout is off); the flags and the mode are restored on leaving, also after an
    error (:func:`probdl.bbb.sampling_mode` with ``sample=True``)."""
    return sampling_mode(model, True)


@contextlib.contextmanager
def dropout_on(model: nn.Module):
    """Context manager: eval mode for everything but the dropout layers (``PlainMLP``'s
    functional dropout, which follows the model's ``training`` flag, ``nn.Dropout``,
    and layers that sample in training mode, such as variational dropout's); restores
    every module's mode on leaving."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    for m in model.modules():
        if (
            isinstance(m, nn.modules.dropout._DropoutNd)
            or getattr(m, "samples_in_training", False)
            or getattr(m, "dropout", 0)
            or getattr(m, "input_dropout", 0)
        ):
            m.train()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.training = mode


def _moments(
    model: nn.Module, xb: torch.Tensor, n_samples: int, generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance over ``n_samples`` forward passes, accumulated as deviations from the
    first draw (the shifted-data algorithm): accurate, and exactly zero variance for a
    deterministic network."""
    s1 = s2 = shift = 0.0
    kw = {} if generator is None else {"generator": generator}
    for i in range(n_samples):
        out = model(xb, **kw)
        if getattr(model, "likelihood", "gaussian") == "categorical":
            out = torch.softmax(out, dim=-1)
        out = out.double()
        if i == 0:
            shift = out
        d = out - shift
        s1, s2 = s1 + d, s2 + d * d
    m = s1 / n_samples
    return (shift + m).float(), (s2 / n_samples - m * m).clamp_min(0.0).float()


def moments(draws: torch.Tensor, sample_dims: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive mean and variance from draws of a network's outputs: ``draws`` with
    ``sample_dims`` leading sample axes (HMC's (samples, chains, N, out) has two) -> the
    mean and the (population) variance over all of them, accumulated in double precision,
    in ``draws``' dtype. The predictive of weight samples (HMC, SGLD and SWAG through
    ``mcmc.NetworkPosterior.predict``) and of an ensemble's members."""
    if not 1 <= sample_dims < draws.dim():
        raise ValueError(
            f"sample_dims must be in [1, {draws.dim() - 1}] for draws of shape {tuple(draws.shape)}"
        )
    flat = draws.reshape(-1, *draws.shape[sample_dims:]).double()
    return flat.mean(0).to(draws.dtype), flat.var(0, unbiased=False).to(draws.dtype)


@torch.no_grad()
def predictive(
    model: nn.Module,
    x: torch.Tensor,
    n_samples: int = 100,
    *,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    dropout: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo predictive mean and variance over ``n_samples`` forward passes.

    Regression (``likelihood="gaussian"``): mean and variance of the network's output f(x; w)
    (the epistemic part; add ``model.noise_std**2`` for the full predictive variance).
    Classification: mean and variance of the class probabilities softmax(f(x; w)).
    The network is in eval mode with its Bayesian layers sampling; ``dropout=True`` keeps its
    dropout on instead (MC dropout, Gal & Ghahramani 2016, and variational dropout's noise). A
    plain network in eval mode is deterministic: its variance is zero. ``generator`` draws
    every random choice of the passes, weights and masks (a probdl network's
    ``model(x, generator=g)``); default: torch's global generator.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if generator is not None and not isinstance(model, MLPBase):
        raise TypeError(
            f"generator= needs a probdl network (mlp.MLPBase) that draws its noise from it; "
            f"{type(model).__name__} would draw from torch's global generator: pass None"
        )
    chunks = [x] if batch_size is None else list(torch.split(x, batch_size))
    with dropout_on(model) if dropout else sampling_network(model):
        parts = [_moments(model, xb, n_samples, generator) for xb in chunks]
    return torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])


@torch.no_grad()
def error_rate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    n_samples: int = 0,
    batch_size: int = 5000,
    generator: torch.Generator | None = None,
) -> float:
    """Test error in percent. ``n_samples=0``: the mean network (a Bayesian network with w = mu,
    a plain network in eval mode); otherwise the argmax of the Monte Carlo predictive
    probabilities averaged over ``n_samples`` weight samples."""
    if n_samples > 0:
        probs = predictive(model, x, n_samples, batch_size=batch_size, generator=generator)[0]
        return 100.0 * (probs.argmax(-1) != y).float().mean().item()
    with mean_network(model):
        wrong = sum(
            (model(xb).argmax(-1) != yb).sum().item()
            for xb, yb in zip(torch.split(x, batch_size), torch.split(y, batch_size))
        )
    return 100.0 * wrong / len(y)
