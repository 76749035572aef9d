"""Tests of probdl.vi: the mathematics, against torch.distributions, brute force, autograd,
finite differences and Monte Carlo with fixed seeds."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from probdl import exact, vi

D64 = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- kl_normal / kl_mvn -----------------------------------------------------------------------


def test_kl_normal_matches_torch_distributions():
    g = gen(1)
    mq, mp = torch.randn(50, generator=g, dtype=D64), torch.randn(50, generator=g, dtype=D64)
    sq, sp = torch.rand(50, generator=g, dtype=D64) + 0.1, torch.rand(50, generator=g, dtype=D64) + 0.1
    ref = kl_divergence(Normal(mq, sq), Normal(mp, sp))
    torch.testing.assert_close(vi.kl_normal(mq, sq, mp, sp), ref, rtol=1e-12, atol=1e-12)
    # default prior N(0, 1)
    torch.testing.assert_close(vi.kl_normal(mq, sq), kl_divergence(Normal(mq, sq), Normal(0.0, 1.0)))


def test_kl_normal_matches_monte_carlo():
    g = gen(2)
    mq, sq, mp, sp = torch.tensor(0.3, dtype=D64), torch.tensor(0.7, dtype=D64), -0.5, 1.5
    z = mq + sq * torch.randn(200_000, generator=g, dtype=D64)
    lr = Normal(mq, sq).log_prob(z) - Normal(mp, sp).log_prob(z)
    est, se = lr.mean(), lr.std() / math.sqrt(len(z))
    assert abs(est - vi.kl_normal(mq, sq, mp, sp)) < 4 * se


def test_kl_normal_zero_iff_equal_and_errors():
    assert vi.kl_normal(torch.tensor(0.2), torch.tensor(1.3), 0.2, 1.3).abs() < 1e-6
    with pytest.raises(ValueError, match="positive"):
        vi.kl_normal(torch.tensor(0.0), torch.tensor(-1.0))


def test_kl_mvn_matches_torch_and_diagonal():
    g = gen(3)
    a = torch.randn(4, 4, generator=g, dtype=D64)
    b = torch.randn(4, 4, generator=g, dtype=D64)
    cq, cp = a @ a.T + 0.5 * torch.eye(4, dtype=D64), b @ b.T + 0.5 * torch.eye(4, dtype=D64)
    mq, mp = torch.randn(4, generator=g, dtype=D64), torch.randn(4, generator=g, dtype=D64)
    ref = kl_divergence(MultivariateNormal(mq, cq), MultivariateNormal(mp, cp))
    torch.testing.assert_close(vi.kl_mvn(mq, cq, mp, cp), ref)
    sq, sp = torch.rand(4, generator=g, dtype=D64) + 0.2, torch.rand(4, generator=g, dtype=D64) + 0.2
    torch.testing.assert_close(
        vi.kl_mvn(mq, torch.diag(sq**2), mp, torch.diag(sp**2)), vi.kl_normal(mq, sq, mp, sp).sum()
    )


def test_entropy_and_log_prob():
    g = gen(4)
    mu, s = torch.randn(3, 5, generator=g, dtype=D64), torch.rand(3, 5, generator=g, dtype=D64) + 0.1
    z = torch.randn(3, 5, generator=g, dtype=D64)
    torch.testing.assert_close(vi.normal_log_prob(z, mu, s), Normal(mu, s).log_prob(z).sum(-1))
    torch.testing.assert_close(vi.gaussian_entropy(s), Normal(mu, s).entropy().sum(-1))


# --- reparameterize / log_mean_exp (the existing API) -----------------------------------------


def test_reparameterize_moments_and_gradient():
    mu = torch.tensor([1.0, -2.0], requires_grad=True)
    sigma = torch.tensor([0.5, 2.0], requires_grad=True)
    z = vi.reparameterize(mu, sigma, n=100_000, generator=gen(5))
    assert z.shape == (100_000, 2)
    torch.testing.assert_close(z.mean(0), mu.detach(), atol=0.03, rtol=0)
    torch.testing.assert_close(z.std(0), sigma.detach(), atol=0.03, rtol=0)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.full((2,), 100_000.0))
    with pytest.raises(ValueError, match="n must be"):
        vi.reparameterize(mu, sigma, n=0)


def test_log_mean_exp():
    x = torch.tensor([[1000.0, 1000.0], [1000.0, 0.0]])
    torch.testing.assert_close(vi.log_mean_exp(x, dim=0), torch.tensor([1000.0, 1000.0 - math.log(2)]))


# --- the conjugate model ----------------------------------------------------------------------


@pytest.fixture
def blr1():
    x, y = exact.linear_data(20, 0.7, 0.1, seed=0)
    return exact.BayesLinReg(x, y, noise_var=0.1, prior_var=1.0)


@pytest.fixture
def blr3():
    x, y = exact.linear_data(25, [0.5, -1.0, 0.3], 0.2, seed=1)
    return exact.BayesLinReg(x, y, noise_var=0.2, prior_var=2.0)


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
    c = blr3.noise_var * torch.eye(blr3.n, dtype=D64) + blr3.prior_var * blr3.x @ blr3.x.T
    ref = MultivariateNormal(torch.zeros(blr3.n, dtype=D64), c).log_prob(blr3.y)
    torch.testing.assert_close(blr3.log_evidence(), ref, rtol=0, atol=1e-10)
    # Bayes' rule at any w: log p(y, w) - log p(w | y) = log p(y)
    w = torch.randn(7, 3, generator=gen(6), dtype=D64)
    torch.testing.assert_close(blr3.log_joint(w) - blr3.log_posterior(w), blr3.log_evidence().expand(7))


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
    lt = torch.tril(a, -1) + torch.diag_embed(torch.exp(torch.diagonal(a, dim1=-2, dim2=-1)))
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
            blr3.log_likelihood, mu, sigma, 20_000, 0.0, math.sqrt(blr3.prior_var), gen(8)
        ),
    ):
        assert abs(est.value - exact) < 4 * est.stderr, (est.value, exact, est.stderr)
        assert est.stderr < 0.2  # a missing factor 1/2 in the trace term moves the ELBO by ~5
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
    torch.testing.assert_close(s1**2, torch.diagonal(blr1.cov))  # one weight: exact posterior
    assert blr1.kl_posterior(m1, s1).abs() < 1e-10


def test_blr_errors():
    with pytest.raises(ValueError, match="rows"):
        exact.BayesLinReg(torch.zeros(5, 2), torch.zeros(4), 0.1)
    with pytest.raises(ValueError, match="positive"):
        exact.BayesLinReg(torch.zeros(5), torch.zeros(5), 0.0)
    m = exact.BayesLinReg(torch.ones(5), torch.zeros(5), 0.1)
    with pytest.raises(ValueError, match="exactly one"):
        m.elbo(torch.zeros(1))


# --- gradient estimators ----------------------------------------------------------------------


def test_pathwise_and_score_function_are_unbiased():
    # f(z) = sum(z^3): E f = sum(mu^3 + 3 mu sigma^2); d/dmu = 3 mu^2 + 3 sigma^2; d/dd = 6 mu sigma^2
    mu = torch.tensor([0.5, -1.0], dtype=D64)
    d = torch.tensor([-0.3, 0.2], dtype=D64)
    s2 = torch.exp(2 * d)
    true_mu, true_d = 3 * mu**2 + 3 * s2, 6 * mu * s2
    f = lambda z: (z**3).sum(-1)
    for est in (vi.pathwise_grad, vi.score_function_grad):
        gm, gd = est(f, mu, d, 400_000, gen(10))
        se_m, se_d = gm.std(0) / math.sqrt(len(gm)), gd.std(0) / math.sqrt(len(gd))
        assert ((gm.mean(0) - true_mu).abs() < 4 * se_m).all(), est.__name__
        assert ((gd.mean(0) - true_d).abs() < 4 * se_d).all(), est.__name__
    # a baseline leaves the score-function mean unchanged, and the pathwise variance is smaller
    gm_b, _ = vi.score_function_grad(f, mu, d, 400_000, gen(10), baseline=1.7)
    gm_0, _ = vi.score_function_grad(f, mu, d, 400_000, gen(10))
    assert ((gm_b.mean(0) - gm_0.mean(0)).abs() < 4 * gm_0.std(0) / math.sqrt(400_000)).all()
    gp, _ = vi.pathwise_grad(f, mu, d, 10_000, gen(11))
    assert (gp.var(0) < gm_0.var(0)).all()


def test_pathwise_grad_equals_autograd_through_sampler():
    mu = torch.tensor([0.5, -1.0], dtype=D64, requires_grad=True)
    d = torch.tensor([-0.3, 0.2], dtype=D64, requires_grad=True)
    f = lambda z: torch.sin(z).sum(-1) * z[..., 0]
    gm, gd = vi.pathwise_grad(f, mu, d, 64, gen(12))
    eps = torch.randn((64, 2), generator=gen(12), dtype=D64)
    am, ad = torch.autograd.grad(f(mu + torch.exp(d) * eps).sum(), (mu, d))
    torch.testing.assert_close(gm.sum(0), am)
    torch.testing.assert_close(gd.sum(0), ad)


def test_pathwise_elbo_gradient_matches_closed_form(blr3):
    mu = torch.tensor([0.2, -0.4, 0.1], dtype=D64)
    d = torch.tensor([-1.0, -0.5, -0.2], dtype=D64)
    gm, gd = vi.pathwise_grad(blr3.log_joint, mu, d, 50_000, gen(13))
    cm, cd = blr3.elbo_grad(mu, d)
    # entropy term: d H / d d_i = 1
    assert ((gm.mean(0) - cm).abs() < 4 * gm.std(0) / math.sqrt(50_000)).all()
    assert ((gd.mean(0) + 1 - cd).abs() < 4 * gd.std(0) / math.sqrt(50_000)).all()


# --- stochastic optimisation ------------------------------------------------------------------


def test_robbins_monro_schedule():
    rho = vi.robbins_monro(0.5, t0=10, kappa=0.75)
    assert rho(0) == pytest.approx(0.5 / 10**0.75)
    assert rho(100) < rho(10)
    with pytest.raises(ValueError, match="kappa"):
        vi.robbins_monro(1.0, kappa=0.4)


def test_stochastic_ascent_converges_to_posterior(blr1):
    out = vi.stochastic_elbo_ascent(
        blr1,
        0.0,
        0.0,
        steps=3000,
        step_size=vi.robbins_monro(1.0, t0=100, kappa=1.0),
        batch_size=5,
        n_samples=4,
        generator=gen(14),
    )
    assert out["mu"].shape == (3001, 1)
    m, s = blr1.mean_field()
    assert abs(out["mu"][-1] - m) < 0.2 * s
    assert abs(torch.exp(out["log_sigma"][-1]) - s) < 0.1 * s
    assert out["elbo"][-1] > out["elbo"][0]
    assert blr1.log_evidence() - out["elbo"][-1] < 0.05


def test_minibatch_gradient_is_unbiased(blr3):
    w = torch.tensor([0.1, 0.2, -0.3], dtype=D64, requires_grad=True)
    (full,) = torch.autograd.grad(blr3.log_likelihood(w), w)
    perm = torch.randperm(blr3.n, generator=gen(15))
    grads = []
    for idx in perm.reshape(5, 5):  # a partition into 5 minibatches of 5
        (gb,) = torch.autograd.grad(blr3.n / 5 * blr3.log_likelihood(w, idx), w)
        grads.append(gb)
    torch.testing.assert_close(torch.stack(grads).mean(0), full)


# --- the linear-Gaussian VAE ------------------------------------------------------------------


def test_linear_vae_exact_identities():
    model = exact.LinearGaussianVAE(6, 2, noise_var=0.3, seed=1)
    x = torch.randn(10, 6, generator=gen(16), dtype=D64)
    torch.testing.assert_close(model.log_evidence(x) - model.elbo(x), model.posterior_kl(x))
    assert (model.elbo(x) <= model.log_evidence(x)).all()
    # same as BayesLinReg with design W and targets x - b
    blr = exact.BayesLinReg(model.dec.weight.detach(), (x[0] - model.dec.bias).detach(), 0.3)
    torch.testing.assert_close(model.log_evidence(x[:1]).detach()[0], blr.log_evidence())
    with torch.no_grad():
        m, s = model.encode(x)
        z = vi.reparameterize(m, s, 20_000, gen(17))
        est = vi.mc_mean(model.log_joint(x, z) - vi.normal_log_prob(z, m, s))
        assert ((est.value - model.elbo(x)).abs() < 4 * est.stderr).all()
        torch.testing.assert_close(model.elbo_mc(x, n=20_000, generator=gen(17)), est.value)


def test_linear_vae_one_backward_gives_both_networks():
    model = exact.LinearGaussianVAE(5, 2, noise_var=0.5, seed=2)
    x = torch.randn(8, 5, generator=gen(18), dtype=D64)
    params = list(model.parameters())
    closed = torch.autograd.grad(model.elbo(x).sum(), params)
    est = torch.autograd.grad(model.elbo_mc(x, n=20_000, generator=gen(19)).sum(), params)  # one backward
    for p, a, b in zip(model.named_parameters(), closed, est):
        assert (a - b).abs().max() < 0.05 * (1 + a.abs().max()), p[0]


def test_ppca_max_log_likelihood():
    g = gen(20)
    x = torch.randn(200, 6, generator=g, dtype=D64) @ torch.randn(6, 6, generator=g, dtype=D64)
    for k, s2 in [(2, 0.3), (3, 0.05), (6, 100.0)]:
        xc = x - x.mean(0)
        lam, u = torch.linalg.eigh(xc.T @ xc / len(x))
        lam, u = lam.flip(0)[:k], u.flip(1)[:, :k]
        w = u * (lam - s2).clamp(min=0).sqrt()
        ref = MultivariateNormal(x.mean(0), w @ w.T + s2 * torch.eye(6, dtype=D64)).log_prob(x).mean()
        torch.testing.assert_close(exact.ppca_max_log_likelihood(x, k, s2), ref)
    # a linear-Gaussian VAE with any weights does no better
    model = exact.LinearGaussianVAE(6, 2, noise_var=0.3, seed=3)
    assert model.log_evidence(x).mean() <= exact.ppca_max_log_likelihood(x, 2, 0.3)
    with pytest.raises(ValueError, match="latent_dim"):
        exact.ppca_max_log_likelihood(x, 7, 0.1)
