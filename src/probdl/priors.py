"""Priors over network weights: an independent Gaussian, and Blundell et al.'s (2015) scale
mixture of two zero-mean Gaussians. Each has an elementwise ``log_prob`` and a ``dist`` (a
``torch.distributions`` object); the Gaussian also has the closed-form KL of a Gaussian to it."""

from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from .vi import kl_normal


def positive(name: str, value) -> float:
    """``value`` (a number or a one-element tensor) as a float, or a ValueError that names
    it: the check of every scale and precision a model or a posterior is given."""
    if torch.is_tensor(value) and value.numel() != 1:
        raise ValueError(f"{name} must be one positive number, got a tensor of shape {tuple(value.shape)}")
    value = float(value)
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive, finite number; got {value}")
    return value


class GaussianPrior:
    """p(w) = N(0, sigma^2) for every weight independently."""

    def __init__(self, sigma: float = 1.0):
        self.sigma = positive("the prior's sigma", sigma)

    def dist(self, like: torch.Tensor) -> Normal:
        return Normal(
            torch.zeros((), dtype=like.dtype, device=like.device),
            torch.tensor(self.sigma, dtype=like.dtype, device=like.device),
        )

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        """Elementwise log N(w; 0, sigma^2)."""
        return self.dist(w).log_prob(w)

    def kl(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Elementwise closed-form KL(N(mu, sigma^2) || N(0, sigma_p^2))."""
        return kl_normal(mu, sigma, 0.0, self.sigma)

    def __repr__(self) -> str:
        return f"GaussianPrior(sigma={self.sigma:g})"


class ScaleMixturePrior:
    """p(w) = pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2) (Blundell et al. 2015, eq. 7), with
    sigma1 > sigma2 typically: a wide component and a narrow one near zero. No closed-form KL."""

    def __init__(self, pi: float = 0.5, sigma1: float = 1.0, sigma2: float = math.exp(-6)):
        pi = float(pi)
        if not 0.0 < pi < 1.0:
            raise ValueError(f"the mixture weight pi must lie strictly between 0 and 1; got {pi}")
        self.pi = pi
        self.sigma1 = positive("the prior's sigma1", sigma1)
        self.sigma2 = positive("the prior's sigma2", sigma2)

    def dist(self, like: torch.Tensor) -> MixtureSameFamily:
        kw = dict(dtype=like.dtype, device=like.device)
        mix = Categorical(probs=torch.tensor([self.pi, 1.0 - self.pi], **kw))
        comp = Normal(torch.zeros(2, **kw), torch.tensor([self.sigma1, self.sigma2], **kw))
        return MixtureSameFamily(mix, comp, validate_args=False)

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        """Elementwise log( pi N(w; 0, s1^2) + (1 - pi) N(w; 0, s2^2) ): the two components'
        ``Normal.log_prob`` combined by ``logaddexp`` (what ``self.dist(w).log_prob(w)``
        computes, without MixtureSameFamily's broadcasting to a trailing axis: twice as fast)."""
        zero = torch.zeros((), dtype=w.dtype, device=w.device)
        a = Normal(zero, torch.tensor(self.sigma1, dtype=w.dtype, device=w.device)).log_prob(w)
        b = Normal(zero, torch.tensor(self.sigma2, dtype=w.dtype, device=w.device)).log_prob(w)
        return torch.logaddexp(a + math.log(self.pi), b + math.log1p(-self.pi))

    def kl(self, mu, sigma):
        raise NotImplementedError(
            "the scale-mixture prior has no closed-form KL; use kl='mc' "
            "(the surprise log p(w) - log q(w) at sampled weights)"
        )

    def __repr__(self) -> str:
        return f"ScaleMixturePrior(pi={self.pi:g}, sigma1={self.sigma1:g}, sigma2={self.sigma2:g})"
