"""The baselines that NADE is compared with: independent pixels and the two models of NADE's
Table 1 that the chapter trains itself.

* :func:`independent_nll`: every pixel an independent Bernoulli with the training mean.
* :class:`MixtureOfBernoullis`: p(x) = sum_k pi_k prod_d mu_kd^x_d (1 - mu_kd)^(1 - x_d), fitted
  by expectation-maximisation (:meth:`MixtureOfBernoullis.fit_em`), with a symmetric Beta prior
  on the means so that no pixel probability is exactly 0 or 1.
* :class:`FVSBN`: the fully visible sigmoid belief net (logistic autoregressive model),
  p(x_d = 1 | x_<d) = sigmoid(b_d + sum_{k<d} W_dk x_k), trained by gradient descent
  (:func:`fvsbn_objective`, with an optional L2 penalty); its D(D-1)/2 weights make all D
  conditionals one masked matrix product.

All three have an exact likelihood in nats, so their test NLLs are exact, like NADE's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .data import check_binary

__all__ = ["MixtureOfBernoullis", "FVSBN", "fvsbn_objective", "independent_nll"]


class MixtureOfBernoullis(nn.Module):
    """A mixture of ``n_components`` product-of-Bernoulli distributions over {0,1}^D."""

    def __init__(self, n_visible: int, n_components: int):
        super().__init__()
        if n_visible < 1 or n_components < 1:
            raise ValueError(f"need n_visible >= 1 and n_components >= 1, got {n_visible}, {n_components}")
        self.n_visible, self.n_components = int(n_visible), int(n_components)
        self.logit_pi = nn.Parameter(torch.zeros(n_components))
        self.logit_mu = nn.Parameter(torch.zeros(n_components, n_visible))

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_components={self.n_components}"

    def _component_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log pi_k + log p(x | k), shape (batch, K)."""
        log_mu = F.logsigmoid(self.logit_mu)  # log mu
        log_1m = F.logsigmoid(-self.logit_mu)  # log (1 - mu)
        lp = x @ (log_mu - log_1m).t() + log_1m.sum(1)
        return lp + torch.log_softmax(self.logit_pi, 0)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats, shape (batch,)."""
        x = check_binary(x, self.n_visible, "MixtureOfBernoullis").to(self.logit_mu.dtype)
        return torch.logsumexp(self._component_log_probs(x), dim=1)

    @torch.no_grad()
    def fit_em(
        self,
        x: torch.Tensor,
        iterations: int = 50,
        prior: float = 1.0,
        batch_size: int = 10_000,
        generator: torch.Generator | None = None,
        x_valid: torch.Tensor | None = None,
    ) -> list[dict]:
        """Expectation-maximisation from means initialised at random training examples.

        ``prior`` adds ``prior`` pseudo-counts of 0 and of 1 to every pixel of every component (a
        Beta(1 + prior, 1 + prior) prior; MAP estimate). Returns one dict per iteration with the
        training NLL (nats per example, before the M-step) and, given ``x_valid``, the
        validation NLL after it."""
        x = check_binary(x, self.n_visible, "MixtureOfBernoullis").to(self.logit_mu.dtype)
        n, K = len(x), self.n_components
        idx = torch.randperm(n, generator=generator)[:K]
        mu = (x[idx] * 0.5 + 0.25 + 0.1 * torch.rand(K, self.n_visible, generator=generator)).clamp(
            0.05, 0.95
        )
        self.logit_mu.copy_(torch.log(mu) - torch.log1p(-mu))
        self.logit_pi.zero_()
        history = []
        for it in range(iterations):
            counts = torch.zeros(K, dtype=torch.float64)
            sums = torch.zeros(K, self.n_visible, dtype=torch.float64)
            ll = 0.0
            for i in range(0, n, batch_size):
                xb = x[i : i + batch_size]
                lp = self._component_log_probs(xb)
                norm = torch.logsumexp(lp, 1, keepdim=True)
                ll += norm.double().sum().item()
                resp = torch.exp(lp - norm)  # E-step: responsibilities
                counts += resp.sum(0).double()
                sums += (resp.t() @ xb).double()
            mu = (sums + prior) / (counts[:, None] + 2 * prior)  # M-step
            pi = (counts + 1e-10) / counts.sum()
            self.logit_mu.copy_((torch.log(mu) - torch.log1p(-mu)).to(self.logit_mu.dtype))
            self.logit_pi.copy_(torch.log(pi).to(self.logit_pi.dtype))
            row = {"iteration": it + 1, "train_nll": -ll / n}
            if x_valid is not None:
                row["valid_nll"] = -self.log_prob(x_valid).mean().item()
            history.append(row)
        return history


class FVSBN(nn.Module):
    """The fully visible sigmoid belief net over {0,1}^D: a logistic regression of every pixel
    on the pixels before it. Only the strictly lower triangle of ``W`` (D, D) is used."""

    def __init__(self, n_visible: int):
        super().__init__()
        if n_visible < 1:
            raise ValueError(f"need n_visible >= 1, got {n_visible}")
        self.n_visible = int(n_visible)
        self.W = nn.Parameter(torch.zeros(n_visible, n_visible))
        self.b = nn.Parameter(torch.zeros(n_visible))
        self.register_buffer("mask", torch.tril(torch.ones(n_visible, n_visible), -1))

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}"

    @torch.no_grad()
    def init_bias(self, x: torch.Tensor, eps: float = 1e-2) -> "FVSBN":
        """Start at the independent-Bernoulli fit: ``b`` = logits of the pixel means of ``x``."""
        m = check_binary(x, self.n_visible, "FVSBN").mean(0).clamp(eps, 1 - eps)
        self.b.copy_(torch.log(m) - torch.log1p(-m))
        return self

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """logit p(x_d = 1 | x_<d), shape (batch, D)."""
        return x @ (self.W * self.mask).t() + self.b

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats, shape (batch,)."""
        x = check_binary(x, self.n_visible, "FVSBN").to(self.W.dtype)
        return -F.binary_cross_entropy_with_logits(self.logits(x), x, reduction="none").sum(1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral samples, shape (n, D)."""
        x = torch.zeros(n, self.n_visible, dtype=self.W.dtype, device=self.W.device)
        Wm = self.W * self.mask
        for d in range(self.n_visible):
            p = torch.sigmoid(x @ Wm[d] + self.b[d])
            x[:, d] = torch.bernoulli(p, generator=generator)
        return x


def fvsbn_objective(model: FVSBN, x: torch.Tensor, *_, l2: float = 0.0):
    """Mean negative log-likelihood (``nll``) plus ``l2`` times the sum of squared weights
    (``loss``), for :func:`probdl.train.fit` (use ``functools.partial`` to set ``l2``)."""
    nll = -model.log_prob(x).mean()
    loss = nll + l2 * (model.W * model.mask).pow(2).sum() if l2 else nll
    return {"loss": loss, "nll": nll.detach()}


def independent_nll(x_train: torch.Tensor, x_test: torch.Tensor, eps: float = 1e-2) -> float:
    """The test NLL (nats per example) of the simplest baseline, independent pixels:
    p(x) = prod_d m_d^x_d (1 - m_d)^(1 - x_d) with m the pixel means of ``x_train`` clamped to
    [eps, 1 - eps] (so that no test pixel has probability 0)."""
    x_train = check_binary(x_train, None, "independent_nll")
    x_test = check_binary(x_test, x_train.shape[1], "independent_nll")
    m = x_train.double().mean(0).clamp(eps, 1 - eps)
    x_test = x_test.double()
    return -(x_test * m.log() + (1 - x_test) * (-m).log1p()).sum(1).mean().item()
