"""Bayes by Backprop: variational weight uncertainty (Graves 2011; Blundell et al. 2015).

Every weight w gets a Gaussian posterior q(w) = N(mu, sigma^2), with sigma = softplus(rho)
(Blundell et al.) or sigma = exp(d), i.e. the covariance D = diag(e^{2d}) of the exercise. A
forward pass samples the weights by reparameterization, w = mu + sigma * eps, or, with
``local_reparameterization=True`` (Kingma, Salimans & Welling 2015), samples the pre-activations
b = x mu + sqrt(x^2 sigma^2) * eps directly, which has the same distribution for each example and
independent noise across the examples of a minibatch.

The objective is the evidence lower bound of the whole training set,

    F = E_q[ log p(D | w) + log p(w) - log q(w) ],

estimated on a minibatch of B of the N examples as (N / B) * sum_batch log p(y|x,w) + the
"surprise" log p(w) - log q(w) at the sampled weights (or minus the closed-form KL).

Public API
----------
(priors in ``probdl.priors``; the plain baseline in ``probdl.mlp``; predictive moments in
``probdl.predictive``)
BayesianLinear(in, out, prior, local_reparameterization, parameterization, init_sigma)
BayesianMLP(sizes, prior, likelihood="categorical"|"gaussian", noise_std, ...)
ELBO(n_data, n_samples=1, kl="mc"|"closed", kl_schedule="uniform"|"blundell", batch_size)
minibatch_kl_weights(M)                                        Blundell et al.'s pi_i = 2^{M-i}/(2^M-1)
mean_network(model)                                            context: evaluate with w = mu, restore after
manual_gradients(model, x, y, n_data)                          the exercise's hand-derived dF/dmu, dF/dd
snr(model), prune_by_snr(model, fraction)                      signal-to-noise pruning of the paper
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from .mlp import check_likelihood, check_sizes, log_likelihood
from .priors import GaussianPrior, positive
from .vi import LOG_2PI

# --- the layer --------------------------------------------------------------------------------


class BayesianLinear(nn.Module):
    """A linear layer with a diagonal Gaussian posterior over its weights and biases.

    parameterization: ``"softplus"`` (sigma = log(1 + e^rho), Blundell et al.) or ``"exp"``
        (sigma = e^d, the exercise's D = diag(e^{2d})); the free parameter is ``weight_rho``.
    local_reparameterization: sample the pre-activations instead of the weights.
    init_sigma: the posterior's initial standard deviation (means start as in ``nn.Linear``).

    After every sampling forward pass, :meth:`log_q` and :meth:`log_p` give log q(w) and
    log p(w) (summed) at this pass's sampled weights (with local reparameterization a weight
    sample is drawn for them on demand: it is independent of the pre-activation noise, which
    keeps the estimate unbiased); :meth:`kl` the closed form where the prior allows it.
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
        if parameterization not in ("softplus", "exp"):
            raise ValueError(f"parameterization must be 'softplus' or 'exp', got {parameterization!r}")
        positive("init_sigma", init_sigma)
        self.in_features, self.out_features = in_features, out_features
        self.prior = prior if prior is not None else GaussianPrior(1.0)
        self.local_reparameterization = bool(local_reparameterization)
        self.parameterization = parameterization
        self.sample = True  # False: the deterministic mean network (w = mu)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_rho = nn.Parameter(torch.empty(out_features, in_features))
        if bias:
            self.bias_mu = nn.Parameter(torch.empty(out_features))
            self.bias_rho = nn.Parameter(torch.empty(out_features))
        else:
            self.register_parameter("bias_mu", None)
            self.register_parameter("bias_rho", None)
        self.reset_parameters(init_sigma)
        self._w: tuple | None = None

    def reset_parameters(self, init_sigma: float = 1e-3) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight_mu, -bound, bound)
        rho = self.rho_of_sigma(init_sigma)
        nn.init.constant_(self.weight_rho, rho)
        if self.bias_mu is not None:
            nn.init.uniform_(self.bias_mu, -bound, bound)
            nn.init.constant_(self.bias_rho, rho)

    def rho_of_sigma(self, sigma: float) -> float:
        """The free parameter that gives standard deviation ``sigma``."""
        if self.parameterization == "exp":
            return math.log(sigma)
        return math.log(math.expm1(sigma)) if sigma < 20 else sigma

    def _sigma(self, rho: torch.Tensor) -> torch.Tensor:
        return torch.exp(rho) if self.parameterization == "exp" else F.softplus(rho)

    @property
    def weight_sigma(self) -> torch.Tensor:
        return self._sigma(self.weight_rho)

    @property
    def bias_sigma(self) -> torch.Tensor | None:
        return None if self.bias_rho is None else self._sigma(self.bias_rho)

    def params(self):
        """(mu, sigma) pairs of the weight and (if any) the bias."""
        out = [(self.weight_mu, self.weight_sigma)]
        if self.bias_mu is not None:
            out.append((self.bias_mu, self.bias_sigma))
        return out

    def sample_weights(self, eps: Sequence[torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """Draw (w, b) = mu + sigma * eps (given ``eps`` or fresh standard normals)."""
        pairs = self.params()
        if eps is None:
            eps = [torch.randn_like(mu) for mu, _ in pairs]
        return tuple(mu + sigma * e for (mu, sigma), e in zip(pairs, eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"BayesianLinear({self.in_features}, {self.out_features}) got inputs with "
                f"{x.shape[-1]} features (shape {tuple(x.shape)})"
            )
        if not self.sample:
            self._w = None
            return F.linear(x, self.weight_mu, self.bias_mu)
        if self.local_reparameterization:
            self._w = None  # drawn lazily by log_q / log_p
            mean = F.linear(x, self.weight_mu, self.bias_mu)
            var = F.linear(x * x, self.weight_sigma**2, None if self.bias_rho is None else self.bias_sigma**2)
            return mean + torch.sqrt(var + 1e-16) * torch.randn_like(mean)
        self._w = self.sample_weights()
        return F.linear(x, *self._w) if len(self._w) == 2 else F.linear(x, self._w[0])

    def _weights_for_surprise(self) -> tuple[torch.Tensor, ...]:
        if self._w is None:
            if not self.sample:
                raise RuntimeError("log_q/log_p need a sampling forward pass (the layer is in mean mode)")
            self._w = self.sample_weights()
        return self._w

    def log_q(self) -> torch.Tensor:
        """log q(w) summed over the layer, at this forward pass's sampled weights."""
        w = self._weights_for_surprise()
        total = 0.0
        for (mu, sigma), wi in zip(self.params(), w):
            total = total + Normal(mu, sigma).log_prob(wi).sum()
        return total

    def log_p(self) -> torch.Tensor:
        """log p(w) summed over the layer, at this forward pass's sampled weights."""
        w = self._weights_for_surprise()
        return sum(self.prior.log_prob(wi).sum() for wi in w)

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


class BayesianMLP(nn.Module):
    """A fully connected network of :class:`BayesianLinear` layers with ReLU (or ``activation``)
    between them. ``likelihood``: ``"categorical"`` (outputs are logits) or ``"gaussian"``
    (the output is the mean of N(y; f(x), noise_std^2), with ``learn_noise`` a point estimate
    of log noise_std)."""

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
        super().__init__()
        sizes = check_sizes(sizes)
        check_likelihood(likelihood)
        self.sizes, self.likelihood, self.activation = sizes, likelihood, activation
        self.prior = prior if prior is not None else GaussianPrior(1.0)
        self.layers = nn.ModuleList(
            BayesianLinear(
                a,
                b,
                self.prior,
                local_reparameterization=local_reparameterization,
                parameterization=parameterization,
                init_sigma=init_sigma,
            )
            for a, b in zip(sizes[:-1], sizes[1:])
        )
        log_noise = torch.tensor(math.log(positive("noise_std", noise_std)))
        if learn_noise:
            self.log_noise = nn.Parameter(log_noise)
        else:
            self.register_buffer("log_noise", log_noise)

    @property
    def noise_std(self) -> torch.Tensor:
        return self.log_noise.exp()

    def set_sample(self, sample: bool) -> "BayesianMLP":
        """``True``: every forward pass samples; ``False``: the deterministic mean network."""
        for layer in self.layers:
            layer.sample = bool(sample)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x

    def log_likelihood(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example log p(y | x, w) from the network's output (see :func:`probdl.mlp.log_likelihood`)."""
        return log_likelihood(out, y, self.likelihood, self.noise_std)

    def log_q(self) -> torch.Tensor:
        return sum(layer.log_q() for layer in self.layers)

    def log_p(self) -> torch.Tensor:
        return sum(layer.log_p() for layer in self.layers)

    def kl(self) -> torch.Tensor:
        return sum(layer.kl() for layer in self.layers)

    def num_weights(self) -> int:
        return sum(
            layer.weight_mu.numel() + (layer.bias_mu.numel() if layer.bias_mu is not None else 0)
            for layer in self.layers
        )


@contextlib.contextmanager
def mean_network(model: nn.Module):
    """Evaluate with the deterministic mean network (w = mu) in eval mode; on leaving, every
    layer's sampling flag and the model's train/eval mode are restored, also after an error.
    A model without Bayesian layers is just put in eval mode."""
    layers = [m for m in model.modules() if isinstance(m, BayesianLinear)]
    sampling = [layer.sample for layer in layers]
    was_training = model.training
    for layer in layers:
        layer.sample = False
    model.eval()
    try:
        yield model
    finally:
        for layer, s in zip(layers, sampling):
            layer.sample = s
        model.train(was_training)


# --- the objective ----------------------------------------------------------------------------


def minibatch_kl_weights(num_batches: int) -> torch.Tensor:
    """Blundell et al.'s (eq. 9) weights pi_i = 2^{M-i} / (2^M - 1), i = 1..M: they sum to one,
    the first minibatches of an epoch carry most of the complexity cost."""
    if not isinstance(num_batches, int) or num_batches < 1:
        raise ValueError(f"num_batches must be a positive int, got {num_batches!r}")
    i = torch.arange(1, num_batches + 1, dtype=torch.float64)
    # 2^{M-i} / (2^M - 1) = 2^{-i} / (1 - 2^{-M}), computed without overflow for large M
    return torch.exp2(-i) / (-torch.expm1(torch.tensor(-num_batches * math.log(2.0), dtype=torch.float64)))


class ELBO:
    """The Bayes-by-Backprop objective, a callable for ``probdl.train.fit``:
    ``objective(model, x, y)`` returns

    - ``F``: the minibatch estimate of the full-data ELBO,
      (N / B) sum_batch log p(y|x,w) + kl_weight * (log p(w) - log q(w)) (or - KL in closed form);
    - ``loss`` = -F / N (per training example, a scale that suits Adam's defaults);
    - ``log_lik``: (N / B) sum_batch log p(y|x,w), the expected log-likelihood term;
    - ``surprise``: log p(w) - log q(w) (or -KL with ``kl="closed"``);
    - ``nll``: the minibatch's mean negative log-likelihood per example.

    n_samples:   weight samples averaged per step.
    kl:          ``"mc"`` (the surprise at the sampled weights, any prior) or ``"closed"``
                 (the analytic KL, Gaussian prior only).
    kl_schedule: ``"uniform"`` (each minibatch carries the whole complexity cost in the
                 N/B-scaled estimate, i.e. 1/M of it in Blundell's notation) or ``"blundell"``
                 (minibatch i of the M in an epoch gets weight M * pi_i, pi_i from
                 :func:`minibatch_kl_weights`; needs ``batch_size``). Both are unbiased over
                 an epoch.
    """

    def __init__(
        self,
        n_data: int,
        *,
        n_samples: int = 1,
        kl: str = "mc",
        kl_schedule: str = "uniform",
        batch_size: int | None = None,
    ):
        if not isinstance(n_data, int) or n_data < 1:
            raise ValueError(f"n_data must be a positive int (the training-set size), got {n_data!r}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if kl not in ("mc", "closed"):
            raise ValueError(f"kl must be 'mc' or 'closed', got {kl!r}")
        if kl_schedule not in ("uniform", "blundell"):
            raise ValueError(f"kl_schedule must be 'uniform' or 'blundell', got {kl_schedule!r}")
        self.n_data, self.n_samples, self.kl, self.kl_schedule = n_data, n_samples, kl, kl_schedule
        self.weights = None
        if kl_schedule == "blundell":
            if batch_size is None:
                raise ValueError(
                    "kl_schedule='blundell' needs batch_size (to know the M minibatches per epoch)"
                )
            m = math.ceil(n_data / batch_size)
            self.weights = (m * minibatch_kl_weights(m)).tolist()
        self.calls = 0

    def kl_weight(self) -> float:
        if self.weights is None:
            return 1.0
        return self.weights[self.calls % len(self.weights)]

    def __call__(self, model: BayesianMLP, x: torch.Tensor, y: torch.Tensor) -> dict:
        scale = self.n_data / x.shape[0]
        weight = self.kl_weight()
        self.calls += 1
        log_lik = surprise = 0.0
        for _ in range(self.n_samples):
            ll = model.log_likelihood(model(x), y).sum() * scale
            s = -model.kl() if self.kl == "closed" else model.log_p() - model.log_q()
            log_lik, surprise = log_lik + ll, surprise + s
        log_lik, surprise = log_lik / self.n_samples, surprise / self.n_samples
        elbo = log_lik + weight * surprise
        return {
            "loss": -elbo / self.n_data,
            "F": elbo,
            "log_lik": log_lik,
            "surprise": surprise,
            "nll": -log_lik / self.n_data,
        }


# --- the exercise's hand-derived gradient --------------------------------------------------


def manual_gradients(
    model: BayesianMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    n_data: int | None = None,
    eps: Sequence[Sequence[torch.Tensor]] | None = None,
) -> tuple[dict, torch.Tensor]:
    """The gradient of the one-sample estimate F = (N/B) log p(y|x,w) + log p(w) - log q(w) with
    respect to every mu and d (``parameterization="exp"``: sigma = e^d, D = diag(e^{2d})),
    derived by hand through the reparameterization w = mu + e^d eps:

        dF/dmu = g,     dF/dd = g * e^d * eps + 1,    g = d/dw [(N/B) log p(y|x,w) + log p(w)],

    since log q(w) = -sum(d) - sum(eps^2)/2 - (n/2) log 2 pi does not depend on mu and has
    derivative -1 in each d. Only g, the gradient of the network in its weights, is left to
    backpropagation. Returns ({parameter name: gradient}, F) for the noise ``eps`` (per layer,
    [eps_w, eps_b]; drawn if None), which callers reuse to compare with autograd.
    """
    if any(layer.parameterization != "exp" for layer in model.layers):
        raise ValueError("manual_gradients is derived for parameterization='exp' (sigma = e^d)")
    n_data = n_data or x.shape[0]
    if eps is None:
        eps = [[torch.randn_like(mu) for mu, _ in layer.params()] for layer in model.layers]
    ws = []
    for layer, e in zip(model.layers, eps):
        ws.append(
            [(mu + sigma * ei).detach().requires_grad_(True) for (mu, sigma), ei in zip(layer.params(), e)]
        )
    h = x
    for i, (layer, (w, b)) in enumerate(zip(model.layers, ws)):
        h = F.linear(h, w, b)
        if i < len(model.layers) - 1:
            h = model.activation(h)
    log_lik = model.log_likelihood(h, y).sum() * (n_data / x.shape[0])
    log_prior = sum(model.prior.log_prob(w).sum() for pair in ws for w in pair)
    flat = [w for pair in ws for w in pair]
    g = torch.autograd.grad(log_lik + log_prior, flat)
    grads, k = {}, 0
    with torch.no_grad():
        log_q = 0.0
        for li, (layer, e) in enumerate(zip(model.layers, eps)):
            for name, (mu, sigma), ei in zip(("weight", "bias"), layer.params(), e):
                grads[f"layers.{li}.{name}_mu"] = g[k]
                grads[f"layers.{li}.{name}_rho"] = g[k] * sigma * ei + 1.0
                log_q = log_q + (-torch.log(sigma) - 0.5 * ei**2 - 0.5 * LOG_2PI).sum()
                k += 1
        value = log_lik + log_prior - log_q
    return grads, value.detach()


# --- pruning by signal-to-noise ratio --------------------------------------------------


@torch.no_grad()
def snr(model: BayesianMLP) -> torch.Tensor:
    """The signal-to-noise ratio |mu| / sigma of every weight (biases included), flattened."""
    parts = []
    for layer in model.layers:
        for mu, sigma in layer.params():
            parts.append((mu.abs() / sigma).reshape(-1))
    return torch.cat(parts)


@torch.no_grad()
def prune_by_snr(model: BayesianMLP, fraction: float) -> float:
    """Set the means of the ``fraction`` of weights with the lowest |mu|/sigma to zero, in place
    (Blundell et al., section 5.1; evaluate the mean network afterwards). Returns the SNR
    threshold used. Copy the model first (``copy.deepcopy``) to keep the original."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must lie in [0, 1), got {fraction}")
    values = snr(model)
    k = int(fraction * values.numel())
    if k == 0:
        return 0.0
    threshold = torch.kthvalue(values.float().cpu(), k).values.item()
    for layer in model.layers:
        for mu, sigma in layer.params():
            mu[(mu.abs() / sigma) <= threshold] = 0.0
    return threshold
