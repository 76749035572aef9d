"""The multilayer perceptrons of the book: :class:`MLPBase`, what every fully connected network
shares (sizes, likelihood, noise scale, the forward loop, ``log_likelihood``), the plain
(non-Bayesian) :class:`PlainMLP` that several chapters use as a baseline or as the network under
an approximate posterior (Laplace, HMC, ensembles, MC dropout), :func:`sequential`, the one
builder of ``nn.Sequential`` stacks (the VAE's and GAN's networks), the likelihoods and the
maximum-likelihood objective. Bayes by Backprop's and variational dropout's networks subclass
:class:`MLPBase` with their own layers."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from .priors import positive


def check_sizes(sizes) -> list[int]:
    sizes = list(sizes)
    if len(sizes) < 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise ValueError(f"sizes must be at least two positive ints (input, ..., output); got {sizes}")
    return sizes


def log_likelihood(out: torch.Tensor, y: torch.Tensor, likelihood: str, noise_std=None) -> torch.Tensor:
    """Per-example log p(y | x, w) from a network's output ``out``: ``"categorical"`` (``out``
    are logits, ``y`` int64 labels) or ``"gaussian"`` (``out`` is the mean of N(y; out,
    noise_std^2), summed over output dimensions)."""
    if likelihood == "categorical":
        if y.dtype != torch.long or y.shape != out.shape[:1]:
            raise ValueError(
                f"categorical labels must be int64 of shape ({out.shape[0]},); got {y.dtype} {tuple(y.shape)}"
            )
        return -F.cross_entropy(out, y, reduction="none")
    if y.shape != out.shape:
        raise ValueError(
            f"gaussian targets must have the output's shape {tuple(out.shape)}; got {tuple(y.shape)}"
        )
    return Normal(out, noise_std).log_prob(y).sum(-1)


def check_likelihood(likelihood: str) -> str:
    if likelihood not in ("categorical", "gaussian"):
        raise ValueError(f"likelihood must be 'categorical' or 'gaussian', got {likelihood!r}")
    return likelihood


def sequential(
    sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU, dropout: float = 0.0
) -> nn.Sequential:
    """Linear layers with ``activation()`` (and dropout) between them, none after the last:
    the one builder of the book's ``nn.Sequential`` networks."""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"layer sizes must be at least two positive ints, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(int(a), int(b)))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def dropout(h: torch.Tensor, p: float, training: bool, generator=None) -> torch.Tensor:
    """Inverted dropout (``F.dropout``): in training mode each unit is kept with probability
    1 - p and scaled by 1 / (1 - p). The masks come from ``generator`` when one is given (the
    same masks ``F.dropout`` draws from torch's global generator in the same state)."""
    if generator is None or not training or p == 0:
        return F.dropout(h, p, training)
    return h * torch.empty_like(h).bernoulli_(1 - p, generator=generator).div_(1 - p)


class MLPBase(nn.Module):
    """What every fully connected network of the book shares: ``sizes``, the ``likelihood``
    (``"categorical"``: the outputs are logits; ``"gaussian"``: the output is the mean of
    N(y; f(x), noise_std^2)), the noise scale (``learn_noise``: log noise_std a point estimate,
    else a buffer), ``layers`` built by ``make_layer(fan_in, fan_out)``, the forward loop
    (``activation`` between layers, through :meth:`between`) and :meth:`log_likelihood`.
    ``model(x, generator=g)`` draws every random choice of the forward pass (a Bayesian layer's
    weights, a dropout mask) from ``g``; a subclass whose layers take no generator (the plain
    network's ``nn.Linear``) sets ``takes_generator = False``."""

    takes_generator = True

    def __init__(
        self,
        sizes: Sequence[int],
        make_layer: Callable[[int, int], nn.Module],
        *,
        likelihood: str = "categorical",
        noise_std: float = 0.1,
        learn_noise: bool = False,
        activation=F.relu,
    ):
        super().__init__()
        self.sizes, self.likelihood = check_sizes(sizes), check_likelihood(likelihood)
        self.activation = activation
        self.layers = nn.ModuleList(make_layer(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        log_noise = torch.tensor(math.log(positive("noise_std", noise_std)))
        if learn_noise:
            self.log_noise = nn.Parameter(log_noise)
        else:
            self.register_buffer("log_noise", log_noise)

    @property
    def noise_std(self) -> torch.Tensor:
        return self.log_noise.exp()

    def between(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """What happens between two layers: the activation (a subclass adds dropout)."""
        return self.activation(h)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, generator) if self.takes_generator else layer(x)
            if i < len(self.layers) - 1:
                x = self.between(x, generator)
        return x

    def log_likelihood(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example log p(y | x, w) from the network's output (see :func:`log_likelihood`)."""
        return log_likelihood(out, y, self.likelihood, self.noise_std)


class PlainMLP(MLPBase):
    """The non-Bayesian baseline: the same architecture with point weights, optional dropout
    (Srivastava et al. 2014) on the hidden units (and ``input_dropout`` on the inputs), and for
    regression a Gaussian likelihood whose noise scale ``learn_noise`` fits by maximum likelihood."""

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        activation=F.relu,
        likelihood: str = "categorical",
        noise_std: float = 0.1,
        learn_noise: bool = False,
    ):
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must lie in [0, 1); got {p}")
        super().__init__(
            sizes,
            nn.Linear,
            likelihood=likelihood,
            noise_std=noise_std,
            learn_noise=learn_noise,
            activation=activation,
        )
        self.dropout, self.input_dropout = dropout, input_dropout

    takes_generator = False  # nn.Linear; the generator draws the dropout masks

    def between(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return dropout(self.activation(h), self.dropout, self.training, generator)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = dropout(x, self.input_dropout, self.training, generator)
        return super().forward(x, generator)


def nll_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The plain networks' objective: the mean negative log-likelihood (cross-entropy or the
    Gaussian NLL), for ``probdl.train.fit``."""
    ll = model.log_likelihood(model(x), y).mean()
    return {"loss": -ll, "log_lik": ll}


def map_objective(model: nn.Module, x, y, *, n_data: int, prior_precision: float) -> dict:
    """MAP training objective for ``probdl.train.fit``: the mean NLL plus the Gaussian
    prior's ``prior_precision / 2 * |theta|^2 / n_data`` (weight decay) over every
    parameter but the noise scale, so that its minimum is the mode of the posterior of
    :class:`probdl.laplace.Laplace` with the same prior (a deep ensemble's members and
    SWAG's start train with it too)."""
    ll = model.log_likelihood(model(x), y).mean()
    sq = sum((p**2).sum() for name, p in model.named_parameters() if name != "log_noise")
    penalty = 0.5 * prior_precision * sq / n_data
    return {"loss": -ll + penalty, "log_lik": ll, "penalty": penalty}
