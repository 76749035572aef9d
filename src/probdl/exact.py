"""Models whose answers are known in closed form, used to check every approximation in the book:
conjugate Bayesian linear regression (:class:`BayesLinReg`: posterior, log evidence, closed-form
ELBO and its gradient), the linear-Gaussian latent model (:class:`LinearGaussian`: exact
posterior, evidence and ELBO; :class:`LinearGaussianVAE`: the same model with a linear encoder),
and probabilistic PCA's maximum likelihood."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.distributions import MultivariateNormal

from .vi import LOG_2PI, kl_mvn, kl_normal, log_mean_exp, normal_log_prob, reparameterize


class BayesLinReg:
    """Bayesian linear regression y = X w + noise, noise ~ N(0, noise_var I), prior w ~ N(0, prior_var I).

    Everything is exact (float64 by default): the posterior N(mean, cov) with precision
    P = I / prior_var + X^T X / noise_var and mean = P^-1 X^T y / noise_var, the log evidence
    log p(y | X), and for a Gaussian q = N(m, S) the ELBO, KL(q || prior) and KL(q || posterior)
    in closed form. ``q`` is given by ``mu`` (..., D) and either ``sigma`` (..., D) (diagonal S)
    or ``scale_tril`` (..., D, D) (S = L L^T); leading dimensions broadcast, so one call
    evaluates a whole grid of q's.

    ``x`` may be (N,) for the one-weight model y = w x + noise.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        noise_var: float,
        prior_var: float = 1.0,
        dtype: torch.dtype = torch.float64,
    ):
        x = torch.as_tensor(x, dtype=dtype)
        y = torch.as_tensor(y, dtype=dtype)
        if x.dim() == 1:
            x = x.unsqueeze(-1)
        if x.dim() != 2:
            raise ValueError(f"x must be (N,) or (N, D), got shape {tuple(x.shape)}")
        y = y.reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]} values")
        if not noise_var > 0 or not prior_var > 0:
            raise ValueError(f"noise_var and prior_var must be positive, got {noise_var} and {prior_var}")
        self.x, self.y = x, y
        self.noise_var, self.prior_var = float(noise_var), float(prior_var)
        self.n, self.dim = x.shape
        eye = torch.eye(self.dim, dtype=dtype)
        self.xtx = x.T @ x
        self.xty = x.T @ y
        self.precision = eye / self.prior_var + self.xtx / self.noise_var
        self.cov = torch.linalg.inv(self.precision)
        self.cov = 0.5 * (self.cov + self.cov.T)
        self.mean = self.cov @ self.xty / self.noise_var

    # densities of w (any leading shape (..., D))
    def log_likelihood(self, w: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """log p(y | X, w) = sum_n log N(y_n; x_n . w, noise_var), over the rows ``idx`` if given."""
        x, y = (self.x, self.y) if idx is None else (self.x[idx], self.y[idx])
        w = torch.as_tensor(w, dtype=x.dtype)
        resid = y - w @ x.T
        return -0.5 * (resid**2).sum(-1) / self.noise_var - 0.5 * len(y) * (
            LOG_2PI + math.log(self.noise_var)
        )

    def log_prior(self, w: torch.Tensor) -> torch.Tensor:
        """log N(w; 0, prior_var I)."""
        w = torch.as_tensor(w, dtype=self.x.dtype)
        return normal_log_prob(w, 0.0, math.sqrt(self.prior_var))

    def log_joint(self, w: torch.Tensor) -> torch.Tensor:
        """log p(y, w | X) = log p(y | X, w) + log p(w)."""
        return self.log_likelihood(w) + self.log_prior(w)

    def log_posterior(self, w: torch.Tensor) -> torch.Tensor:
        """log p(w | y, X), the exact Gaussian posterior density."""
        return self.posterior().log_prob(torch.as_tensor(w, dtype=self.x.dtype))

    def posterior(self) -> torch.distributions.MultivariateNormal:
        return torch.distributions.MultivariateNormal(self.mean, covariance_matrix=self.cov)

    def log_evidence(self) -> torch.Tensor:
        """log p(y | X) = D/2 log(1/prior_var) + N/2 log(1/noise_var) - E(mean)
                   - 1/2 log det P - N/2 log 2 pi,
        with E(w) = |y - X w|^2 / (2 noise_var) + |w|^2 / (2 prior_var) (Bishop 2006,
        eq. 3.86)."""
        m = self.mean
        energy = ((self.y - self.x @ m) ** 2).sum() / (2 * self.noise_var) + (m @ m) / (2 * self.prior_var)
        logdet_p = torch.logdet(self.precision)
        return (
            -0.5 * self.dim * math.log(self.prior_var)
            - 0.5 * self.n * math.log(self.noise_var)
            - energy
            - 0.5 * logdet_p
            - 0.5 * self.n * LOG_2PI
        )

    # Gaussian q = N(mu, S)
    def q_cov(self, sigma=None, scale_tril=None) -> torch.Tensor:
        """The covariance of q: diag(sigma^2) (diagonal q) or L L^T with L = ``scale_tril``."""
        if (sigma is None) == (scale_tril is None):
            raise ValueError("give exactly one of sigma (diagonal q) and scale_tril (full-covariance q)")
        if sigma is not None:
            sigma = torch.as_tensor(sigma, dtype=self.x.dtype)
            if (sigma <= 0).any():
                raise ValueError("sigma must be positive")
            return torch.diag_embed(sigma**2)
        lq = torch.as_tensor(scale_tril, dtype=self.x.dtype)
        return lq @ lq.transpose(-2, -1)

    def expected_log_likelihood(self, mu, sigma=None, scale_tril=None) -> torch.Tensor:
        """E_q[log p(y | X, w)]
        = -N/2 log(2 pi noise_var) - (|y - X mu|^2 + tr(X^T X S)) / (2 noise_var)."""
        mu = torch.as_tensor(mu, dtype=self.x.dtype)
        s = self.q_cov(sigma, scale_tril)
        resid = self.y - mu @ self.x.T
        tr = (self.xtx * s).sum((-2, -1))
        return -0.5 * self.n * (LOG_2PI + math.log(self.noise_var)) - ((resid**2).sum(-1) + tr) / (
            2 * self.noise_var
        )

    def kl_prior(self, mu, sigma=None, scale_tril=None) -> torch.Tensor:
        """KL(q || N(0, prior_var I)) in closed form."""
        mu = torch.as_tensor(mu, dtype=self.x.dtype)
        s = self.q_cov(sigma, scale_tril)
        eye = torch.eye(self.dim, dtype=self.x.dtype)
        return kl_mvn(mu, s, torch.zeros_like(mu), self.prior_var * eye)

    def elbo(self, mu, sigma=None, scale_tril=None) -> torch.Tensor:
        """The ELBO in closed form: E_q[log p(y | X, w)] - KL(q || prior)."""
        return self.expected_log_likelihood(mu, sigma, scale_tril) - self.kl_prior(mu, sigma, scale_tril)

    def kl_posterior(self, mu, sigma=None, scale_tril=None) -> torch.Tensor:
        """KL(q || p(w | y, X)) in closed form; equals log_evidence() - elbo(q)."""
        mu = torch.as_tensor(mu, dtype=self.x.dtype)
        s = self.q_cov(sigma, scale_tril)
        return kl_mvn(mu, s, self.mean.expand_as(mu), self.cov.expand_as(s))

    def elbo_grad(self, mu, log_sigma) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed-form gradient of the ELBO of a diagonal q = N(mu, diag(e^{2 d})),
        d = log_sigma:

            dL/dmu = P (mean - mu),     dL/dd_i = 1 - e^{2 d_i} P_ii.
        """
        mu = torch.as_tensor(mu, dtype=self.x.dtype)
        log_sigma = torch.as_tensor(log_sigma, dtype=self.x.dtype)
        g_mu = (self.mean - mu) @ self.precision  # P symmetric
        g_d = 1.0 - torch.exp(2 * log_sigma) * torch.diagonal(self.precision)
        return g_mu, g_d

    def mean_field(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The ELBO's maximiser over diagonal q: mu = posterior mean, sigma_i = P_ii^{-1/2}.
        For one weight (D = 1) this is the exact posterior."""
        return self.mean.clone(), torch.diagonal(self.precision).rsqrt()


def linear_data(
    n: int,
    w: Sequence[float] | float = 0.7,
    noise_var: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic data for :class:`BayesLinReg`: x uniform on [-1, 1]^D (D = len(w); (n,) for a
    scalar w), y = x . w + N(0, noise_var) noise, from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=dtype)
    shape = (n,) if w.dim() == 0 else (n, w.shape[0])
    x = 2 * torch.rand(shape, generator=g, dtype=dtype) - 1
    f = x * w if w.dim() == 0 else x @ w
    return x, f + math.sqrt(noise_var) * torch.randn(n, generator=g, dtype=dtype)


# --- a latent-variable model with an exact answer: the linear-Gaussian model -----------------


class LinearGaussian:
    """The linear-Gaussian latent model (probabilistic PCA): prior p(z) = N(0, I_L), decoder
    p(x | z) = N(W z + b, s^2 I_D). Everything is closed form: the evidence
    p(x) = N(b, W W^T + s^2 I), the posterior p(z | x) = N(m, S) with S = (I + W^T W / s^2)^-1,
    m = S W^T (x - b) / s^2, and the ELBO of any diagonal Gaussian q(z | x). For one x it is
    :class:`BayesLinReg` with design W, targets x - b and prior_var 1.

    ``W`` (D, L) and ``b`` (D,) may be parameters of a network (:class:`LinearGaussianVAE` passes
    its decoder's), and every method is differentiable in them."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor, s: float):
        if W.dim() != 2 or b.shape != W.shape[:1]:
            raise ValueError(f"W must be (D, L) and b (D,), got {tuple(W.shape)} and {tuple(b.shape)}")
        if not s > 0:
            raise ValueError(f"the noise scale s must be positive, got {s}")
        self.W, self.b, self.s = W, b, float(s)
        self.D, self.L = W.shape
        prec = torch.eye(self.L, dtype=W.dtype, device=W.device) + W.T @ W / self.s**2
        cov = torch.linalg.inv(prec)
        self.S = 0.5 * (cov + cov.T)  # the posterior covariance, the same for every x

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) + log p(z) for z (..., N, L) and x (N, D): (..., N)."""
        return normal_log_prob(x, z @ self.W.T + self.b, self.s) + normal_log_prob(z, 0.0, 1.0)

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = log N(x; b, W W^T + s^2 I), (N,)."""
        cov = self.W @ self.W.T + self.s**2 * torch.eye(self.D, dtype=self.W.dtype, device=self.W.device)
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """The exact posterior p(z | x) = N(S W^T (x - b) / s^2, S), batched over the rows of x."""
        m = (x - self.b) @ self.W @ self.S / self.s**2
        return MultivariateNormal(m, covariance_matrix=self.S)

    def elbo(self, x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The ELBO of q(z | x) = N(mu, diag(sigma^2)) in closed form, (N,):

        -D/2 log(2 pi s^2) - (|x - W mu - b|^2 + sum_k (W^T W)_kk sigma_k^2)
        / (2 s^2) - KL(q || N(0, I)).
        """
        resid = x - (mu @ self.W.T + self.b)
        exp_ll = -0.5 * self.D * (LOG_2PI + 2 * math.log(self.s)) - (
            (resid**2).sum(-1) + (sigma**2 * (self.W**2).sum(0)).sum(-1)
        ) / (2 * self.s**2)
        return exp_ll - kl_normal(mu, sigma).sum(-1)

    def kl_posterior(self, x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """KL(q(z | x) || p(z | x)) in closed form for q = N(mu, diag(sigma^2)), (N,);
        equals log_evidence(x) - elbo(x, mu, sigma)."""
        post = self.posterior(x)
        return kl_mvn(mu, torch.diag_embed(sigma**2), post.loc, self.S.expand(len(x), self.L, self.L))

    def log_marginal(
        self, x: torch.Tensor, k: int, q=None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The importance-sampled estimate of log p(x), log (1/k) sum_i p(x, z_i) / q(z_i) with
        z_i ~ q, (N,). ``q`` defaults to the exact posterior, where every weight equals p(x) and
        the estimate is exact for every k; any distribution with ``rsample``/``log_prob`` will do
        (with ``generator``, one with ``loc`` and ``scale_tril`` or ``mean`` and ``stddev``)."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        q = q if q is not None else self.posterior(x)
        if generator is None:
            z = q.rsample((k,))
        elif hasattr(q, "scale_tril"):  # a seeded draw through the Cholesky factor
            eps = torch.randn((k, *q.loc.shape), dtype=q.loc.dtype, generator=generator)
            z = q.loc + (q.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
        else:  # a diagonal Gaussian
            z = reparameterize(q.mean, q.stddev, k, generator)
        return log_mean_exp(self.log_joint(x, z) - q.log_prob(z), dim=0)


class LinearGaussianVAE(torch.nn.Module):
    """The smallest VAE whose ELBO, posterior and evidence are exact: the model of
    :class:`LinearGaussian` (its decoder a ``torch.nn.Linear`` layer ``dec``, noise variance
    ``noise_var``) with a linear encoder q(z | x) = N(A x + c, diag(e^{2(B x + e)})) (layers
    ``enc_mu``, ``enc_log_sigma``). The formulas live in :class:`LinearGaussian`, built from the
    decoder's parameters by :attr:`model`; one backward pass through a Monte Carlo ELBO gives
    gradients for both networks."""

    def __init__(
        self,
        data_dim: int,
        n_latent: int,
        noise_var: float = 0.1,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.noise_var = float(noise_var)
        self.dec = torch.nn.Linear(n_latent, data_dim, dtype=dtype)
        self.enc_mu = torch.nn.Linear(data_dim, n_latent, dtype=dtype)
        self.enc_log_sigma = torch.nn.Linear(data_dim, n_latent, dtype=dtype)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=dtype))
            self.enc_log_sigma.weight.mul_(0.2)
            self.enc_log_sigma.bias.sub_(1.0)

    @property
    def model(self) -> LinearGaussian:
        """The generative model with the decoder's current (differentiable) parameters."""
        return LinearGaussian(self.dec.weight, self.dec.bias, math.sqrt(self.noise_var))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): (mean, standard deviation), each (N, K)."""
        return self.enc_mu(x), torch.exp(self.enc_log_sigma(x))

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) + log p(z) for z of shape (..., N, K) and x (N, D): (..., N)."""
        return self.model.log_joint(x, z)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """The per-example ELBO of the encoder's q(z | x) in closed form, (N,)."""
        return self.model.elbo(x, *self.encode(x))

    def elbo_mc(self, x: torch.Tensor, n: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-example pathwise Monte Carlo ELBO, averaged over ``n`` draws: (N,)."""
        m, s = self.encode(x)
        z = reparameterize(m, s, n, generator)
        return (self.log_joint(x, z) - normal_log_prob(z, m, s)).mean(0)

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x), (N,)."""
        return self.model.log_evidence(x)

    def kl_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """KL(q(z | x) || p(z | x)) in closed form, (N,)."""
        return self.model.kl_posterior(x, *self.encode(x))


def ppca_max_log_likelihood(x: torch.Tensor, n_latent: int, noise_var: float) -> torch.Tensor:
    """The largest mean log-likelihood per row of ``x`` (N, D) that any linear-Gaussian model
    x = W z + b + noise, z ~ N(0, I_K), noise ~ N(0, noise_var I) can reach: probabilistic PCA's
    maximum likelihood with the noise variance fixed (Tipping & Bishop 1999), b = mean of x and
    W = U_K (Lambda_K - noise_var)^{1/2} (columns with lambda_k <= noise_var are zero). With the
    eigenvalues lambda of the sample covariance and c_k = max(lambda_k, noise_var) for k <= K,
    noise_var for k > K, it is -1/2 [D log 2 pi + sum_k log c_k + sum_k lambda_k / c_k]; only
    eigenvalues are needed."""
    x = torch.as_tensor(x)
    n, d = x.shape
    if not 1 <= n_latent <= d:
        raise ValueError(f"n_latent must be in [1, {d}], got {n_latent}")
    xc = x - x.mean(0)
    lam = torch.linalg.eigvalsh(xc.T @ xc / n).flip(0).clamp(min=0)
    c = torch.full_like(lam, float(noise_var))
    c[:n_latent] = torch.maximum(lam[:n_latent], c[:n_latent])
    return -0.5 * (d * LOG_2PI + torch.log(c).sum() + (lam / c).sum())
