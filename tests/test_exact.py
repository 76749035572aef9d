"""Tests of probdl.exact: the closed-form models (conjugate Bayesian linear regression,
the linear-Gaussian latent model and its VAE, probabilistic PCA) against brute-force
integration, torch.distributions, autograd, finite differences and Monte Carlo with
fixed seeds."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from probdl import exact, vi

D64 = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- Bayesian linear regression -------------------------------------------------------


def test_posterior_is_bayes_rule_on_a_grid(blr1):
    w = torch.linspace(-2, 3, 20001, dtype=D64)
    lj = blr1.log_joint(w.unsqueeze(-1))
    dw = w[1] - w[0]
    log_z = torch.logsumexp(lj, 0) + torch.log(dw)  # Riemann sum of exp(log joint)
    torch.testing.assert_close(blr1.log_evidence(), log_z, rtol=0, atol=1e-8)
    post = torch.exp(lj - log_z)
    mean = (w * post).sum() * dw
    var = ((w - mean) ** 2 * post).sum() * dw
    torch.testing.assert_close(blr1.mean[0], mean, rtol=0, atol=1e-8)
    torch.testing.assert_close(blr1.cov[0, 0], var, rtol=0, atol=1e-8)


def test_log_evidence_is_marginal_gaussian(blr3):
    c = (
        blr3.noise_var * torch.eye(blr3.n, dtype=D64)
        + blr3.prior_var * blr3.x @ blr3.x.T
    )
    ref = MultivariateNormal(torch.zeros(blr3.n, dtype=D64), c).log_prob(blr3.y)
    torch.testing.assert_close(blr3.log_evidence(), ref, rtol=0, atol=1e-10)
    # Bayes' rule at any w: log p(y, w) - log p(w | y) = log p(y)
    w = torch.randn(7, 3, generator=gen(6), dtype=D64)
    torch.testing.assert_close(
        blr3.log_joint(w) - blr3.log_posterior(w), blr3.log_evidence().expand(7)
    )


def test_elbo_gap_is_kl_to_posterior(blr3):
    g = gen(7)
    mu = 2 * torch.randn(100, 3, generator=g, dtype=D64)
    sigma = torch.exp(torch.randn(100, 3, generator=g, dtype=D64))
    elbo = blr3.elbo(mu, sigma)
    assert (elbo <= blr3.log_evidence()).all()
    torch.testing.assert_close(
        blr3.log_evidence() - elbo, blr3.kl_posterior(mu, sigma), rtol=1e-10, atol=1e-9
    )
    # full-covariance q, and the maximiser is the posterior
    a = torch.randn(100, 3, 3, generator=g, dtype=D64)
    lt = torch.tril(a, -1) + torch.diag_embed(
        torch.exp(torch.diagonal(a, dim1=-2, dim2=-1))
    )
    torch.testing.assert_close(
        blr3.log_evidence() - blr3.elbo(mu, scale_tril=lt),
        blr3.kl_posterior(mu, scale_tril=lt),
        rtol=1e-10,
        atol=1e-9,
    )
    at_post = blr3.elbo(blr3.mean, scale_tril=torch.linalg.cholesky(blr3.cov))
    torch.testing.assert_close(at_post, blr3.log_evidence(), rtol=0, atol=1e-10)


def test_elbo_terms_match_monte_carlo(blr3):
    mu = torch.tensor([0.2, -0.4, 0.1], dtype=D64)
    sigma = torch.tensor([0.3, 0.5, 0.2], dtype=D64)
    exact = blr3.elbo(mu, sigma)
    for est in (
        vi.elbo_mc(blr3.log_joint, mu, sigma, 20_000, gen(8)),
        vi.elbo_mc_analytic_kl(
            blr3.log_likelihood,
            mu,
            sigma,
            20_000,
            0.0,
            math.sqrt(blr3.prior_var),
            gen(8),
        ),
    ):
        assert abs(est.value - exact) < 4 * est.stderr, (est.value, exact, est.stderr)
        assert (
            est.stderr < 0.2
        )  # a missing factor 1/2 in the trace term moves the ELBO by ~5
    with pytest.raises(ValueError, match="2 samples"):
        vi.mc_mean(torch.zeros(1))


def test_elbo_grad_matches_autograd_and_finite_differences(blr3):
    mu = torch.tensor([0.2, -0.4, 0.1], dtype=D64, requires_grad=True)
    d = torch.tensor([-1.0, -0.5, 0.2], dtype=D64, requires_grad=True)
    gm, gd = torch.autograd.grad(blr3.elbo(mu, torch.exp(d)), (mu, d))
    cm, cd = blr3.elbo_grad(mu.detach(), d.detach())
    torch.testing.assert_close(gm, cm)
    torch.testing.assert_close(gd, cd)
    h = 1e-6
    for i in range(3):
        e = torch.zeros(3, dtype=D64)
        e[i] = h
        fd = (
            blr3.elbo(mu.detach(), torch.exp(d.detach() + e))
            - blr3.elbo(mu.detach(), torch.exp(d.detach() - e))
        ) / (2 * h)
        assert abs(fd - cd[i]) < 1e-5


def test_mean_field_is_stationary(blr3, blr1):
    m, s = blr3.mean_field()
    gm, gd = blr3.elbo_grad(m, torch.log(s))
    assert gm.abs().max() < 1e-9 and gd.abs().max() < 1e-9
    m1, s1 = blr1.mean_field()
    torch.testing.assert_close(
        s1**2, torch.diagonal(blr1.cov)
    )  # one weight: exact posterior
    assert blr1.kl_posterior(m1, s1).abs() < 1e-10


def test_blr_errors():
    with pytest.raises(ValueError, match="rows"):
        exact.BayesLinReg(torch.zeros(5, 2), torch.zeros(4), 0.1)
    with pytest.raises(ValueError, match="positive"):
        exact.BayesLinReg(torch.zeros(5), torch.zeros(5), 0.0)
    m = exact.BayesLinReg(torch.ones(5), torch.zeros(5), 0.1)
    with pytest.raises(ValueError, match="exactly one"):
        m.elbo(torch.zeros(1))


# --- the linear-Gaussian model and its VAE --------------------------------------------


def test_linear_vae_exact_identities():
    model = exact.LinearGaussianVAE(6, 2, noise_var=0.3, seed=1)
    x = torch.randn(10, 6, generator=gen(16), dtype=D64)
    torch.testing.assert_close(
        model.log_evidence(x) - model.elbo(x), model.kl_posterior(x)
    )
    assert (model.elbo(x) <= model.log_evidence(x)).all()
    # same as BayesLinReg with design W and targets x - b
    blr = exact.BayesLinReg(
        model.dec.weight.detach(), (x[0] - model.dec.bias).detach(), 0.3
    )
    torch.testing.assert_close(
        model.log_evidence(x[:1]).detach()[0], blr.log_evidence()
    )
    with torch.no_grad():
        m, s = model.encode(x)
        z = vi.reparameterize(m, s, 20_000, gen(17))
        est = vi.mc_mean(model.log_joint(x, z) - vi.normal_log_prob(z, m, s))
        assert ((est.value - model.elbo(x)).abs() < 4 * est.stderr).all()
        torch.testing.assert_close(
            model.elbo_mc(x, n=20_000, generator=gen(17)), est.value
        )


def test_linear_vae_one_backward_gives_both_networks():
    model = exact.LinearGaussianVAE(5, 2, noise_var=0.5, seed=2)
    x = torch.randn(8, 5, generator=gen(18), dtype=D64)
    params = list(model.parameters())
    closed = torch.autograd.grad(model.elbo(x).sum(), params)
    est = torch.autograd.grad(
        model.elbo_mc(x, n=20_000, generator=gen(19)).sum(), params
    )  # one backward
    for p, a, b in zip(model.named_parameters(), closed, est):
        assert (a - b).abs().max() < 0.05 * (1 + a.abs().max()), p[0]


def test_ppca_max_log_likelihood():
    g = gen(20)
    x = torch.randn(200, 6, generator=g, dtype=D64) @ torch.randn(
        6, 6, generator=g, dtype=D64
    )
    for k, s2 in [(2, 0.3), (3, 0.05), (6, 100.0)]:
        xc = x - x.mean(0)
        lam, u = torch.linalg.eigh(xc.T @ xc / len(x))
        lam, u = lam.flip(0)[:k], u.flip(1)[:, :k]
        w = u * (lam - s2).clamp(min=0).sqrt()
        ref = (
            MultivariateNormal(x.mean(0), w @ w.T + s2 * torch.eye(6, dtype=D64))
            .log_prob(x)
            .mean()
        )
        torch.testing.assert_close(exact.ppca_max_log_likelihood(x, k, s2), ref)
    # a linear-Gaussian VAE with any weights does no better
    model = exact.LinearGaussianVAE(6, 2, noise_var=0.3, seed=3)
    assert model.log_evidence(x).mean() <= exact.ppca_max_log_likelihood(x, 2, 0.3)
    with pytest.raises(ValueError, match="n_latent"):
        exact.ppca_max_log_likelihood(x, 7, 0.1)


def _linear_gaussian(seed=0):
    g = gen(seed)
    W = torch.randn(5, 2, dtype=D64, generator=g)
    b = torch.randn(5, dtype=D64, generator=g)
    x = torch.randn(4, 5, dtype=D64, generator=g) * 2
    return exact.LinearGaussian(W, b, s=0.7), x


def test_linear_gaussian_is_bayesian_linear_regression_per_image():
    model, x = _linear_gaussian(1)
    for i in range(len(x)):
        blr = exact.BayesLinReg(
            model.W, x[i] - model.b, noise_var=model.s**2, prior_var=1.0
        )
        torch.testing.assert_close(
            model.log_evidence(x[i : i + 1])[0], blr.log_evidence()
        )
        post = model.posterior(x[i : i + 1])
        torch.testing.assert_close(post.loc[0], blr.mean)
        torch.testing.assert_close(post.covariance_matrix[0], blr.cov)
        # Bayes' rule at an arbitrary z
        z = torch.randn(3, 1, 2, dtype=D64, generator=gen(i))
        torch.testing.assert_close(
            model.log_joint(x[i : i + 1], z) - post.log_prob(z),
            model.log_evidence(x[i : i + 1]).expand(3, 1),
        )


def test_linear_gaussian_elbo_gap_is_kl_and_matches_torch():
    model, x = _linear_gaussian(2)
    g = gen(3)
    mu, sigma = (
        torch.randn(4, 2, dtype=D64, generator=g),
        torch.exp(torch.randn(4, 2, dtype=D64, generator=g)),
    )
    kl = model.kl_posterior(x, mu, sigma)
    torch.testing.assert_close(model.log_evidence(x) - model.elbo(x, mu, sigma), kl)
    ref = torch.distributions.kl_divergence(
        MultivariateNormal(mu, torch.diag_embed(sigma**2)), model.posterior(x)
    )
    torch.testing.assert_close(kl, ref)


def test_estimate_is_exact_at_the_true_posterior_of_a_linear_gaussian_model():
    model, x = _linear_gaussian(0)
    truth = model.log_evidence(x)
    for k in (1, 10, 100):
        est = model.log_marginal(x, k, generator=torch.Generator().manual_seed(k))
        torch.testing.assert_close(est, truth, atol=1e-9, rtol=0)
    # a wrong q (the prior) is below and approaches log p(x) as K grows
    prior = MultivariateNormal(
        torch.zeros(4, 2, dtype=D64), covariance_matrix=torch.eye(2, dtype=D64)
    )
    gaps = []
    for k in (1, 100, 10_000):
        est = torch.stack(
            [
                model.log_marginal(
                    x, k, q=prior, generator=torch.Generator().manual_seed(r)
                )
                for r in range(8)
            ]
        ).mean(0)
        gaps.append((truth - est).mean().item())
    assert gaps[0] > gaps[1] > gaps[2] > -1e-2, gaps
    # a diagonal q works too (seeded through mean and stddev), and is below log p(x) on
    # average
    diag = torch.distributions.Independent(
        torch.distributions.Normal(torch.zeros(4, 2, dtype=D64), 1.0), 1
    )
    est = model.log_marginal(x, 5, q=diag, generator=gen(9))
    assert est.shape == (4,) and torch.isfinite(est).all()


def test_linear_gaussian_errors():
    model, x = _linear_gaussian(0)
    with pytest.raises(ValueError, match="positive int"):
        model.log_marginal(x, 0)
    with pytest.raises(ValueError, match="W must be"):
        exact.LinearGaussian(torch.zeros(5, 2), torch.zeros(4), 1.0)
    with pytest.raises(ValueError, match="positive"):
        exact.LinearGaussian(torch.zeros(5, 2), torch.zeros(5), 0.0)


def test_linear_vae_is_the_linear_gaussian_model_with_an_encoder():
    vae = exact.LinearGaussianVAE(6, 2, noise_var=0.3, seed=4)
    x = torch.randn(7, 6, generator=gen(21), dtype=D64)
    model = exact.LinearGaussian(vae.dec.weight, vae.dec.bias, math.sqrt(0.3))
    m, s = vae.encode(x)
    torch.testing.assert_close(vae.elbo(x), model.elbo(x, m, s))
    torch.testing.assert_close(vae.log_evidence(x), model.log_evidence(x))
    z = torch.randn(3, 7, 2, generator=gen(22), dtype=D64)
    torch.testing.assert_close(vae.log_joint(x, z), model.log_joint(x, z))
