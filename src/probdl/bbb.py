"""Bayes by Backprop: variational weight uncertainty (Graves 2011; Blundell et al. 2015).

Every weight w gets a Gaussian posterior q(w) = N(mu, sigma^2). The standard deviation comes
from a free parameter whose name says what it is: ``weight_rho`` with sigma = softplus(rho)
(``parameterization="softplus"``, Blundell et al.) or ``weight_log_sigma`` with sigma = e^d
(``parameterization="exp"``, the exercise's D = diag(e^{2d})); ``layer.scale_name`` is ``"rho"``
or ``"log_sigma"``. A forward pass samples the weights by reparameterization, w = mu + sigma * eps,
or, with ``local_reparameterization=True`` (Kingma, Salimans & Welling 2015), the pre-activations
b = x mu + sqrt(x^2 sigma^2) * eps directly. Every sampling call takes an optional
``torch.Generator``.

The objective is the evidence lower bound of the whole training set,

    F = E_q[ log p(D | w) + log p(w) - log q(w) ],

estimated on a minibatch of B of the N examples as (N / B) * sum_batch log p(y|x,w) + the
"surprise" log p(w) - log q(w) at the sampled weights (or minus the closed-form KL).

Public API (priors in ``probdl.priors``, the plain network in ``probdl.mlp``, predictive moments
in ``probdl.predictive``)
-----------------------------------------------------------------------------------------------
BayesianLinear(in, out, prior, local_reparameterization, parameterization, init_sigma)
BayesianMLP(sizes, prior, likelihood="categorical"|"gaussian", noise_std, ...)
sampling_mode(model, sample), mean_network(model)      contexts that set the sampling flags, restore them
elbo_objective(model, x, y, *, n_data, n_samples=1, kl="mc"|"closed", kl_weight=1.0, generator=None)
minibatch_kl_weights(M), BlundellSchedule(n_data, batch_size)   Blundell et al.'s pi_i = 2^{M-i}/(2^M-1)
(the exercise's hand-derived gradient and signal-to-noise pruning are in ``probdl.bbb_tools``)
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from .mlp import MLPBase
from .priors import GaussianPrior, positive

SCALE_NAMES = {"softplus": "rho", "exp": "log_sigma"}


def randn_like(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise of ``like``'s shape, dtype and device, from ``generator`` if given."""
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


# --- the layer --------------------------------------------------------------------------------


class BayesianLinear(nn.Module):
    """A linear layer with a diagonal Gaussian posterior over its weights and biases.

    parameterization: ``"softplus"`` (sigma = log(1 + e^rho): parameters ``weight_rho``,
        ``bias_rho``) or ``"exp"`` (sigma = e^d: parameters ``weight_log_sigma``, ``bias_log_sigma``).
    local_reparameterization: sample the pre-activations instead of the weights.
    init_sigma: the posterior's initial standard deviation (means start as in ``nn.Linear``).

    After every sampling forward pass, :meth:`log_q` and :meth:`log_p` give log q(w) and
    log p(w) (summed) at this pass's sampled weights (with local reparameterization a weight
    sample is drawn for them on demand, independent of the pre-activation noise, which keeps the
    estimate unbiased); :meth:`kl` the closed form where the prior allows it.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        prior=None,
        *,
        local_reparameterization: bool = False,
        parameterization: str = "softplus",
        init_sigma: float = 1e-3,
        bias: bool = True,
    ):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if parameterization not in SCALE_NAMES:
            raise ValueError(f"parameterization must be 'softplus' or 'exp', got {parameterization!r}")
        positive("init_sigma", init_sigma)
        self.in_features, self.out_features = in_features, out_features
        self.prior = prior if prior is not None else GaussianPrior(1.0)
        self.local_reparameterization = bool(local_reparameterization)
        self.parameterization, self.scale_name = parameterization, SCALE_NAMES[parameterization]
        self.sample = True  # False: the deterministic mean network (w = mu)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.register_parameter(
            f"weight_{self.scale_name}", nn.Parameter(torch.empty(out_features, in_features))
        )
        self.bias_mu = nn.Parameter(torch.empty(out_features)) if bias else None
        self.register_parameter(
            f"bias_{self.scale_name}", nn.Parameter(torch.empty(out_features)) if bias else None
        )
        self.reset_parameters(init_sigma)
        self._w: tuple | None = None
        self._generator: torch.Generator | None = None

    def free_scale(self, which: str = "weight") -> torch.Tensor | None:
        """The free parameter behind sigma of ``"weight"`` or ``"bias"``: rho or log sigma."""
        return getattr(self, f"{which}_{self.scale_name}")

    def reset_parameters(self, init_sigma: float = 1e-3) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight_mu, -bound, bound)
        s = self.free_scale_of_sigma(init_sigma)
        nn.init.constant_(self.free_scale("weight"), s)
        if self.bias_mu is not None:
            nn.init.uniform_(self.bias_mu, -bound, bound)
            nn.init.constant_(self.free_scale("bias"), s)

    def free_scale_of_sigma(self, sigma: float) -> float:
        """The value of the free parameter (rho or log sigma) that gives standard deviation ``sigma``."""
        if self.parameterization == "exp":
            return math.log(sigma)
        return math.log(math.expm1(sigma)) if sigma < 20 else sigma

    def _sigma(self, free: torch.Tensor) -> torch.Tensor:
        return torch.exp(free) if self.parameterization == "exp" else F.softplus(free)

    @property
    def weight_sigma(self) -> torch.Tensor:
        return self._sigma(self.free_scale("weight"))

    @property
    def bias_sigma(self) -> torch.Tensor | None:
        return None if self.bias_mu is None else self._sigma(self.free_scale("bias"))

    def params(self):
        """(mu, sigma) pairs of the weight and (if any) the bias."""
        out = [(self.weight_mu, self.weight_sigma)]
        if self.bias_mu is not None:
            out.append((self.bias_mu, self.bias_sigma))
        return out

    def sample_weights(
        self, eps: Sequence[torch.Tensor] | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Draw (w, b) = mu + sigma * eps (given ``eps`` or fresh standard normals from ``generator``)."""
        pairs = self.params()
        if eps is None:
            eps = [randn_like(mu, generator) for mu, _ in pairs]
        return tuple(mu + sigma * e for (mu, sigma), e in zip(pairs, eps))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"BayesianLinear({self.in_features}, {self.out_features}) got inputs with "
                f"{x.shape[-1]} features (shape {tuple(x.shape)})"
            )
        self._w, self._generator = None, generator
        if not self.sample:
            return F.linear(x, self.weight_mu, self.bias_mu)
        # the weights for log_q / log_p are drawn lazily
        if self.local_reparameterization:
            mean = F.linear(x, self.weight_mu, self.bias_mu)
            var = F.linear(x * x, self.weight_sigma**2, None if self.bias_mu is None else self.bias_sigma**2)
            return mean + torch.sqrt(var + 1e-16) * randn_like(mean, generator)
        self._w = self.sample_weights(generator=generator)
        return F.linear(x, *self._w)

    def _weights_for_surprise(self) -> tuple[torch.Tensor, ...]:
        if self._w is None:
            if not self.sample:
                raise RuntimeError("log_q/log_p need a sampling forward pass (the layer is in mean mode)")
            self._w = self.sample_weights(generator=self._generator)
        return self._w

    def log_q(self) -> torch.Tensor:
        """log q(w) summed over the layer, at this forward pass's sampled weights."""
        w = self._weights_for_surprise()
        return sum(Normal(mu, sigma).log_prob(wi).sum() for (mu, sigma), wi in zip(self.params(), w))

    def log_p(self) -> torch.Tensor:
        """log p(w) summed over the layer, at this forward pass's sampled weights."""
        return sum(self.prior.log_prob(wi).sum() for wi in self._weights_for_surprise())

    def kl(self) -> torch.Tensor:
        """Closed-form KL(q || p) summed over the layer (Gaussian prior only)."""
        return sum(self.prior.kl(mu, sigma).sum() for mu, sigma in self.params())

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, prior={self.prior}, "
            f"local_reparameterization={self.local_reparameterization}, "
            f"parameterization={self.parameterization!r}"
        )


# --- the network ------------------------------------------------------------------------------


class BayesianMLP(MLPBase):
    """A fully connected network of :class:`BayesianLinear` layers with ReLU (or ``activation``)
    between them. ``likelihood``: ``"categorical"`` (outputs are logits) or ``"gaussian"``
    (the output is the mean of N(y; f(x), noise_std^2), with ``learn_noise`` a point estimate
    of log noise_std). ``model(x, generator=g)`` draws every layer's noise from ``g``."""

    def __init__(
        self,
        sizes: Sequence[int],
        prior=None,
        *,
        likelihood: str = "categorical",
        noise_std: float = 0.1,
        learn_noise: bool = False,
        activation=F.relu,
        local_reparameterization: bool = False,
        parameterization: str = "softplus",
        init_sigma: float = 1e-3,
    ):
        prior = prior if prior is not None else GaussianPrior(1.0)
        options = dict(
            local_reparameterization=local_reparameterization,
            parameterization=parameterization,
            init_sigma=init_sigma,
        )
        super().__init__(
            sizes,
            lambda a, b: BayesianLinear(a, b, prior, **options),
            likelihood=likelihood,
            noise_std=noise_std,
            learn_noise=learn_noise,
            activation=activation,
        )
        self.prior = prior

    def set_sample(self, sample: bool) -> "BayesianMLP":
        """``True``: every forward pass samples; ``False``: the deterministic mean network."""
        for layer in self.layers:
            layer.sample = bool(sample)
        return self

    def log_q(self) -> torch.Tensor:
        return sum(layer.log_q() for layer in self.layers)

    def log_p(self) -> torch.Tensor:
        return sum(layer.log_p() for layer in self.layers)

    def kl(self) -> torch.Tensor:
        return sum(layer.kl() for layer in self.layers)

    def num_weights(self) -> int:
        return sum(mu.numel() for layer in self.layers for mu, _ in layer.params())


@contextlib.contextmanager
def sampling_mode(model: nn.Module, sample: bool):
    """Set every Bayesian layer's sampling flag to ``sample`` and put the model in eval mode (so a
    plain network's dropout is off); on leaving, the flags and the train/eval mode are restored,
    also after an error."""
    layers = [m for m in model.modules() if isinstance(m, BayesianLinear)]
    flags, was_training = [layer.sample for layer in layers], model.training
    for layer in layers:
        layer.sample = bool(sample)
    model.eval()
    try:
        yield model
    finally:
        for layer, s in zip(layers, flags):
            layer.sample = s
        model.train(was_training)


def mean_network(model: nn.Module):
    """Context manager: evaluate the deterministic mean network (w = mu) in eval mode and restore
    the model's state on leaving (also after an error). A model without Bayesian layers is just
    put in eval mode."""
    return sampling_mode(model, False)


# --- the objective ----------------------------------------------------------------------------


def minibatch_kl_weights(num_batches: int) -> torch.Tensor:
    """Blundell et al.'s (eq. 9) weights pi_i = 2^{M-i} / (2^M - 1), i = 1..M: they sum to one,
    the first minibatches of an epoch carry most of the complexity cost."""
    if not isinstance(num_batches, int) or num_batches < 1:
        raise ValueError(f"num_batches must be a positive int, got {num_batches!r}")
    i = torch.arange(1, num_batches + 1, dtype=torch.float64)
    # 2^{M-i} / (2^M - 1) = 2^{-i} / (1 - 2^{-M}), computed without overflow for large M
    return torch.exp2(-i) / (-torch.expm1(torch.tensor(-num_batches * math.log(2.0), dtype=torch.float64)))


class BlundellSchedule:
    """Blundell et al.'s minibatch weighting as a ``kl_weight`` for :func:`elbo_objective`: each
    call returns the next weight M * pi_i, i = 1..M cycling over the M = ceil(N / B) minibatches
    of an epoch (so the first minibatches carry most of the complexity cost, and over an epoch the
    weights average to one, as with the uniform ``kl_weight=1``). The counter ``step`` advances
    once per call: give each training run a fresh schedule, and do not share it with an
    evaluation that calls the objective."""

    def __init__(self, n_data: int, batch_size: int):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        m = math.ceil(n_data / batch_size)
        self.weights = (m * minibatch_kl_weights(m)).tolist()
        self.step = 0

    def __call__(self) -> float:
        w = self.weights[self.step % len(self.weights)]
        self.step += 1
        return w


def elbo_objective(
    model: BayesianMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_data: int,
    n_samples: int = 1,
    kl: str = "mc",
    kl_weight=1.0,
    generator: torch.Generator | None = None,
) -> dict:
    """The Bayes-by-Backprop objective for ``probdl.train.fit`` (bind the options with
    ``functools.partial``). Returns

    - ``F``: the minibatch estimate of the full-data ELBO,
      (N / B) sum_batch log p(y|x,w) + kl_weight * (log p(w) - log q(w)) (or - KL in
      closed form);
    - ``loss`` = -F / N (per training example, a scale that suits Adam's defaults);
    - ``log_lik``: (N / B) sum_batch log p(y|x,w), the expected log-likelihood term;
    - ``surprise``: log p(w) - log q(w) (or -KL with ``kl="closed"``);
    - ``nll``: the minibatch's mean negative log-likelihood per example.

    n_data: N, the training-set size. n_samples: weight samples averaged per call.
    kl: ``"mc"`` (the surprise at the sampled weights, any prior) or ``"closed"``
        (the analytic KL, Gaussian prior only).
    kl_weight: a number (1: every minibatch carries the whole complexity cost in the
        N/B-scaled estimate) or a callable with no arguments called once per call,
        e.g. :class:`BlundellSchedule`. Both are unbiased over an epoch.
    generator: the source of the weight noise (default: torch's global generator).
    """
    if not isinstance(n_data, int) or isinstance(n_data, bool) or n_data < 1:
        raise ValueError(f"n_data must be a positive int (the training-set size), got {n_data!r}")
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    if kl not in ("mc", "closed"):
        raise ValueError(f"kl must be 'mc' or 'closed', got {kl!r}")
    weight = float(kl_weight()) if callable(kl_weight) else float(kl_weight)
    scale = n_data / x.shape[0]
    # exercise bbbr-ex-e: the minibatch estimate F of the full-data ELBO
    ### BEGIN SOLUTION
    log_lik = surprise = 0.0
    for _ in range(n_samples):
        log_lik = log_lik + model.log_likelihood(model(x, generator), y).sum() * scale
        surprise = surprise + (-model.kl() if kl == "closed" else model.log_p() - model.log_q())
    log_lik, surprise = log_lik / n_samples, surprise / n_samples
    elbo = log_lik + weight * surprise
    ### END SOLUTION
    return {
        "loss": -elbo / n_data,
        "F": elbo,
        "log_lik": log_lik,
        "surprise": surprise,
        "nll": -log_lik / n_data,
    }
