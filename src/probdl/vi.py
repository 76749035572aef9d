"""Variational-inference helpers every model chapter reuses.

Gaussian KL in closed form (diagonal :func:`kl_normal`, full :func:`kl_mvn`), the reparameterized
sampler, a numerically stable log-mean-exp, Monte Carlo ELBO estimators (:func:`elbo_mc`,
:func:`elbo_mc_analytic_kl`), the pathwise and score-function gradient estimators
(:func:`pathwise_grad`, :func:`score_function_grad`), the ELBO's reparameterized gradient as a
total or a path derivative (:func:`elbo_pathwise_grad`), and stochastic ELBO ascent with a
Robbins-Monro step size. The models whose answers are exact, used to check all of these, are in
:mod:`probdl.exact`. The chapters ``01_elbo`` and ``02_gradients`` derive each of these;
``tests/test_vi.py`` checks them.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch


def kl_normal(mu_q: torch.Tensor, sigma_q: torch.Tensor, mu_p=0.0, sigma_p=1.0) -> torch.Tensor:
    """Elementwise KL( N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2) ) in nats:

    log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2.

    Sum over the last dimension for a diagonal Gaussian. Scales must be positive.
    """
    mu_q, sigma_q = torch.as_tensor(mu_q), torch.as_tensor(sigma_q)
    mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype, device=mu_q.device)
    sigma_p = torch.as_tensor(sigma_p, dtype=mu_q.dtype, device=mu_q.device)
    if (sigma_q <= 0).any() or (sigma_p <= 0).any():
        raise ValueError("kl_normal needs positive standard deviations")
    # exercise elbo-ex-kl: the KL divergence between two Gaussians, elementwise
    ### BEGIN SOLUTION
    var_ratio = (sigma_q / sigma_p) ** 2
    return 0.5 * (var_ratio + ((mu_q - mu_p) / sigma_p) ** 2 - 1.0 - torch.log(var_ratio))
    ### END SOLUTION


def reparameterize(
    mu: torch.Tensor, sigma: torch.Tensor, n: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw z = mu + sigma * eps with eps ~ N(0, I), differentiable in mu and sigma.

    With ``n`` given, returns ``n`` draws stacked in a new leading dimension."""
    shape = torch.broadcast_shapes(mu.shape, sigma.shape)
    if n is not None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        shape = (n, *shape)
    eps = torch.randn(shape, dtype=mu.dtype, device=mu.device, generator=generator)
    return mu + sigma * eps


def log_mean_exp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log( mean_i exp(x_i) ) along ``dim``, without overflow (logsumexp - log n)."""
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


# --- Gaussian densities, entropy, KL ---------------------------------------------------------

LOG_2PI = math.log(2 * math.pi)


def normal_log_prob(z: torch.Tensor, mu, sigma) -> torch.Tensor:
    """log N(z; mu, diag(sigma^2)) summed over the last dimension (a diagonal Gaussian)."""
    z = torch.as_tensor(z)
    mu = torch.as_tensor(mu, dtype=z.dtype, device=z.device)
    sigma = torch.as_tensor(sigma, dtype=z.dtype, device=z.device)
    return (-0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * LOG_2PI).sum(-1)


def gaussian_entropy(sigma: torch.Tensor) -> torch.Tensor:
    """Entropy of N(mu, diag(sigma^2)) in nats, summed over the last dimension:
    sum_i 1/2 log(2 pi e sigma_i^2)."""
    sigma = torch.as_tensor(sigma)
    return (torch.log(sigma) + 0.5 * (1.0 + LOG_2PI)).sum(-1)


def kl_mvn(mu_q: torch.Tensor, cov_q: torch.Tensor, mu_p: torch.Tensor, cov_p: torch.Tensor) -> torch.Tensor:
    """KL( N(mu_q, cov_q) || N(mu_p, cov_p) ) for full covariances (batched over leading
    dims):

    1/2 [ tr(cov_p^-1 cov_q) + (mu_p - mu_q)^T cov_p^-1 (mu_p - mu_q) - D
          + log det cov_p - log det cov_q ]."""
    d = mu_q.shape[-1]
    lp = torch.linalg.cholesky(cov_p)
    lq = torch.linalg.cholesky(cov_q)
    diff = (mu_p - mu_q).unsqueeze(-1)
    a = torch.linalg.solve_triangular(lp, lq, upper=False)  # L_p^-1 L_q
    b = torch.linalg.solve_triangular(lp, diff, upper=False)  # L_p^-1 (mu_p - mu_q)
    logdet_p = 2 * torch.log(torch.diagonal(lp, dim1=-2, dim2=-1)).sum(-1)
    logdet_q = 2 * torch.log(torch.diagonal(lq, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * ((a**2).sum((-2, -1)) + (b**2).sum((-2, -1)) - d + logdet_p - logdet_q)


# --- Monte Carlo estimates --------------------------------------------------------------------


class MCEstimate(NamedTuple):
    """A Monte Carlo estimate: the sample mean (differentiable when the samples are), its standard
    error std/sqrt(n), and the samples themselves (the first dimension)."""

    value: torch.Tensor
    stderr: torch.Tensor
    samples: torch.Tensor


def mc_mean(samples: torch.Tensor) -> MCEstimate:
    """Mean over the first dimension with its standard error (sample std / sqrt(n))."""
    n = samples.shape[0]
    if n < 2:
        raise ValueError(f"a standard error needs at least 2 samples, got {n}")
    return MCEstimate(samples.mean(0), samples.detach().std(0) / math.sqrt(n), samples)


def elbo_mc(
    log_joint: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    sigma: torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
) -> MCEstimate:
    """The ELBO E_q[log p(data, z) - log q(z)] for q = N(mu, diag(sigma^2)) from ``n``
    reparameterized draws z = mu + sigma * eps; ``log_joint`` maps (n, ..., D) draws to
    (n, ...) values. Differentiable in mu and sigma (the pathwise estimator)."""
    # exercise elbo-ex-estimators: the ELBO from draws made with reparameterize
    ### BEGIN SOLUTION
    z = reparameterize(mu, sigma, n, generator)
    return mc_mean(log_joint(z) - normal_log_prob(z, mu, sigma))
    ### END SOLUTION


def elbo_mc_analytic_kl(
    log_lik: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    sigma: torch.Tensor,
    n: int,
    mu_p=0.0,
    sigma_p=1.0,
    generator: torch.Generator | None = None,
) -> MCEstimate:
    """The ELBO as E_q[log p(data | z)] - KL(q || N(mu_p, sigma_p^2)): the expected
    log-likelihood by Monte Carlo, the KL in closed form (:func:`kl_normal`, summed over
    the last dimension). Same expectation as :func:`elbo_mc`, smaller variance."""
    # exercise elbo-ex-estimators: E_q log-likelihood by Monte Carlo, the KL exactly
    ### BEGIN SOLUTION
    z = reparameterize(mu, sigma, n, generator)
    kl = kl_normal(mu, sigma, mu_p, sigma_p).sum(-1)
    return mc_mean(log_lik(z) - kl)
    ### END SOLUTION


# --- gradient estimators of d/d(mu, log sigma) E_{N(mu, sigma^2)}[f(z)] ---------------------


def _draw_eps(mu: torch.Tensor, n: int, generator) -> torch.Tensor:
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return torch.randn((n, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)


def pathwise_grad(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample reparameterization (pathwise) gradients of E_q[f(z)], q = N(mu,
    diag(e^{2 d})), d = ``log_sigma``: with z = mu + e^d eps and g = df/dz (ONE backward
    pass for all n draws),

        df/dmu_i = g_i,    df/dd_i = g_i e^{d_i} eps_i.

    ``f`` maps (n, D) to (n,). Returns (grad_mu, grad_log_sigma), each (n, D); their
    means are unbiased estimates of the gradient."""
    mu, log_sigma = mu.detach(), log_sigma.detach()
    eps = _draw_eps(mu, n, generator)
    sigma = torch.exp(log_sigma)
    z = (mu + sigma * eps).requires_grad_(True)
    (g,) = torch.autograd.grad(f(z).sum(), z)
    return g, g * sigma * eps


def elbo_pathwise_grad(
    log_joint: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
    path_derivative: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample reparameterized gradients of the ELBO E_q[log p(D, z) - log q_phi(z)],
    q_phi = N(mu, diag(e^{2 d})), phi = (mu, d = ``log_sigma``), z = mu + e^d eps.

    With ``path_derivative=False`` the total derivative of the integrand: the parameters
    reach -log q_phi(z) through z and directly. With ``path_derivative=True`` the direct
    dependence is cut (the parameters of log q are held fixed, Roeder, Wu & Duvenaud
    2017): only the path through z remains, the total derivative minus the score d log
    q_phi(z) / d phi, which has mean zero. Both are unbiased; at q = p(z | D) the path
    derivative is exactly zero for every eps.

    ``log_joint`` maps (n, D) to (n,). Returns (grad_mu, grad_log_sigma), each (n, D).
    """
    eps = _draw_eps(mu, n, generator)
    # one copy per sample
    mu_s = mu.detach().expand(n, *mu.shape).clone().requires_grad_(True)
    d_s = log_sigma.detach().expand(n, *mu.shape).clone().requires_grad_(True)
    z = mu_s + torch.exp(d_s) * eps
    mu_q, d_q = (mu_s.detach(), d_s.detach()) if path_derivative else (mu_s, d_s)
    integrand = log_joint(z) - normal_log_prob(z, mu_q, torch.exp(d_q))
    # sample s reaches only copy s
    g_mu, g_d = torch.autograd.grad(integrand.sum(), (mu_s, d_s))
    return g_mu, g_d


def score_function_grad(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
    baseline: float | torch.Tensor = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample score-function (REINFORCE, likelihood-ratio) gradients of E_q[f(z)],
    q = N(mu, diag(e^{2 d})): (f(z) - b) * d log q(z) / d(mu, d), with

        d log q / dmu_i = (z_i - mu_i) / sigma_i^2 = eps_i / sigma_i,   d log q / dd_i = eps_i^2 - 1.

    Needs only values of ``f`` (maps (n, D) to (n,)), no derivative. A constant ``baseline`` b
    leaves the mean unchanged (E[score] = 0). Returns (grad_mu, grad_log_sigma), each (n, D)."""
    mu, log_sigma = mu.detach(), log_sigma.detach()
    eps = _draw_eps(mu, n, generator)
    sigma = torch.exp(log_sigma)
    with torch.no_grad():
        fz = (f(mu + sigma * eps) - baseline).unsqueeze(-1)
    return fz * eps / sigma, fz * (eps**2 - 1.0)


def robbins_monro(a: float, t0: float = 1.0, kappa: float = 1.0) -> Callable[[int], float]:
    """The step size rho_t = a / (t + t0)^kappa. For 1/2 < kappa <= 1 it satisfies the
    Robbins-Monro conditions sum rho_t = infinity, sum rho_t^2 < infinity."""
    if not 0.5 < kappa <= 1.0:
        raise ValueError(f"Robbins-Monro needs 1/2 < kappa <= 1, got {kappa}")
    return lambda t: a / (t + t0) ** kappa


def stochastic_elbo_ascent(
    model: "probdl.exact.BayesLinReg",  # noqa: F821
    mu0,
    log_sigma0,
    steps: int,
    step_size: float | Callable[[int], float],
    batch_size: int | None = None,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    path_derivative: bool = False,
) -> dict:
    """Plain stochastic gradient ascent on the ELBO of a diagonal q = N(mu, diag(e^{2 d})) for
    :class:`BayesLinReg`. Each step draws a minibatch of ``batch_size`` rows (all rows when None)
    and ``n_samples`` reparameterized weights, and ascends the unbiased estimate

        N/B sum_{n in batch} log p(y_n | x_n, w) + log p(w) + H(q)

    with step size ``step_size(t)`` (or a constant). With ``path_derivative=True`` the entropy H(q)
    is replaced by -log q(w) at the draws with q's parameters held fixed: the path-derivative
    gradient (:func:`elbo_pathwise_grad`), zero at the exact posterior of a full-batch run.
    Returns a dict with the trajectories ``mu`` and ``log_sigma`` ((steps + 1, D) tensors) and the
    exact ``elbo`` along them."""
    mu = torch.as_tensor(mu0, dtype=model.x.dtype).reshape(model.dim).clone()
    d = torch.as_tensor(log_sigma0, dtype=model.x.dtype).reshape(model.dim).clone()
    rate = step_size if callable(step_size) else (lambda t: float(step_size))
    b = model.n if batch_size is None else int(batch_size)
    if not 1 <= b <= model.n:
        raise ValueError(f"batch_size must be in [1, {model.n}], got {batch_size}")
    mus, ds = [mu.clone()], [d.clone()]
    for t in range(steps):
        mu.requires_grad_(True)
        d.requires_grad_(True)
        idx = None if b == model.n else torch.randperm(model.n, generator=generator)[:b]
        eps = torch.randn((n_samples, model.dim), dtype=mu.dtype, generator=generator)
        w = mu + torch.exp(d) * eps
        if path_derivative:  # -log q(w), q's parameters held fixed: only the path through w remains
            neg_log_q = -normal_log_prob(w, mu.detach(), torch.exp(d.detach())).mean()
        else:
            neg_log_q = gaussian_entropy(torch.exp(d))
        obj = (model.n / b) * model.log_likelihood(w, idx).mean() + model.log_prior(w).mean() + neg_log_q
        g_mu, g_d = torch.autograd.grad(obj, (mu, d))
        with torch.no_grad():
            rho = rate(t)
            mu = mu + rho * g_mu
            d = d + rho * g_d
        mus.append(mu.clone())
        ds.append(d.clone())
    mus, ds = torch.stack(mus), torch.stack(ds)
    with torch.no_grad():
        elbos = model.elbo(mus, sigma=torch.exp(ds))
    return {"mu": mus, "log_sigma": ds, "elbo": elbos}
