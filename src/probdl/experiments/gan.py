"""Chapter 10's ring experiment: a GAN on a ring of Gaussians, trained with a given ratio
of learning rates and number ``k`` of discriminator steps per generator step, scored by
how many of the ring's modes its samples reach."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .. import gan, gan_eval


@dataclass(frozen=True)
class Ring:
    """The data and networks of one ring experiment: ``x`` the training points (drawn
    with :func:`probdl.gan_eval.ring_of_gaussians`, modes of standard deviation
    ``std``), the generator's ``noise`` dimension, the ``hidden`` widths of both
    networks, the discriminator's passes over ``x`` per unit of ``k`` (``epochs``) and
    its learning rate ``lr_d``."""

    x: torch.Tensor
    std: float
    noise: int
    hidden: Sequence[int]
    epochs: float
    lr_d: float

    def model(self) -> gan.GAN:
        """A fresh GAN for the ring (draws its weights from torch's global generator)."""
        return gan.GAN(
            gan.Generator([self.noise, *self.hidden, 2]),
            gan.Discriminator([2, *self.hidden]),
        )


def ring_run(
    ring: Ring,
    seed: int,
    *,
    k: int = 1,
    lr_ratio: float = 1.0,
    saturating: bool = False,
    n_samples: int = 2000,
    desc: str | None = None,
    progress: bool | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Train one GAN on ``ring`` from ``seed`` (its weights and its minibatches) with
    the generator's learning rate ``lr_ratio`` times the discriminator's and ``k``
    discriminator steps per generator step, for ``ring.epochs * k`` discriminator passes
    (the same number of generator steps for every ``k``). Returns ``n_samples`` draws of
    the trained generator (noise seeded with 1, the same for every run) and their
    :func:`probdl.gan_eval.mode_coverage`, with ``modes`` = the number of modes hit.
    ``desc`` and ``progress``: the training's progress bar, as in
    :func:`probdl.gan.train_gan`."""
    if k < 1 or lr_ratio <= 0:
        raise ValueError(f"need k >= 1 and lr_ratio > 0; got k={k}, lr_ratio={lr_ratio}")
    torch.manual_seed(seed)
    model = ring.model()
    gan.train_gan(
        model,
        ring.x,
        epochs=ring.epochs * k,
        lr_d=ring.lr_d,
        lr_g=ring.lr_d * lr_ratio,
        k=k,
        saturating=saturating,
        generator=torch.Generator().manual_seed(seed),
        desc=desc,
        progress=progress,
    )
    samples = model.sample(n_samples, generator=torch.Generator().manual_seed(1))
    coverage = gan_eval.mode_coverage(samples, gan_eval.ring_centers(), ring.std)
    coverage["modes"] = round(len(coverage["counts"]) * coverage["modes_hit"])
    return samples, coverage


def modes_over_seeds(ring: Ring, seeds: Sequence[int], **options) -> tuple[float, float, list[int]]:
    """:func:`ring_run` for each seed: the mean number of modes hit, its standard error
    (0 for one seed) and the list per seed. ``options`` go to :func:`ring_run`."""
    modes = [ring_run(ring, s, **options)[1]["modes"] for s in seeds]
    n = len(modes)
    mean = sum(modes) / n
    var = sum((m - mean) ** 2 for m in modes) / (n - 1) if n > 1 else 0.0
    return mean, (var / n) ** 0.5, modes


def collapse_onset(mean_modes: dict[float, float], max_modes: float) -> float | None:
    """The smallest learning-rate ratio whose mean number of modes hit is at most
    ``max_modes`` (collapse), or None when no ratio of ``mean_modes`` collapses."""
    collapsed = [r for r, m in sorted(mean_modes.items()) if m <= max_modes]
    return collapsed[0] if collapsed else None
