"""Tools around a Bayes-by-Backprop network (:mod:`probdl.bbb`): the exercise's hand-derived
gradient of the one-sample ELBO, and pruning by signal-to-noise ratio (Blundell et al. 2015).

manual_gradients(model, x, y, n_data, eps, generator)   dF/dmu, dF/d(log sigma) by hand
snr(model)                                              |mu| / sigma of every weight
prune_by_snr(model, fraction)                           zero the means of the lowest-SNR fraction
prune_at_random(model, fraction, generator)             the same number of weights chosen at random
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .bbb import BayesianMLP, randn_like
from .vi import LOG_2PI

# --- the exercise's hand-derived gradient --------------------------------------------------


def manual_gradients(
    model: BayesianMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    n_data: int | None = None,
    eps: Sequence[Sequence[torch.Tensor]] | None = None,
    generator: torch.Generator | None = None,
    *,
    path: bool = False,
) -> tuple[dict, torch.Tensor]:
    """The gradient of the one-sample estimate F = (N/B) log p(y|x,w) + log p(w) - log
    q(w) with respect to every mu and d = log sigma (``parameterization="exp"``: D =
    diag(e^{2d})), derived by hand through the reparameterization w = mu + e^d eps:

        dF/dmu = g,     dF/dd = g * e^d * eps + 1,
        g = d/dw [(N/B) log p(y|x,w) + log p(w)],

    since log q(w) = -sum(d) - sum(eps^2)/2 - (n/2) log 2 pi does not depend on mu and
    has derivative -1 in each d. Only g, the gradient of the network in its weights, is
    left to backpropagation. ``path=True`` gives the exercise's form instead, the path
    derivative (Roeder et al. 2017): the bracket g - d log q / dw = g + eps / e^d, times
    dw/dmu = 1 and dw/dd = e^d eps; it drops the score term of log q, whose expectation
    is zero, so both forms are unbiased for the same gradient. Returns ({parameter name:
    gradient}, F), keyed as ``model.named_parameters()`` (``layers.0.weight_mu``,
    ``layers.0.weight_log_sigma``, ...), for the noise ``eps`` (per layer, [eps_w,
    eps_b]; drawn from ``generator`` if None)."""
    if any(layer.parameterization != "exp" for layer in model.layers):
        raise ValueError("manual_gradients is derived for parameterization='exp' (sigma = e^d)")
    n_data = n_data or x.shape[0]
    if eps is None:
        eps = [[randn_like(mu, generator) for mu, _ in layer.params()] for layer in model.layers]
    ws = [
        [(mu + sigma * ei).detach().requires_grad_(True) for (mu, sigma), ei in zip(layer.params(), e)]
        for layer, e in zip(model.layers, eps)
    ]
    h = x
    for i, wb in enumerate(ws):
        h = F.linear(h, *wb)
        if i < len(model.layers) - 1:
            h = model.activation(h)
    log_lik = model.log_likelihood(h, y).sum() * (n_data / x.shape[0])
    flat = [w for pair in ws for w in pair]
    log_prior = sum(model.prior.log_prob(w).sum() for w in flat)
    g = iter(torch.autograd.grad(log_lik + log_prior, flat))
    grads, log_q = {}, 0.0
    with torch.no_grad():
        for li, (layer, e) in enumerate(zip(model.layers, eps)):
            for name, (mu, sigma), ei in zip(("weight", "bias"), layer.params(), e):
                gi = next(g)
                # exercise bbbr-ex-e: dF/dmu and dF/dd from g, and log q(w) there
                ### BEGIN SOLUTION
                # the exercise's bracket: - d log q / dw = (w - mu) / sigma^2 = eps /
                # sigma
                if path:
                    gi = gi + ei / sigma
                grads[f"layers.{li}.{name}_mu"] = gi
                grads[f"layers.{li}.{name}_log_sigma"] = gi * sigma * ei + (0.0 if path else 1.0)
                log_q = log_q + (-torch.log(sigma) - 0.5 * ei**2 - 0.5 * LOG_2PI).sum()
                ### END SOLUTION
        value = log_lik + log_prior - log_q
    return grads, value.detach()


# --- pruning ----------------------------------------------------------------------------------


@torch.no_grad()
def snr(model: BayesianMLP) -> torch.Tensor:
    """The signal-to-noise ratio |mu| / sigma of every weight (biases included), flattened."""
    return torch.cat(
        [(mu.abs() / sigma).reshape(-1) for layer in model.layers for mu, sigma in layer.params()]
    )


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must lie in [0, 1), got {fraction}")


@torch.no_grad()
def prune_by_snr(model: BayesianMLP, fraction: float) -> float:
    """Set the means of the ``fraction`` of weights with the lowest |mu|/sigma to zero, in place
    (Blundell et al., section 5.1; evaluate the mean network afterwards). Returns the SNR
    threshold used. Copy the model first (``copy.deepcopy``) to keep the original."""
    _check_fraction(fraction)
    values = snr(model)
    k = int(fraction * values.numel())
    if k == 0:
        return 0.0
    threshold = torch.kthvalue(values.float().cpu(), k).values.item()
    for layer in model.layers:
        for mu, sigma in layer.params():
            mu[(mu.abs() / sigma) <= threshold] = 0.0
    return threshold


@torch.no_grad()
def prune_at_random(model: BayesianMLP, fraction: float, generator: torch.Generator | None = None) -> int:
    """Set the means of ``int(fraction * n)`` of the n weights, chosen uniformly at random, to zero,
    in place: the baseline that pruning by SNR must beat. Returns the number of weights removed."""
    _check_fraction(fraction)
    pairs = [mu for layer in model.layers for mu, _ in layer.params()]
    n = sum(mu.numel() for mu in pairs)
    k = int(fraction * n)
    drop = torch.zeros(n, dtype=torch.bool)
    drop[torch.randperm(n, generator=generator)[:k]] = True
    for mu, mask in zip(pairs, torch.split(drop, [mu.numel() for mu in pairs])):
        mu[mask.reshape(mu.shape).to(mu.device)] = 0.0
    return k
