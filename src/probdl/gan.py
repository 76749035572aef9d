"""Generative adversarial networks (Goodfellow et al. 2014) and how to score an implicit model.

The chapter ``book/10_gan.ipynb`` derives every piece.

* :class:`Generator` (noise z -> x), :class:`Discriminator` (x -> the logit of D(x)) and
  :class:`GAN`, which holds both and the noise distribution p(z).
* :func:`discriminator_objective` and :func:`generator_objective` (saturating or
  non-saturating): the two players' losses, written with ``logsigmoid`` of the logit.
* :func:`train_gan`: Algorithm 1 of the paper, ``k`` discriminator steps per generator step.
  It is the one place that does not use :func:`probdl.train.fit`: ``fit`` minimises one loss of
  one model with one optimizer, while the game alternates two optimizers on two losses that
  share the minibatch schedule. It reuses ``fit``'s pieces (:func:`probdl.train.minibatches`,
  :class:`probdl.train.History`). A discriminator trained alone against a fixed generator is a
  plain classifier, and the chapter trains it with ``fit`` and :func:`classifier_objective`.
* Known densities: :func:`optimal_discriminator`, :func:`value_by_quadrature`,
  :func:`jensen_shannon` (the identities of the paper's Theorem 1, on a grid).
* Toy data and scores: :func:`ring_of_gaussians`, :func:`mode_coverage`.
* Scores of samples: :func:`parzen_log_likelihood` (the Parzen-window estimate of the paper's
  Table 1), :func:`select_parzen_sigma`, :func:`frechet_distance` (the squared 2-Wasserstein distance
  between fitted Gaussians, as pytorch-fid computes it),
  :func:`mlp_features`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import config
from .mlp import sequential
from .train import History, minibatches, progress_bar


class Generator(nn.Module):
    """G: an MLP from noise z in R^{n_noise} to x; ``output="sigmoid"`` for images in [0, 1],
    ``"linear"`` for points in R^d. ``sizes`` = [n_noise, hidden..., n_out]."""

    def __init__(self, sizes: Sequence[int], output: str = "linear"):
        super().__init__()
        if output not in ("linear", "sigmoid"):
            raise ValueError(f"output must be 'linear' or 'sigmoid', got {output!r}")
        self.sizes, self.output = list(sizes), output
        self.net = sequential(sizes, nn.ReLU)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.sizes[0]:
            raise ValueError(f"the generator takes noise of shape (n, {self.sizes[0]}), got {tuple(z.shape)}")
        x = self.net(z)
        return torch.sigmoid(x) if self.output == "sigmoid" else x


class Discriminator(nn.Module):
    """D: an MLP from x to one logit l(x), with D(x) = sigmoid(l(x)) the probability that x is a
    training example. LeakyReLU hidden units and optional dropout. ``sizes`` = [n_in, hidden...]."""

    def __init__(self, sizes: Sequence[int], dropout: float = 0.0):
        super().__init__()
        self.sizes = list(sizes)
        self.net = sequential([*sizes, 1], lambda: nn.LeakyReLU(0.2), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logit l(x), shape (n,)."""
        if x.dim() != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"the discriminator takes (n, {self.sizes[0]}) inputs, got {tuple(x.shape)}")
        return self.net(x).squeeze(-1)

    @torch.no_grad()
    def prob(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) = sigmoid(l(x)), shape (n,)."""
        return torch.sigmoid(self(x))


class GAN(nn.Module):
    """The two players and the noise p(z) = N(0, I) (``noise="normal"``) or U(-1, 1)^d
    (``"uniform"``)."""

    def __init__(self, generator: Generator, discriminator: Discriminator, noise: str = "normal"):
        super().__init__()
        if noise not in ("normal", "uniform"):
            raise ValueError(f"noise must be 'normal' or 'uniform', got {noise!r}")
        if generator.sizes[-1] != discriminator.sizes[0]:
            raise ValueError(
                f"the generator makes {generator.sizes[-1]}-d points but the discriminator reads "
                f"{discriminator.sizes[0]}-d ones"
            )
        self.generator, self.discriminator, self.noise_kind = generator, discriminator, noise
        self.n_noise = generator.sizes[0]

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws z ~ p(z), shape (n, n_noise)."""
        p = next(self.parameters())
        shape = (int(n), self.n_noise)
        if self.noise_kind == "normal":
            return torch.randn(shape, generator=generator, dtype=p.dtype, device=p.device)
        return 2 * torch.rand(shape, generator=generator, dtype=p.dtype, device=p.device) - 1

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples x = G(z), z ~ p(z) (generator in eval mode, restored afterwards)."""
        was = self.generator.training
        self.generator.eval()
        try:
            return self.generator(self.noise(n, generator))
        finally:
            self.generator.train(was)


# --- the two players' losses -----------------------------------------------------------------


def discriminator_objective(gan: GAN, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
    """The discriminator maximises V = E_data log D(x) + E_z log(1 - D(G(z))) on a minibatch of
    ``x`` and as many fresh z; ``loss`` = -V (G is held fixed: its samples are detached).
    Also returns ``d_real`` and ``d_fake``, the mean of D on each."""
    fake = gan.generator(gan.noise(len(x), generator)).detach()
    l_real, l_fake = gan.discriminator(x), gan.discriminator(fake)
    value = F.logsigmoid(l_real).mean() + F.logsigmoid(-l_fake).mean()  # log D, log(1 - D)
    return {
        "loss": -value,
        "value": value.detach(),
        "d_real": torch.sigmoid(l_real).mean().detach(),
        "d_fake": torch.sigmoid(l_fake).mean().detach(),
    }


def generator_objective(
    gan: GAN, n: int, saturating: bool = False, generator: torch.Generator | None = None
) -> dict:
    """The generator's loss on n fresh z: ``saturating=True`` minimises E log(1 - D(G(z))), the
    game's own term; ``False`` (the paper's practical choice) minimises -E log D(G(z)), which has
    the same fixed point but strong gradients when D rejects the samples."""
    logits = gan.discriminator(gan.generator(gan.noise(n, generator)))
    loss = F.logsigmoid(-logits).mean() if saturating else -F.logsigmoid(logits).mean()
    return {"loss": loss, "d_fake": torch.sigmoid(logits).mean().detach()}


def classifier_objective(disc: Discriminator, x: torch.Tensor, label: torch.Tensor) -> dict:
    """A discriminator trained alone (label 1 = data, 0 = generator), for :func:`probdl.train.fit`:
    the same -V as :func:`discriminator_objective`, as a binary cross-entropy on given samples."""
    return {"loss": F.binary_cross_entropy_with_logits(disc(x), label.to(x.dtype))}


def generator_grad_norm(
    gan: GAN, n: int, saturating: bool, generator: torch.Generator | None = None
) -> float:
    """The norm of the gradient of the generator's loss with respect to its parameters, on n
    noise draws (nothing is updated; the gradients are left cleared)."""
    params = [p for p in gan.generator.parameters() if p.requires_grad]
    loss = generator_objective(gan, n, saturating, generator)["loss"]
    grads = torch.autograd.grad(loss, params)
    return float(torch.sqrt(sum((g**2).sum() for g in grads)))


def train_gan(
    gan: GAN,
    x: torch.Tensor,
    *,
    epochs: float,
    batch_size: int = 100,
    k: int = 1,
    lr_d: float = 2e-4,
    lr_g: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    saturating: bool = False,
    callback: Callable[[GAN, int], None] | None = None,
    callback_every: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool | None = None,
    desc: str | None = None,
) -> History:
    """Algorithm 1 of Goodfellow et al. (2014) with Adam: for every generator step, ``k``
    discriminator steps, each on a fresh minibatch of ``x`` and of noise; one "epoch" is one pass
    of the discriminator over ``x``. Records per generator step ``d_loss``, ``value`` (V on the
    last minibatch), ``d_real``, ``d_fake`` and ``g_loss`` in a :class:`probdl.train.History`;
    calls ``callback(gan, step)`` every ``callback_every`` generator steps. ``progress``: a text
    progress bar over the discriminator steps (default: as :func:`probdl.train.fit`)."""
    if k < 1:
        raise ValueError(f"k (discriminator steps per generator step) must be >= 1, got {k}")
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr_d, betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr_g, betas=betas)
    batch_size = min(batch_size, len(x))
    total_d = max(k, round(epochs * math.ceil(len(x) / batch_size)))
    history, step, d_steps, epoch = History(), 0, 0, 0
    bar = progress_bar(total_d, desc, not config.quiet() if progress is None else progress)
    gan.train()
    with bar, config.torch_threads(config.threads_for(gan)):
        while d_steps < total_d:
            for (xb,) in minibatches((x,), batch_size, generator=generator):
                d_terms = discriminator_objective(gan, xb, generator)
                opt_d.zero_grad(set_to_none=True)
                d_terms["loss"].backward()
                opt_d.step()
                d_steps += 1
                bar.update(1)
                if d_steps % k:
                    continue
                g_terms = generator_objective(gan, batch_size, saturating, generator)
                opt_g.zero_grad(set_to_none=True)
                g_terms["loss"].backward()
                opt_g.step()
                step += 1
                row = {f"d_{n}" if n == "loss" else n: float(v.detach()) for n, v in d_terms.items()}
                history.steps.append(
                    {"step": step, "epoch": epoch, **row, "g_loss": float(g_terms["loss"].detach())}
                )
                if callback is not None and callback_every and step % callback_every == 0:
                    callback(gan, step)
                if d_steps >= total_d:
                    break
            epoch += 1
    return history


# --- known densities ----------------------------------------------------------------------------


def optimal_discriminator(log_p_data: torch.Tensor, log_p_g: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) from the two log densities at the same points,
    computed as sigmoid(log p_data - log p_g) (stable where both densities are tiny)."""
    return torch.sigmoid(log_p_data - log_p_g)


def _trapezoid(y: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return torch.trapezoid(y, grid)


def value_by_quadrature(
    d: torch.Tensor, log_p_data: torch.Tensor, log_p_g: torch.Tensor, grid: torch.Tensor
) -> torch.Tensor:
    """V(D, G) = int p_data log D + p_g log(1 - D) dx by the trapezoid rule on a 1-D ``grid``,
    given D and both log densities on it."""
    eps = torch.finfo(d.dtype).tiny
    f = log_p_data.exp() * torch.log(d.clamp_min(eps)) + log_p_g.exp() * torch.log((1 - d).clamp_min(eps))
    return _trapezoid(f, grid)


def jensen_shannon(log_p: torch.Tensor, log_q: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """JSD(p || q) = KL(p || m)/2 + KL(q || m)/2 with m = (p + q)/2, in nats, by the trapezoid
    rule on a 1-D ``grid`` from both log densities on it."""
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    kl_p = _trapezoid(log_p.exp() * (log_p - log_m), grid)
    kl_q = _trapezoid(log_q.exp() * (log_q - log_m), grid)
    return 0.5 * (kl_p + kl_q)


# --- toy data and mode coverage ------------------------------------------------------------


def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The (modes, 2) centres of the ring, evenly spaced on a circle of ``radius``."""
    angle = torch.arange(modes, dtype=torch.float32) * (2 * math.pi / modes)
    return radius * torch.stack([angle.cos(), angle.sin()], dim=1)


def ring_of_gaussians(
    n: int, modes: int = 8, radius: float = 2.0, std: float = 0.05, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n points from an equal mixture of ``modes`` isotropic Gaussians (``std``) on a ring."""
    idx = torch.randint(modes, (n,), generator=generator)
    return ring_centers(modes, radius)[idx] + std * torch.randn(n, 2, generator=generator)


def mode_coverage(
    samples: torch.Tensor, centers: torch.Tensor, std: float, n_std: float = 3.0, min_share: float = 0.01
) -> dict[str, float]:
    """How well 2-D samples cover the modes: ``near`` = the share of samples within ``n_std``
    standard deviations of their nearest centre; ``modes_hit`` = the share of centres that
    receive at least ``min_share`` of the samples as near ones; ``counts`` per centre."""
    dist = torch.cdist(samples.float(), centers.float())
    d_min, nearest = dist.min(dim=1)
    near = d_min <= n_std * std
    counts = torch.bincount(nearest[near], minlength=len(centers))
    hit = counts >= min_share * len(samples)
    return {"near": float(near.float().mean()), "modes_hit": float(hit.float().mean()), "counts": counts}


# --- scores of samples --------------------------------------------------------------------------


def _parzen(samples: torch.Tensor, x: torch.Tensor, sigmas: Sequence[float], batch_size: int) -> torch.Tensor:
    """Mean Parzen log-likelihood of the rows of ``x`` for every bandwidth in ``sigmas`` (float64);
    the squared distances of each block of ``x`` to all samples are computed once."""
    if samples.dim() != 2 or x.dim() != 2 or samples.shape[1] != x.shape[1]:
        raise ValueError(
            f"samples and x must be (n, d) and (m, d) with the same d; got {tuple(samples.shape)} "
            f"and {tuple(x.shape)}"
        )
    if len(sigmas) == 0 or not all(s > 0 for s in sigmas):
        raise ValueError(f"give at least one bandwidth, every one positive; got {list(sigmas)}")
    s = samples.double()
    n, d = s.shape
    sig = torch.tensor([float(v) for v in sigmas], dtype=torch.float64, device=s.device)
    const = -math.log(n) - 0.5 * d * torch.log(2 * math.pi * sig**2)  # (n_sigmas,)
    s_sq = (s**2).sum(1)
    total = torch.zeros(len(sig), dtype=torch.float64, device=s.device)
    for xb in x.double().to(s.device).split(batch_size):
        sq = ((xb**2).sum(1, keepdim=True) + s_sq - 2 * xb @ s.T).clamp_min(0)  # (b, n)
        for j, v in enumerate(sig):
            total[j] += (torch.logsumexp(-sq / (2 * v**2), dim=1) + const[j]).sum()
    return total / len(x)


def parzen_log_likelihood(
    samples: torch.Tensor, x: torch.Tensor, sigma: float, batch_size: int = 100
) -> torch.Tensor:
    """The mean over the rows of ``x`` of log p_hat(x), where p_hat = (1/n) sum_i N(x; s_i,
    sigma^2 I) is the Gaussian kernel density estimate on the n rows of ``samples``; computed in
    float64, ``batch_size`` rows of ``x`` at a time, with log-sum-exp. Returns a 0-d tensor."""
    return _parzen(samples, x, [sigma], batch_size)[0]


def select_parzen_sigma(
    samples: torch.Tensor, x_valid: torch.Tensor, sigmas: Sequence[float], batch_size: int = 100
) -> tuple[float, dict[float, float]]:
    """The bandwidth of ``sigmas`` with the highest Parzen log-likelihood of ``x_valid`` (the
    paper's procedure), and the score of every candidate."""
    values = _parzen(samples, x_valid, list(sigmas), batch_size)
    scores = {float(s): float(v) for s, v in zip(sigmas, values)}
    return max(scores, key=scores.get), scores


def _mean_cov(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features.detach().cpu() if torch.is_tensor(features) else features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must be (n, d) with n >= 2, got shape {f.shape}")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))  # unbiased (n - 1), as pytorch-fid


def frechet_distance(features_a, features_b) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets (n, d), which is the
    *squared* 2-Wasserstein distance W_2^2 between the two Gaussians (squared feature units):
    ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), with unbiased covariances as
    pytorch-fid computes them. The trace of the square root is taken from the eigenvalues of the
    symmetric S_a^(1/2) S_b S_a^(1/2), which has the same spectrum as S_a S_b."""
    mu_a, cov_a = _mean_cov(features_a)
    mu_b, cov_b = _mean_cov(features_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"the feature sets differ in dimension: {mu_a.shape[0]} and {mu_b.shape[0]}")
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(w.clip(min=0))) @ v.T
    middle = root_a @ cov_b @ root_a
    tr_sqrt = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)


@torch.no_grad()
def mlp_features(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The last hidden layer's activations of a :class:`probdl.mlp.PlainMLP` (every layer but the
    output one, with its activation), in eval mode: the feature space of a Fréchet distance
    (squared 2-Wasserstein)."""
    was = model.training
    model.eval()
    out = []
    try:
        for xb in x.split(batch_size):
            h = xb
            for layer in model.layers[:-1]:
                h = model.activation(layer(h))
            out.append(h)
    finally:
        model.train(was)
    return torch.cat(out)
