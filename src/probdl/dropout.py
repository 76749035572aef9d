"""Dropout as variational inference (Gal & Ghahramani 2016; Kingma, Salimans & Welling 2015;
Molchanov, Ashukha & Vetrov 2017).

Public API
----------
mc_predict(model, x, n_samples)          MC dropout: probdl.predictive.predictive with dropout kept on
input_dropout_rates(model)               the dropout rate on the inputs of each of a PlainMLP's layers
gal_kl_term(model, n_data, length_scale) Gal & Ghahramani's KL approximation per example (weight decay)
mc_dropout_objective(model, x, y, ...)   their dropout-VI objective for ``probdl.train.fit``
dropout_on(model)                        (from probdl.predictive) context: eval mode but the dropout layers
kl_log_uniform(log_alpha)                the approximate KL per weight from the log-uniform prior
kl_log_uniform_quadrature(log_alpha)     the same by numerical integration (a reference)
VariationalDropoutLinear(in, out, ...)   q(w) = N(theta, alpha theta^2) per weight; .log_alpha, .kl(),
                                         local reparameterization, a deterministic sparse mode
VariationalDropoutMLP(sizes, ...)        a network of them; .kl(), .sparsity()
sgvlb_objective(model, x, y, n_data, kl_weight)   the objective for ``probdl.train.fit``
KLWarmup(steps)                          a KL weight annealed linearly from 0 to 1
gradient_variance(model, x, y, n)        the variance of the stochastic gradient in theta
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .bbb import randn_like
from .mlp import MLPBase
from .predictive import (
    dropout_on,  # noqa: F401  (its old home, for one release)
    predictive,
)


@torch.no_grad()
def mc_predict(
    model: nn.Module, x: torch.Tensor, n_samples: int = 100, *, generator: torch.Generator | None = None
):
    """MC dropout: the predictive of ``n_samples`` forward passes with dropout kept on
    (:func:`probdl.predictive.predictive` with ``dropout=True``). Regression: the mean
    and variance of the outputs (the epistemic part; add ``model.noise_std**2`` for y).
    Classification: the mean class probabilities. The masks come from a stream of
    their own, seeded by one draw from ``generator`` (torch's global generator when it
    is None)."""
    if generator is not None:
        seed = int(torch.randint(2**62, (1,), generator=generator))
        generator = torch.Generator().manual_seed(seed)
    mean, var = predictive(model, x, n_samples, generator=generator, dropout=True)
    if getattr(model, "likelihood", "gaussian") == "categorical":
        return mean
    return mean, var


# --- Bernoulli dropout as variational inference (Gal & Ghahramani 2016) -------------------------


def input_dropout_rates(model: nn.Module) -> list[float]:
    """The dropout rate p on the inputs of each linear layer of a :class:`probdl.mlp.PlainMLP`:
    ``input_dropout`` for the first layer, ``dropout`` (on the hidden units) for the others."""
    if not hasattr(model, "dropout") or not hasattr(model, "input_dropout"):
        raise TypeError(f"expected a PlainMLP (with .dropout and .input_dropout), got {type(model).__name__}")
    return [float(model.input_dropout)] + [float(model.dropout)] * (len(model.layers) - 1)


def gal_kl_term(model: nn.Module, n_data: int, length_scale: float) -> torch.Tensor:
    """KL(q || p) / N up to terms free of the parameters, for q(W) = M diag(z), z ~
    Bernoulli(1-p) per input unit, and the prior N(0, l^-2) on every weight and bias
    (Gal & Ghahramani 2016, appendix): sum over layers of (1-p) l^2 / (2N) ||M||^2 + l^2
    / (2N) ||b||^2, with p the dropout rate on the layer's inputs (the weights a dropped
    unit feeds). ``PlainMLP`` uses inverted dropout, W (z / (1-p)) h, so its stored
    weight is W = (1-p) M."""
    if not isinstance(n_data, int) or n_data < 1:
        raise ValueError(f"n_data must be a positive int (the training-set size), got {n_data!r}")
    if not length_scale > 0:
        raise ValueError(f"length_scale must be positive, got {length_scale!r}")
    l2 = float(length_scale) ** 2
    total = 0.0
    for layer, p in zip(model.layers, input_dropout_rates(model)):
        m = layer.weight / (1 - p)  # the mean weights M of q(W) = M diag(z)
        total = total + (1 - p) * l2 / (2 * n_data) * m.pow(2).sum()
        if layer.bias is not None:
            total = total + l2 / (2 * n_data) * layer.bias.pow(2).sum()
    return total


def mc_dropout_objective(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, n_data: int, length_scale: float
) -> dict:
    """Gal & Ghahramani's dropout objective, the negative ELBO per training example for
    ``probdl.train.fit`` (bind ``n_data`` and ``length_scale`` with ``functools.partial``):
    ``loss`` = -mean log p(y | x, W) under one dropout mask per example + :func:`gal_kl_term`.
    For ``likelihood="gaussian"`` the model precision tau = 1 / noise_std^2 is in the likelihood
    (a point estimate when the model learns its noise)."""
    ll = model.log_likelihood(model(x), y).mean()
    kl = gal_kl_term(model, n_data, length_scale)
    return {"loss": -ll + kl, "log_lik": ll, "kl_term": kl}


# --- variational dropout: the KL under the log-uniform prior ------------------------------------

#: Molchanov, Ashukha & Vetrov (2017), eq. (14): -KL ~ k1 sigmoid(k2 + k3 log a) - log(1 + 1/a)/2 - k1
K1, K2, K3 = 0.63576, 1.87320, 1.48695

#: log alpha is kept in this range (as in Molchanov et al.'s code): beyond it the weight is
#: either certain or pure noise, and exp(log alpha) would overflow the variance.
LOG_ALPHA_RANGE = (-8.0, 8.0)


def kl_log_uniform(log_alpha: torch.Tensor) -> torch.Tensor:
    """The approximate KL(q || p) per weight, elementwise, of q(w) = N(theta, alpha
    theta^2) from the log-uniform prior p(|w|) ~ 1/|w| (Molchanov et al. 2017):

        KL ~ k1 - k1 sigmoid(k2 + k3 log alpha) + log(1 + 1/alpha) / 2.

    The prior is improper, so the KL is defined up to an additive constant; this one is
    fixed so that the KL goes to 0 as alpha -> infinity (a weight that is pure noise
    costs nothing). It depends on alpha alone, not on theta."""
    if not torch.is_tensor(log_alpha):
        raise TypeError(f"log_alpha must be a tensor, got {type(log_alpha).__name__}")
    # log1p(exp(-x)), not softplus(-x): several times faster on a CPU, safe for
    # log_alpha >= -88
    return K1 - K1 * torch.sigmoid(K2 + K3 * log_alpha) + 0.5 * torch.log1p(torch.exp(-log_alpha))


def kl_log_uniform_quadrature(log_alpha) -> np.ndarray:
    """The same KL by numerical integration (Kingma et al. 2015, eq. 8 with the constant of
    :func:`kl_log_uniform`): KL = E_{e ~ N(0,1)} log|1 + sqrt(alpha) e| - log(alpha)/2 + c, with
    c = (gamma + log 2)/2 the limit that makes it vanish as alpha -> infinity. The integrand has
    a log singularity at e = -1/sqrt(alpha), passed to ``scipy.integrate.quad`` as a break point.
    Slow (one adaptive quadrature per value): a reference, not for training."""
    from scipy import integrate

    c = (np.euler_gamma + np.log(2.0)) / 2
    out = []
    for la in np.atleast_1d(np.asarray(log_alpha, dtype=np.float64)).ravel():
        s = np.exp(la / 2)

        def f(e, s=s):
            return np.log(np.abs(1.0 + s * e)) * np.exp(-0.5 * e * e) / np.sqrt(2 * np.pi)

        b = -1.0 / s
        val = sum(integrate.quad(f, lo, hi, limit=200)[0] for lo, hi in ((-np.inf, b), (b, np.inf)))
        out.append(val - la / 2 + c)
    return np.asarray(out).reshape(np.shape(log_alpha))


# --- the layer ----------------------------------------------------------------------------------


class VariationalDropoutLinear(nn.Module):
    """A linear layer with Gaussian multiplicative noise on every weight,
    q(w_ij) = N(theta_ij, alpha_ij theta_ij^2), one alpha per weight (sparse variational dropout,
    Molchanov et al. 2017); the bias is a point estimate.

    parameterization: ``"additive"`` (the free parameters are theta and log sigma^2, with
        sigma^2 = alpha theta^2: w = theta + sigma e, so that dw/dtheta = 1 is noise-free; the
        gradient in theta, dL/dw at the sampled w, still varies with e) or ``"multiplicative"``
        (theta and log alpha: w = theta (1 + sqrt(alpha) e), Kingma et al. 2015, where
        dw/dtheta = 1 + sqrt(alpha) e carries the noise too).
    local_reparameterization: sample the pre-activations, b = x theta^T + sqrt(x^2 sigma^2^T) e,
        independently per example, instead of one weight matrix per minibatch.
    threshold: in eval mode with ``sparse=True``, weights with log alpha > threshold are dropped
        (set to 0); with ``sparse=False`` eval uses all of theta. Training mode samples.
    generator: draws the noise (default: torch's global generator).
    """

    samples_in_training = True  # probdl.predictive.dropout_on keeps it sampling

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        parameterization: str = "additive",
        local_reparameterization: bool = True,
        threshold: float = 3.0,
        init_log_sigma2: float = -10.0,
        sparse: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if parameterization not in ("additive", "multiplicative"):
            raise ValueError(f"parameterization is 'additive' or 'multiplicative', got {parameterization!r}")
        self.in_features, self.out_features = in_features, out_features
        self.parameterization = parameterization
        self.local_reparameterization = bool(local_reparameterization)
        self.threshold, self.sparse, self.generator = float(threshold), bool(sparse), generator
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's initialisation
        if bias:
            nn.init.uniform_(self.bias, -1 / math.sqrt(in_features), 1 / math.sqrt(in_features))
        if parameterization == "additive":
            self.log_sigma2 = nn.Parameter(torch.full((out_features, in_features), float(init_log_sigma2)))
        else:
            la = float(init_log_sigma2) - 2 * math.log(1 / math.sqrt(in_features))
            self._log_alpha = nn.Parameter(torch.full((out_features, in_features), la))

    @property
    def log_alpha(self) -> torch.Tensor:
        """log alpha per weight (clamped to :data:`LOG_ALPHA_RANGE`)."""
        if self.parameterization == "additive":
            la = self.log_sigma2 - torch.log(self.weight**2 + 1e-16)
        else:
            la = self._log_alpha
        return la.clamp(*LOG_ALPHA_RANGE)

    @torch.no_grad()
    def set_log_alpha(self, log_alpha: float | torch.Tensor) -> "VariationalDropoutLinear":
        """Set every weight's log alpha (keeping theta), e.g. to compare estimators at one alpha."""
        la = torch.as_tensor(log_alpha, dtype=self.weight.dtype).expand_as(self.weight)
        if self.parameterization == "additive":
            self.log_sigma2.copy_(la + torch.log(self.weight**2 + 1e-16))
        else:
            self._log_alpha.copy_(la)
        return self

    def weight_var(self) -> torch.Tensor:
        """sigma^2 = alpha theta^2 of every weight (additive: exp(log sigma^2) itself, unclamped)."""
        if self.parameterization == "additive":
            return torch.exp(self.log_sigma2)
        return torch.exp(self.log_alpha) * self.weight**2

    def kl(self) -> torch.Tensor:
        """The approximate KL of the layer's weights (:func:`kl_log_uniform`), summed."""
        return kl_log_uniform(self.log_alpha).sum()

    def mask(self) -> torch.Tensor:
        """1 where a weight is kept (log alpha <= threshold), 0 where it is dropped."""
        return (self.log_alpha <= self.threshold).to(self.weight.dtype)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``generator`` (else the layer's own, else torch's global one) draws the noise."""
        gen = generator if generator is not None else self.generator
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"VariationalDropoutLinear({self.in_features}, {self.out_features}) "
                f"got inputs with {x.shape[-1]} features "
                f"(shape {tuple(x.shape)})"
            )
        if not self.training:
            w = self.weight * self.mask() if self.sparse else self.weight
            return F.linear(x, w, self.bias)
        if self.local_reparameterization:
            mean = F.linear(x, self.weight, self.bias)
            var = F.linear(x * x, self.weight_var())
            return mean + torch.sqrt(var + 1e-16) * randn_like(mean, gen)
        e = randn_like(self.weight, gen)
        if self.parameterization == "additive":
            w = self.weight + torch.exp(self.log_sigma2 / 2) * e
        else:
            w = self.weight * (1 + torch.exp(self.log_alpha / 2) * e)
        return F.linear(x, w, self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, parameterization={self.parameterization!r}, "
            f"local_reparameterization={self.local_reparameterization}, threshold={self.threshold}"
        )


# --- the network and its objective --------------------------------------------------------------


class VariationalDropoutMLP(MLPBase):
    """A fully connected network of :class:`VariationalDropoutLinear` layers with ReLU between
    them (LeNet-300-100 is ``[784, 300, 100, 10]``). ``likelihood``: ``"categorical"`` (logits)
    or ``"gaussian"`` (with noise scale ``noise_std``). The remaining options go to every layer."""

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        likelihood: str = "categorical",
        noise_std: float = 0.1,
        activation=F.relu,
        generator: torch.Generator | None = None,
        **layer_options,
    ):
        super().__init__(
            sizes,
            lambda a, b: VariationalDropoutLinear(a, b, generator=generator, **layer_options),
            likelihood=likelihood,
            noise_std=noise_std,
            activation=activation,
        )

    def kl(self) -> torch.Tensor:
        return sum(layer.kl() for layer in self.layers)

    def set_sparse(self, sparse: bool) -> "VariationalDropoutMLP":
        """Eval mode drops weights with log alpha > threshold (``True``) or keeps them all."""
        for layer in self.layers:
            layer.sparse = bool(sparse)
        return self

    @torch.no_grad()
    def sparsity(self) -> dict[str, float]:
        """Weights (biases not counted, as in Molchanov et al.): ``kept``, ``total``, the
        ``removed`` fraction and the ``compression`` total / kept."""
        kept = sum(int(layer.mask().sum()) for layer in self.layers)
        total = sum(layer.weight.numel() for layer in self.layers)
        return dict(kept=kept, total=total, removed=1 - kept / total, compression=total / max(kept, 1))


class KLWarmup:
    """A KL weight that rises linearly from 0 to 1 over ``steps`` calls and then stays at 1
    (the annealing of Molchanov et al.); pass it as ``kl_weight`` to :func:`sgvlb_objective`."""

    def __init__(self, steps: int):
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {steps!r}")
        self.steps, self.calls = steps, 0

    def __call__(self) -> float:
        w = 1.0 if self.steps == 0 else min(1.0, self.calls / self.steps)
        self.calls += 1
        return w


def sgvlb_objective(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, n_data: int, kl_weight=1.0
) -> dict:
    """The variational-dropout objective for ``probdl.train.fit`` (bind ``n_data`` and
    ``kl_weight`` with ``functools.partial``): the stochastic variational lower bound F
    = (N/B) sum_batch log p(y|x,w) - kl_weight * KL, reported per training example as
    ``loss`` = -F / N; ``log_lik`` is the minibatch's mean log-likelihood, ``kl`` the KL
    (nats, whole network) and ``kl_weight`` its weight (a number, or a callable such as
    :class:`KLWarmup`)."""
    if not isinstance(n_data, int) or n_data < 1:
        raise ValueError(f"n_data must be a positive int (the training-set size), got {n_data!r}")
    beta = kl_weight() if callable(kl_weight) else float(kl_weight)
    ll = model.log_likelihood(model(x), y).mean()
    kl = model.kl()
    return {"loss": -ll + beta * kl / n_data, "log_lik": ll, "kl": kl, "kl_weight": beta}


def gradient_variance(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_repeats: int = 100
) -> dict[str, float]:
    """The variance of the stochastic gradient of the minibatch's mean log-likelihood with
    respect to every layer's ``weight`` (theta), over ``n_repeats`` noise draws at fixed
    parameters and a fixed minibatch: ``variance`` (averaged over weights), ``signal`` (the mean
    gradient's squared norm per weight) and their ratio ``snr``."""
    if n_repeats < 2:
        raise ValueError(f"n_repeats must be >= 2 to estimate a variance, got {n_repeats}")
    was_training = model.training
    model.train()
    weights = [layer.weight for layer in model.layers]
    try:
        grads = []
        for _ in range(n_repeats):
            ll = model.log_likelihood(model(x), y).mean()
            grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(ll, weights)]).double())
    finally:
        model.train(was_training)
    g = torch.stack(grads)
    var, signal = g.var(0).mean().item(), (g.mean(0) ** 2).mean().item()
    return {"variance": var, "signal": signal, "snr": signal / var}
