"""The variational autoencoder (auto-encoding variational Bayes) for binary images.

Kingma & Welling (2014); Rezende, Mohamed & Wierstra (2014); the importance-weighted bound of
Burda, Grosse & Salakhutdinov (2016). The chapter ``book/06_vae.ipynb`` derives every piece.

* :class:`VAE`: an MLP encoder x -> (mu(x), sigma(x)) of a diagonal Gaussian ``q(x)`` = q(z|x),
  a prior N(0, I), and an MLP decoder z -> Bernoulli logits of p(x|z); ``terms`` (the
  likelihood, the surprise log p(z) - log q(z|x), the analytic KL and its Monte Carlo estimate),
  ``elbo``, ``log_weights`` and ``log_marginal`` (the importance-sampled estimate of log p(x)
  with K samples), ``iwae_bound`` (the same, differentiable, to train on), ``sample``,
  ``reconstruct``.
* :func:`elbo_objective` / :func:`iwae_objective`: what :func:`probdl.train.fit` minimises, with
  the terms the chapter plots (bind ``k`` of the second with ``functools.partial``).
* :func:`active_units`: the latent dimensions the encoder uses, Cov_x(E_q[z_j]) > 0.01.
* :func:`linear_decoder_gradients`: the reparameterized gradients in closed form for a linear
  Bernoulli decoder, to check autograd against.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

from .data import check_binary
from .mlp import sequential
from .vi import kl_normal, log_mean_exp, reparameterize

#: Elements (samples x examples x pixels) decoded at once by the importance-sampled estimate.
CHUNK_ELEMENTS = 1 << 23


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"the number of importance samples K must be an int >= 1, got {k!r}")
    return k


class VAE(nn.Module):
    """A VAE for binary vectors: q(z|x) = N(mu(x), diag sigma(x)^2), p(z) = N(0, I),
    p(x|z) = prod_d Bernoulli(x_d; sigmoid(eta_d(z))).

    Encoder: ``n_layers`` hidden layers of ``n_hidden`` ReLU units, then a linear layer to
    (mu, log sigma^2). Decoder: the same in reverse, ending in ``n_visible`` Bernoulli logits.
    ``VAE(784, 200, 50)`` is the IWAE paper's 784-200-200-50; ``VAE(784, 400, 20, n_layers=1)``
    the PyTorch example's 784-400-20.
    """

    def __init__(self, n_visible: int = 784, n_hidden: int = 200, n_latent: int = 50, n_layers: int = 2):
        super().__init__()
        for name, v in (
            ("n_visible", n_visible),
            ("n_hidden", n_hidden),
            ("n_latent", n_latent),
            ("n_layers", n_layers),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.n_visible, self.n_hidden, self.n_latent, self.n_layers = n_visible, n_hidden, n_latent, n_layers
        self.encoder = sequential([n_visible] + [n_hidden] * n_layers + [2 * n_latent])
        self.decoder = sequential([n_latent] + [n_hidden] * n_layers + [n_visible])

    def extra_repr(self) -> str:
        arch = "-".join(str(s) for s in [self.n_visible] + [self.n_hidden] * self.n_layers + [self.n_latent])
        return f"architecture {arch}"

    # --- the distributions ---------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu(x), sigma(x)), each (batch, n_latent)."""
        # exercise vae-ex-encoder: mu and sigma from the encoder's output (mu, log sigma^2)
        ### BEGIN SOLUTION
        h = self.encoder(x)
        mu, log_var = h.chunk(2, dim=-1)
        return mu, torch.exp(0.5 * log_var)
        ### END SOLUTION

    def q(self, x: torch.Tensor) -> Independent:
        """The encoding distribution q(z|x) as a ``torch.distributions`` object (batch shape (batch,))."""
        mu, sigma = self.encode(check_binary(x, self.n_visible, "the VAE"))
        # exercise vae-ex-distributions: q(z|x), one distribution over R^L per image
        ### BEGIN SOLUTION
        return Independent(Normal(mu, sigma, validate_args=False), 1)
        ### END SOLUTION

    def prior(self) -> Independent:
        """p(z) = N(0, I) over ``n_latent`` dimensions."""
        p = next(self.parameters())
        zero = torch.zeros(self.n_latent, dtype=p.dtype, device=p.device)
        # exercise vae-ex-distributions: the prior N(0, I) as one distribution over R^L
        ### BEGIN SOLUTION
        return Independent(Normal(zero, torch.ones_like(zero), validate_args=False), 1)
        ### END SOLUTION

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits eta(z), shape (..., n_visible)."""
        return self.decoder(z)

    def likelihood(self, z: torch.Tensor) -> Independent:
        """p(x|z) as a ``torch.distributions`` object."""
        # exercise vae-ex-decoder: p(x|z), a Bernoulli per pixel from the decoder's logits
        ### BEGIN SOLUTION
        return Independent(Bernoulli(logits=self.decode(z), validate_args=False), 1)
        ### END SOLUTION

    # --- the objective's terms -------------------------------------------------------------
    def terms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One reparameterized sample z = mu + sigma * eps per example; returns
        per-example (batch,) tensors: ``log_px_z`` = log p(x|z), ``log_pz``, ``log_qz``,
        ``surprise`` = log p(z) - log q(z|x) (a one-sample estimate of -KL), ``kl`` (the
        analytic KL(q(z|x) || p(z))), ``elbo`` = log p(x|z) - kl and ``elbo_mc`` = log
        p(x|z) + surprise."""
        x = check_binary(x, self.n_visible, "the VAE")
        # exercise vae-ex-loss: the terms of the loss from one reparameterized sample
        ### BEGIN SOLUTION
        mu, sigma = self.encode(x)
        z = reparameterize(mu, sigma, generator=generator)
        log_px_z = self.likelihood(z).log_prob(x)
        log_pz = self.prior().log_prob(z)
        log_qz = Independent(Normal(mu, sigma, validate_args=False), 1).log_prob(z)
        kl = kl_normal(mu, sigma).sum(-1)
        ### END SOLUTION
        return {
            "log_px_z": log_px_z,
            "log_pz": log_pz,
            "log_qz": log_qz,
            "surprise": log_pz - log_qz,
            "kl": kl,
            "elbo": log_px_z - kl,
            "elbo_mc": log_px_z + log_pz - log_qz,
        }

    def elbo(
        self, x: torch.Tensor, analytic_kl: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(batch,) one-sample ELBO estimates in nats: log p(x|z) - KL (analytic KL, the lower-variance
        estimator) or log p(x|z) + log p(z) - log q(z|x) (``analytic_kl=False``)."""
        t = self.terms(x, generator=generator)
        return t["elbo"] if analytic_kl else t["elbo_mc"]

    def log_weights(
        self, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int | None = None
    ) -> torch.Tensor:
        """(k, batch) importance log-weights log p(x, z_i) - log q(z_i|x), z_i ~ q(z|x),
        computed in chunks of samples so that memory stays bounded. Differentiable
        (reparameterized)."""
        x = check_binary(x, self.n_visible, "the VAE")
        k = _check_k(k)
        mu, sigma = self.encode(x)
        q = Independent(Normal(mu, sigma, validate_args=False), 1)
        prior = self.prior()
        if chunk is None:
            chunk = max(1, CHUNK_ELEMENTS // max(1, x.shape[0] * self.n_visible))
        out = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            # exercise vae-ex-importance: log importance weights of n draws of q(z|x)
            ### BEGIN SOLUTION
            # (n, batch, latent)
            z = reparameterize(mu, sigma, n=n, generator=generator)
            out.append(self.likelihood(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z))
            ### END SOLUTION
        return torch.cat(out, dim=0)

    def iwae_bound(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch,) the importance-weighted bound log (1/k) sum_i w_i (differentiable; k = 1 is the
        ELBO with the Monte Carlo KL). Train on it with ``partial(iwae_objective, k=...)``."""
        return log_mean_exp(self.log_weights(x, k, generator=generator), dim=0)

    @torch.no_grad()
    def log_marginal(
        self, x: torch.Tensor, k: int = 1000, batch_size: int = 1000, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(batch,) importance-sampled estimates of log p(x) in nats with ``k`` samples
        from q(z|x) (log-mean-exp of the weights, numerically stable), over ``x`` in
        blocks of ``batch_size``. Its expectation increases with k towards log p(x)
        (Burda et al. 2016)."""
        x = check_binary(x, self.n_visible, "the VAE")
        _check_k(k)
        was_training = self.training
        self.eval()
        try:
            return torch.cat(
                [
                    log_mean_exp(self.log_weights(xb, k, generator=generator), dim=0)
                    for xb in x.split(batch_size)
                ]
            )
        finally:
            self.train(was_training)

    # --- pictures --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, *, binary: bool = False
    ) -> torch.Tensor:
        """``n`` draws z ~ p(z) decoded: pixel probabilities sigmoid(eta(z)) (the usual picture) or,
        with ``binary=True``, a Bernoulli draw of x ~ p(x|z). Shape (n, n_visible)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        p = next(self.parameters())
        z = torch.randn(n, self.n_latent, dtype=p.dtype, device=p.device, generator=generator)
        probs = torch.sigmoid(self.decode(z))
        return torch.bernoulli(probs, generator=generator) if binary else probs

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities of p(x | z = mu(x)): the decoded posterior mean, shape of ``x``."""
        mu, _ = self.encode(check_binary(x, self.n_visible, "the VAE"))
        return torch.sigmoid(self.decode(mu))


# --- what fit() minimises ------------------------------------------------------------------


def elbo_objective(model: VAE, x: torch.Tensor, *rest) -> dict[str, torch.Tensor]:
    """The negative ELBO (analytic KL), averaged over the minibatch, with the terms the
    chapter plots: ``elbo`` (the estimate of F per example), ``log_px_z``, ``surprise``
    = log p(z) - log q(z|x), ``kl`` (analytic) and ``kl_mc`` = -surprise (its Monte
    Carlo estimate). Extra batch tensors (labels) are ignored."""
    t = model.terms(x)
    elbo = t["elbo"].mean()
    return {
        "loss": -elbo,
        "elbo": elbo,
        "log_px_z": t["log_px_z"].mean(),
        "surprise": t["surprise"].mean(),
        "kl": t["kl"].mean(),
        "kl_mc": -t["surprise"].mean(),
    }


def iwae_objective(model: VAE, x: torch.Tensor, *rest, k: int) -> dict[str, torch.Tensor]:
    """The negative importance-weighted bound with ``k`` samples per example (Burda et
    al. 2016), averaged over the minibatch; ``bound`` records the bound. ``k = 1`` is
    the ELBO with the Monte Carlo KL. Bind ``k`` for :func:`probdl.train.fit`:
    ``partial(iwae_objective, k=5)``."""
    bound = model.iwae_bound(x, _check_k(k)).mean()
    return {"loss": -bound, "bound": bound}


def evaluate(
    model: VAE, x: torch.Tensor, k: int = 1, batch_size: int = 1000, generator: torch.Generator | None = None
) -> float:
    """Mean test log-likelihood estimate in nats: the one-sample ELBO (analytic KL) for k = 1,
    the importance-sampled estimate with k samples otherwise."""
    _check_k(k)
    with torch.no_grad():
        if k == 1:
            return float(
                torch.cat([model.elbo(xb, generator=generator) for xb in x.split(batch_size)]).mean()
            )
        return float(model.log_marginal(x, k, batch_size=batch_size, generator=generator).mean())


def estimates_by_k(log_w: torch.Tensor, ks: Sequence[int]) -> dict[int, torch.Tensor]:
    """From (K, batch) log-weights, the estimates of log p(x) for each k in ``ks`` (k divides K):
    the mean over the K/k disjoint groups of k weights of their log-mean-exp, per example. For
    k = 1 it is the Monte Carlo ELBO averaged over K samples."""
    K = log_w.shape[0]
    out = {}
    for k in ks:
        _check_k(k)
        if K % k:
            raise ValueError(f"k={k} does not divide the K={K} log-weights")
        out[k] = log_mean_exp(log_w.reshape(K // k, k, -1), dim=1).mean(0)
    return out


@torch.no_grad()
def k_ladder(
    model: VAE,
    x: torch.Tensor,
    ks: Sequence[int],
    *,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
) -> dict:
    """The importance-sampled estimate of log p(x) for every k in ``ks`` from one set of
    max(ks) weights per image (:func:`estimates_by_k`), in eval mode and restoring the model's
    mode afterwards. Returns ``estimates`` {k: mean over the images}, ``stderr`` (the standard
    error over images of the largest k's estimate) and ``elbo`` (the mean one-sample ELBO with
    the analytic KL)."""
    k_max = max(ks)
    was_training = model.training
    model.eval()
    try:
        parts = x.split(batch_size)
        log_w = torch.cat([model.log_weights(xb, k_max, generator=generator) for xb in parts], dim=1)
        elbo = torch.cat([model.elbo(xb, generator=generator) for xb in parts])
    finally:
        model.train(was_training)
    est = estimates_by_k(log_w, ks)
    return {
        "estimates": {k: e.mean().item() for k, e in est.items()},
        "stderr": (est[k_max].std() / math.sqrt(len(x))).item(),
        "elbo": elbo.mean().item(),
    }


@torch.no_grad()
def active_units(
    model: VAE, x: torch.Tensor, threshold: float = 0.01, batch_size: int = 1000
) -> tuple[int, torch.Tensor]:
    """The number of active latent units and the activity of each, A_j = Cov_x(E_q[z_j])
    = the variance over the images ``x`` of the posterior mean mu_j(x) (Burda et al.
    2016, their threshold 0.01). An inactive unit's posterior mean ignores the image:
    the decoder cannot read anything from it. Returns (count, activities of shape
    (n_latent,))."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    x = check_binary(x, model.n_visible, "the VAE")
    if len(x) < 2:
        raise ValueError("active_units needs at least 2 images to measure a variance over x")
    mu = torch.cat([model.encode(xb)[0] for xb in x.split(batch_size)])
    activity = mu.var(dim=0, unbiased=True)
    return int((activity > threshold).sum()), activity


# --- the IWAE paper's schedule ----------------------------------------------------------

#: Burda et al. (2016): 3^i epochs at learning rate 0.001 * 10^(-i/7), i = 0..7: 3,280 epochs.
IWAE_STAGES = 8
IWAE_EPOCHS = sum(3**i for i in range(IWAE_STAGES))


def iwae_lr_factor(epoch: int) -> float:
    """The factor on the base learning rate 0.001 in epoch ``epoch`` (0-based) of the IWAE paper's
    schedule; use with ``torch.optim.lr_scheduler.LambdaLR`` (stepped per epoch by ``fit``)."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    end = 0
    for i in range(IWAE_STAGES):
        end += 3**i
        if epoch < end:
            return 10.0 ** (-i / 7)
    return 10.0 ** (-(IWAE_STAGES - 1) / 7)


def exponential_lr_factor(epochs: int, final: float = 0.1):
    """A factor for ``LambdaLR`` that decays the learning rate geometrically from 1 to ``final``
    over ``epochs`` epochs (stepped per epoch by ``fit``)."""
    if epochs < 1 or not 0 < final <= 1:
        raise ValueError(f"need epochs >= 1 and 0 < final <= 1, got {epochs}, {final}")
    return lambda epoch: final ** (min(epoch, epochs) / epochs)


# --- closed forms for checks ---------------------------------------------------------------


def linear_decoder_gradients(
    x: torch.Tensor,
    W: torch.Tensor,
    b: torch.Tensor,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Gradients of the one-sample objective F = log p(x|z) - KL(N(mu, sigma^2) || N(0, I)) at
    z = mu + sigma * eps for a linear Bernoulli decoder, logits eta = W z + b, in closed form:

    dF/dW = (x - s) z^T,  dF/db = x - s,  with s = sigmoid(eta), g = W^T (x - s) = d log p(x|z)/dz,
    dF/dmu = g - mu,  dF/dsigma = g * eps - sigma + 1/sigma.

    Shapes: x (D,), W (D, L), b (D,), mu, sigma, eps (L,)."""
    z = mu + sigma * eps
    r = x - torch.sigmoid(W @ z + b)
    g = W.T @ r
    return {"W": torch.outer(r, z), "b": r, "mu": g - mu, "sigma": g * eps - sigma + 1.0 / sigma}
