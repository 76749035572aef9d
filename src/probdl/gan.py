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
* The evaluation (known densities, toy data, Parzen and Fréchet scores) lives in
  :mod:`probdl.gan_eval`; its names are re-exported here for one release (``gan.jensen_shannon``
  and the rest keep working; new code imports them from ``gan_eval``).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import config
from .gan_eval import (  # noqa: F401  (re-exported for one release)
    frechet_distance,
    jensen_shannon,
    mlp_features,
    mode_coverage,
    optimal_discriminator,
    parzen_log_likelihood,
    ring_centers,
    ring_of_gaussians,
    select_parzen_sigma,
    value_by_quadrature,
)
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
    """The discriminator maximises V = E_data log D(x) + E_z log(1 - D(G(z))) on a
    minibatch of ``x`` and as many fresh z; ``loss`` = -V (G is held fixed: its samples
    are detached). Also returns ``d_real`` and ``d_fake``, the mean of D on each."""
    fake = gan.generator(gan.noise(len(x), generator)).detach()
    l_real, l_fake = gan.discriminator(x), gan.discriminator(fake)
    # log D, log(1 - D)
    value = F.logsigmoid(l_real).mean() + F.logsigmoid(-l_fake).mean()
    return {
        "loss": -value,
        "value": value.detach(),
        "d_real": torch.sigmoid(l_real).mean().detach(),
        "d_fake": torch.sigmoid(l_fake).mean().detach(),
    }


def generator_objective(
    gan: GAN, n: int, saturating: bool = False, generator: torch.Generator | None = None
) -> dict:
    """The generator's loss on n fresh z: ``saturating=True`` minimises E log(1 -
    D(G(z))), the game's own term; ``False`` (the paper's practical choice) minimises -E
    log D(G(z)), which has the same fixed point but strong gradients when D rejects the
    samples."""
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
    # how long, and one step of the game (fit's first group, for two players)
    epochs: float,
    batch_size: int = 100,
    k: int = 1,
    lr_d: float = 2e-4,
    lr_g: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    saturating: bool = False,
    # what the reader sees (a callback stands for fit's evaluation)
    callback: Callable[[GAN, int], None] | None = None,
    callback_every: int | None = None,
    progress: bool | None = None,
    desc: str | None = None,
    # its randomness
    generator: torch.Generator | None = None,
) -> History:
    """Algorithm 1 of Goodfellow et al. (2014) with Adam: for every generator step,
    ``k`` discriminator steps, each on a fresh minibatch of ``x`` and of noise; one
    "epoch" is one pass of the discriminator over ``x``. Records per generator step
    ``d_loss``, ``value`` (V on the last minibatch), ``d_real``, ``d_fake`` and
    ``g_loss`` in a :class:`probdl.train.History`; calls ``callback(gan, step)`` every
    ``callback_every`` generator steps. ``progress``: a text progress bar over the
    discriminator steps (default: as :func:`probdl.train.fit`)."""
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
