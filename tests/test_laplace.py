"""Tests of probdl.laplace: against laplace-torch, against the closed form of Bayesian
linear regression and of a Beta posterior, finite differences, and Monte Carlo."""

import math
import warnings

import pytest
import torch
from torch import nn

from probdl import exact, laplace, mlp
from probdl import laplace_curvature as curv


def small_problem(likelihood: str, seed: int = 0):
    torch.manual_seed(seed)
    x = torch.randn(30, 3, dtype=torch.float64)
    if likelihood == "regression":
        model = mlp.PlainMLP([3, 6, 5, 2], likelihood="gaussian").double()
        y = torch.randn(30, 2, dtype=torch.float64)
        kw = dict(prior_precision=0.7, sigma_noise=0.3)
    else:
        model = mlp.PlainMLP([3, 6, 5, 4]).double()
        y = torch.randint(0, 4, (30,))
        kw = dict(prior_precision=0.7)
    return model, x, y, kw


def close(a, b, rtol=1e-5):
    """Equal to ``rtol`` relative to the larger entry (laplace-torch's GGN is accurate
    to ~1e-8)."""
    a, b = (
        torch.as_tensor(a, dtype=torch.float64),
        torch.as_tensor(b, dtype=torch.float64),
    )
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-12)
    assert (a - b).abs().max().item() <= rtol * scale, (
        (a - b).abs().max().item(),
        scale,
    )


@pytest.mark.parametrize("likelihood", ["regression", "classification"])
@pytest.mark.parametrize("subset", ["all", "last_layer"])
@pytest.mark.parametrize("structure", ["full", "diag"])
def test_against_laplace_torch(likelihood, subset, structure):
    lt_mod = pytest.importorskip("laplace")
    from torch.utils.data import DataLoader, TensorDataset

    model, x, y, kw = small_problem(likelihood)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lt_mod.Laplace(
            model,
            likelihood,
            subset_of_weights=subset,
            hessian_structure=structure,
            **kw,
        )
        ref.fit(DataLoader(TensorDataset(x, y), batch_size=len(x)))
        ref_lml = ref.log_marginal_likelihood()
        xt = torch.randn(7, 3, dtype=torch.float64)
        ref_pred = ref(xt, pred_type="glm", link_approx="probit")
    ours = laplace.Laplace(
        model,
        likelihood,
        hessian="ggn" if structure == "full" else "diag",
        subset=subset,
        **kw,
    )
    ours.fit(x, y)
    close(ours.mean, ref.mean, 0)
    if structure == "full":
        close(ours.posterior_covariance, ref.posterior_covariance)
    else:
        close(ours.posterior_variance, ref.posterior_variance)
    close(ours.log_marginal_likelihood(), ref_lml)
    if likelihood == "regression":
        mean, var = ours.predictive(xt)
        close(mean, ref_pred[0])
        close(var, torch.diagonal(ref_pred[1], dim1=1, dim2=2))
    else:
        close(ours.predictive(xt), ref_pred)


def blr_problem():
    torch.manual_seed(1)
    x = torch.randn(25, 3, dtype=torch.float64)
    y = x @ torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64) + 0.3 * torch.randn(
        25, dtype=torch.float64
    )
    return x, y, exact.BayesLinReg(x, y, noise_var=0.09, prior_var=2.0)


@pytest.mark.parametrize("hessian", ["full", "ggn"])
def test_exact_for_bayesian_linear_regression(hessian):
    x, y, blr = blr_problem()
    mode = curv.find_mode(blr.log_joint, torch.zeros(3))
    torch.testing.assert_close(mode, blr.mean, rtol=0, atol=1e-10)
    model = nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(mode.reshape(1, 3))
    la = laplace.Laplace(
        model, "regression", hessian=hessian, prior_precision=0.5, sigma_noise=0.3
    )
    la.fit(x, y.reshape(-1, 1))
    torch.testing.assert_close(la.mean, blr.mean, rtol=0, atol=1e-8)
    torch.testing.assert_close(la.posterior_covariance, blr.cov, rtol=0, atol=1e-8)
    torch.testing.assert_close(
        la.log_marginal_likelihood(), blr.log_evidence(), rtol=0, atol=1e-8
    )
    # the generic one-off Laplace of the log joint gives the same evidence
    lm, h = curv.laplace_log_marginal(blr.log_joint, mode)
    torch.testing.assert_close(lm, blr.log_evidence(), rtol=0, atol=1e-8)
    torch.testing.assert_close(h, blr.precision, rtol=0, atol=1e-8)


def test_optimized_prior_precision_maximizes_the_evidence():
    x, y, _ = blr_problem()
    model = nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(exact.BayesLinReg(x, y, 0.09, 2.0).mean.reshape(1, 3))
    la = laplace.Laplace(
        model, "regression", hessian="ggn", prior_precision=3.0, sigma_noise=0.5
    ).fit(x, y[:, None])
    la.optimize_prior_precision(sigma_noise=True)
    best = la.log_marginal_likelihood()
    for f in (0.9, 1.1):
        assert la.log_marginal_likelihood(la.prior_precision * f) < best
        assert la.log_marginal_likelihood(sigma_noise=la.sigma_noise * f) < best
    g = torch.func.grad(lambda d: la.log_marginal_likelihood(d))(la.prior_precision)
    assert abs(g.item()) < 1e-4 * abs(best.item())


def test_beta_posterior_mode_and_evidence():
    a, b, k, n = 2.0, 3.0, 7, 20
    beta = torch.distributions.Beta(
        torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    )

    def log_joint(t):
        t = t.squeeze()
        return beta.log_prob(t) + k * torch.log(t) + (n - k) * torch.log1p(-t)

    mode = curv.find_mode(log_joint, torch.tensor([0.5]))
    assert abs(mode.item() - (a + k - 1) / (a + b + n - 2)) < 1e-12
    lm, _ = curv.laplace_log_marginal(log_joint, mode)
    exact_lm = (
        torch.lgamma(torch.tensor(a + k))
        + torch.lgamma(torch.tensor(b + n - k))
        - torch.lgamma(torch.tensor(a + b + n))
        - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    )
    assert 0 < abs(lm.item() - exact_lm.item()) < 0.05


def test_exact_hessian_against_autograd():
    model, x, y, kw = small_problem("regression")
    net = laplace.Laplace(model, "regression", hessian="full", **kw)._network()
    h, loss = curv.hessian(net, x, y, "regression", chunk=7)
    ref = torch.autograd.functional.hessian(
        lambda t: curv.nll_sum(net(t, x), y, "regression"), net.theta
    )
    torch.testing.assert_close(h, ref, rtol=1e-10, atol=1e-10)
    g, _ = curv.ggn(net, x, y, "regression")
    assert (h - g).abs().max() > 1e-3  # a ReLU network's Hessian is not its GGN
    assert torch.linalg.eigvalsh(g).min() > -1e-10


@pytest.mark.parametrize("likelihood", ["regression", "classification"])
def test_kron_against_dense_and_samples(likelihood):
    model, x, y, kw = small_problem(likelihood)
    la = laplace.Laplace(model, likelihood, hessian="kron", **kw).fit(x, y)
    cov = la.posterior_covariance
    torch.testing.assert_close(torch.diagonal(cov), la.posterior_variance)
    _, jac = la.net.jacobian(x[:5])
    torch.testing.assert_close(
        la.functional_variance(jac), jac @ cov @ jac.transpose(1, 2)
    )
    draws = la.sample(20000, generator=torch.Generator().manual_seed(0)) - la.mean
    se = torch.diagonal(cov) * math.sqrt(2 / len(draws))
    assert ((draws.var(0) - torch.diagonal(cov)).abs() < 5 * se).all()


def test_kron_last_layer_is_exact_for_regression():
    model, x, y, kw = small_problem("regression")
    a = laplace.Laplace(
        model, "regression", hessian="kron", subset="last_layer", **kw
    ).fit(x, y)
    b = laplace.Laplace(
        model, "regression", hessian="ggn", subset="last_layer", **kw
    ).fit(x, y)
    torch.testing.assert_close(a.posterior_covariance, b.posterior_covariance)
    torch.testing.assert_close(a.log_marginal_likelihood(), b.log_marginal_likelihood())


def test_sampling_predictive_of_a_linear_model_matches_linearized():
    x, y, _ = blr_problem()
    model = nn.Linear(3, 2).double()
    yy = torch.stack([y, -y], 1)
    la = laplace.Laplace(
        model, "regression", hessian="ggn", prior_precision=1.0, sigma_noise=0.3
    ).fit(x, yy)
    xt = torch.randn(4, 3, dtype=torch.float64)
    m_lin, v_lin = la.predictive(xt)
    m_s, v_s = la.predictive(
        xt,
        method="sampling",
        n_samples=20000,
        generator=torch.Generator().manual_seed(0),
    )
    assert ((m_s - m_lin).abs() < 5 * (v_lin / 20000).sqrt()).all()
    assert ((v_s - v_lin).abs() < 5 * v_lin * math.sqrt(2 / 20000)).all()


def test_classification_mc_link_near_probit():
    model, x, y, kw = small_problem("classification")
    la = laplace.Laplace(model, "classification", hessian="ggn", **kw).fit(x, y)
    p_probit = la.predictive(x[:5])
    p_mc = la.predictive(
        x[:5],
        link_approx="mc",
        n_samples=4000,
        generator=torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(p_mc.sum(-1), torch.ones(5, dtype=torch.float64))
    assert (p_mc - p_probit).abs().max() < 0.05


def test_map_objective_minimum_is_the_posterior_mode():
    x, y, blr = blr_problem()
    model = mlp.PlainMLP([3, 1], likelihood="gaussian", noise_std=0.3).double()
    model.layers[0].bias.requires_grad_(False)
    with torch.no_grad():
        model.layers[0].bias.zero_()
        model.layers[0].weight.copy_(blr.mean.reshape(1, 3))
    terms = laplace.map_objective(
        model, x, y[:, None], n_data=len(x), prior_precision=0.5
    )
    grads = torch.autograd.grad(terms["loss"], model.layers[0].weight)[0]
    assert grads.abs().max() < 1e-8


def test_errors():
    model, x, y, kw = small_problem("regression")
    with pytest.raises(ValueError, match="hessian must be"):
        laplace.Laplace(model, hessian="exact")
    with pytest.raises(ValueError, match="likelihood must be"):
        laplace.Laplace(model, likelihood="gaussian")
    with pytest.raises(ValueError, match="prior_precision must be"):
        laplace.Laplace(model, prior_precision=-1.0)
    with pytest.raises(ValueError, match="one positive number, got a tensor of shape"):
        laplace.Laplace(model, prior_precision=torch.ones(3))
    with pytest.raises(ValueError, match="sigma_noise must be a positive, finite"):
        laplace.Laplace(model, sigma_noise=float("nan"))
    la = laplace.Laplace(model, prior_precision=torch.tensor([2.0]), sigma_noise=3)
    assert la.prior_precision.dtype == torch.float64 and la.prior_precision.shape == ()
    assert la.prior_precision == 2.0 and la.sigma_noise == 3.0
    with pytest.raises(RuntimeError, match="fit"):
        laplace.Laplace(model).log_marginal_likelihood()
    with pytest.raises(ValueError, match=r"\(N, outputs\)"):
        laplace.Laplace(model).fit(x, y[:, 0])
    la = laplace.Laplace(model, hessian="diag").fit(x, y)
    with pytest.raises(AttributeError, match="posterior_variance"):
        la.posterior_covariance
    with pytest.raises(ValueError, match="method must be"):
        la.predictive(x, method="mc")


@pytest.mark.parametrize("likelihood", ["regression", "classification"])
def test_cholesky_and_eigendecomposition_agree(likelihood):
    model, x, y, kw = small_problem(likelihood)
    la = laplace.Laplace(model, likelihood, hessian="ggn", **kw).fit(x, y)
    lml, cov = (
        la.log_marginal_likelihood(),
        la.posterior_covariance,
    )  # Cholesky (not decomposed yet)
    _, jac = la.net.jacobian(x[:4])
    fvar = la.functional_variance(jac)
    draws = la.sample(20000, generator=torch.Generator().manual_seed(0)) - la.mean
    assert la._eig is None
    la._decompose()
    torch.testing.assert_close(la.log_marginal_likelihood(), lml, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(la.posterior_covariance, cov, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(la.functional_variance(jac), fvar, rtol=1e-8, atol=1e-10)
    se = torch.diagonal(cov) * math.sqrt(2 / len(draws))
    assert ((draws.var(0) - torch.diagonal(cov)).abs() < 5 * se).all()


@pytest.mark.parametrize("likelihood", ["regression", "classification"])
def test_last_layer_jacobian_in_closed_form_equals_autodiff(likelihood):
    model, x, _, _ = small_problem(likelihood)
    net = laplace.Laplace(model, likelihood, subset="last_layer")._network()
    phi = net.features(x.double())
    out, jac = net.jacobian(phi)

    def single(theta, p):
        return net(theta, p.unsqueeze(0))[0]

    ref = torch.func.vmap(torch.func.jacrev(single), in_dims=(None, 0))(net.theta, phi)
    close(out, net(net.theta, phi), 0)
    close(jac, ref, 1e-12)
    v = torch.randn(len(x), 4, out.shape[1], dtype=torch.float64)
    close(net.vjac(v, phi), torch.einsum("nkc,ncp->nkp", v, ref), 1e-12)


def test_sampling_through_the_eigendecomposition():
    model, x, y, kw = small_problem("regression")
    la = laplace.Laplace(model, "regression", hessian="ggn", **kw).fit(x, y)
    cov = la.posterior_covariance  # through the Cholesky factor
    la._decompose()  # from here on, through the eigendecomposition
    draws = la.sample(20000, generator=torch.Generator().manual_seed(1)) - la.mean
    se = torch.diagonal(cov) * math.sqrt(2 / len(draws))
    assert ((draws.var(0) - torch.diagonal(cov)).abs() < 5 * se).all()


def test_sample_takes_n_and_its_old_keyword():
    model, x, y, kw = small_problem("regression")
    la = laplace.Laplace(model, **kw).fit(x, y)
    a = la.sample(4, torch.Generator().manual_seed(0))
    b = la.sample(n_samples=4, generator=torch.Generator().manual_seed(0))
    assert a.shape == (4, la.n_params) and torch.equal(a, b)
