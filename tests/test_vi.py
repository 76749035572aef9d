"""Tests of probdl.vi: the mathematics, against torch.distributions, brute force,
autograd, finite differences and Monte Carlo with fixed seeds."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from probdl import vi

D64 = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- kl_normal / kl_mvn ---------------------------------------------------------------


def test_kl_normal_matches_torch_distributions():
    g = gen(1)
    mq, mp = (
        torch.randn(50, generator=g, dtype=D64),
        torch.randn(50, generator=g, dtype=D64),
    )
    sq, sp = (
        torch.rand(50, generator=g, dtype=D64) + 0.1,
        torch.rand(50, generator=g, dtype=D64) + 0.1,
    )
    ref = kl_divergence(Normal(mq, sq), Normal(mp, sp))
    torch.testing.assert_close(
        vi.kl_normal(mq, sq, mp, sp), ref, rtol=1e-12, atol=1e-12
    )
    # default prior N(0, 1)
    torch.testing.assert_close(
        vi.kl_normal(mq, sq), kl_divergence(Normal(mq, sq), Normal(0.0, 1.0))
    )


def test_kl_normal_matches_monte_carlo():
    g = gen(2)
    mq, sq, mp, sp = (
        torch.tensor(0.3, dtype=D64),
        torch.tensor(0.7, dtype=D64),
        -0.5,
        1.5,
    )
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
    cq, cp = (
        a @ a.T + 0.5 * torch.eye(4, dtype=D64),
        b @ b.T + 0.5 * torch.eye(4, dtype=D64),
    )
    mq, mp = (
        torch.randn(4, generator=g, dtype=D64),
        torch.randn(4, generator=g, dtype=D64),
    )
    ref = kl_divergence(MultivariateNormal(mq, cq), MultivariateNormal(mp, cp))
    torch.testing.assert_close(vi.kl_mvn(mq, cq, mp, cp), ref)
    sq, sp = (
        torch.rand(4, generator=g, dtype=D64) + 0.2,
        torch.rand(4, generator=g, dtype=D64) + 0.2,
    )
    torch.testing.assert_close(
        vi.kl_mvn(mq, torch.diag(sq**2), mp, torch.diag(sp**2)),
        vi.kl_normal(mq, sq, mp, sp).sum(),
    )


def test_entropy_and_log_prob():
    g = gen(4)
    mu, s = (
        torch.randn(3, 5, generator=g, dtype=D64),
        torch.rand(3, 5, generator=g, dtype=D64) + 0.1,
    )
    z = torch.randn(3, 5, generator=g, dtype=D64)
    torch.testing.assert_close(
        vi.normal_log_prob(z, mu, s), Normal(mu, s).log_prob(z).sum(-1)
    )
    torch.testing.assert_close(vi.gaussian_entropy(s), Normal(mu, s).entropy().sum(-1))


# --- reparameterize / log_mean_exp (the existing API) ---------------------------------


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
    torch.testing.assert_close(
        vi.log_mean_exp(x, dim=0), torch.tensor([1000.0, 1000.0 - math.log(2)])
    )


# --- the conjugate model, to check the estimators against -----------------------------


def test_pathwise_and_score_function_are_unbiased():
    # f(z) = sum(z^3): E f = sum(mu^3 + 3 mu sigma^2); d/dmu = 3 mu^2 + 3 sigma^2; d/dd
    # = 6 mu sigma^2
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
    # a baseline leaves the score-function mean unchanged, and the pathwise variance is
    # smaller
    gm_b, _ = vi.score_function_grad(f, mu, d, 400_000, gen(10), baseline=1.7)
    gm_0, _ = vi.score_function_grad(f, mu, d, 400_000, gen(10))
    assert (
        (gm_b.mean(0) - gm_0.mean(0)).abs() < 4 * gm_0.std(0) / math.sqrt(400_000)
    ).all()
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


# --- stochastic optimisation ----------------------------------------------------------


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


# --- the ELBO's gradient: total derivative and path derivative ------------------------


@pytest.mark.parametrize("path_derivative", [False, True])
def test_elbo_pathwise_grad_is_unbiased(blr3, path_derivative):
    mu = blr3.mean + torch.tensor([0.3, -0.2, 0.1], dtype=D64)
    d = torch.log(blr3.cov.diagonal().sqrt()) + torch.tensor(
        [-0.5, 0.2, 0.4], dtype=D64
    )
    n = 40_000
    gm, gd = vi.elbo_pathwise_grad(
        blr3.log_joint, mu, d, n, gen(30), path_derivative=path_derivative
    )
    cm, cd = blr3.elbo_grad(mu, d)
    em, ed = vi.mc_mean(gm), vi.mc_mean(gd)
    assert ((em.value - cm).abs() < 4 * em.stderr).all(), (em.value, cm)
    assert ((ed.value - cd).abs() < 4 * ed.stderr).all(), (ed.value, cd)


def test_total_derivative_is_pathwise_plus_entropy_and_path_derivative_drops_the_score(
    blr3,
):
    mu = torch.tensor([0.2, -0.4, 0.1], dtype=D64)
    d = torch.tensor([-1.0, -0.5, -0.2], dtype=D64)
    pm, pd = vi.pathwise_grad(blr3.log_joint, mu, d, 50, gen(31))
    tm, td = vi.elbo_pathwise_grad(blr3.log_joint, mu, d, 50, gen(31))
    sm, sd = vi.elbo_pathwise_grad(
        blr3.log_joint, mu, d, 50, gen(31), path_derivative=True
    )
    torch.testing.assert_close(tm, pm)  # d/dmu of -log q(mu + sigma eps) is zero
    torch.testing.assert_close(
        td, pd + 1
    )  # d/dd of -log q(mu + sigma eps) = d/dd (d + eps^2/2) = 1
    eps = torch.randn((50, 3), generator=gen(31), dtype=D64)
    # total - path = the score of q at z: (eps / sigma, eps^2 - 1)
    torch.testing.assert_close(tm - sm, -eps / torch.exp(d))
    torch.testing.assert_close(td - sd, -(eps**2 - 1))


def test_path_derivative_has_zero_variance_at_the_posterior(blr1):
    mu, d = (
        blr1.mean,
        torch.log(blr1.cov.diagonal().sqrt()),
    )  # one weight: q can equal the posterior
    gm, gd = vi.elbo_pathwise_grad(
        blr1.log_joint, mu, d, 1000, gen(32), path_derivative=True
    )
    assert gm.abs().max() < 1e-9 and gd.abs().max() < 1e-9
    tm, td = vi.elbo_pathwise_grad(blr1.log_joint, mu, d, 1000, gen(32))
    # the total derivative keeps the score: variances 1/sigma^2 and 2
    torch.testing.assert_close(tm.var(), 1 / blr1.cov[0, 0], rtol=0.15, atol=0)
    torch.testing.assert_close(
        td.var(), torch.tensor(2.0, dtype=D64), rtol=0.15, atol=0
    )


def test_elbo_pathwise_grad_errors():
    with pytest.raises(ValueError, match="n must be"):
        vi.elbo_pathwise_grad(lambda z: z.sum(-1), torch.zeros(2), torch.zeros(2), 0)


def test_stochastic_ascent_with_the_path_derivative_stays_at_the_posterior(blr1):
    mu, d = blr1.mean, torch.log(blr1.cov.diagonal().sqrt())
    kw = dict(steps=5, step_size=0.01, batch_size=None, n_samples=1, generator=gen(33))
    still = vi.stochastic_elbo_ascent(blr1, mu, d, path_derivative=True, **kw)
    torch.testing.assert_close(still["mu"][-1], mu, rtol=0, atol=1e-12)
    torch.testing.assert_close(still["log_sigma"][-1], d, rtol=0, atol=1e-12)
    moved = vi.stochastic_elbo_ascent(
        blr1, mu, d, **kw
    )  # the total derivative keeps the score's noise
    assert (moved["mu"][-1] - mu).abs() > 1e-4
