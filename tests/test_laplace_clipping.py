"""The full Hessian's positivity is a property of the posterior precision H_lik / s^2 +
delta I, not of the likelihood's Hessian: at a genuine minimum of the negative log
posterior the likelihood Hessian may have negative eigenvalues, and nothing may then be
clipped."""

import warnings

import pytest
import torch

from probdl import laplace, mlp
from probdl import laplace_curvature as curv

S, DELTA = 0.1, 1.0


@pytest.fixture(scope="module")
def tanh_map():
    """A 1-6-6-1 tanh network at a MAP of N(0, I / DELTA) and noise S, polished by
    Newton's method on E = sum (y - f)^2 / (2 S^2) + DELTA / 2 |theta|^2 (gradient norm
    < 1e-9)."""
    torch.manual_seed(0)
    x = torch.linspace(-2, 2, 40, dtype=torch.float64)[:, None]
    y = torch.sin(2 * x) + S * torch.randn(40, 1, dtype=torch.float64)
    model = mlp.PlainMLP(
        [1, 6, 6, 1], activation=torch.tanh, likelihood="gaussian", noise_std=S
    )
    model = model.double()
    params = list(model.layers.parameters())
    opt = torch.optim.LBFGS(
        params, max_iter=3000, tolerance_grad=1e-12, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        e = curv.nll_sum(model(x), y, "regression") / S**2
        e = e + 0.5 * DELTA * sum((p**2).sum() for p in params)
        e.backward()
        return e

    opt.step(closure)
    net = curv.Network(
        model, [n for n, _ in model.named_parameters() if n != "log_noise"]
    )

    def energy(theta):
        return (
            curv.nll_sum(net(theta, x), y, "regression") / S**2
            + 0.5 * DELTA * theta @ theta
        )

    theta = net.theta.clone()
    for _ in range(20):
        g = torch.func.grad(energy)(theta)
        if g.norm() < 1e-10:
            break
        theta = theta - torch.linalg.solve(torch.func.hessian(energy)(theta), g)
    with torch.no_grad():
        for p, v in zip(params, net.unflatten(theta).values()):
            p.copy_(v)
    return model, x, y, energy, theta


def test_indefinite_likelihood_hessian_at_a_genuine_minimum_is_not_clipped(tanh_map):
    model, x, y, energy, theta = tanh_map
    post = torch.func.hessian(energy)(theta)  # the posterior precision, by autograd
    assert torch.func.grad(energy)(theta).norm() < 1e-9
    lik = (post - DELTA * torch.eye(len(theta), dtype=torch.float64)) * S**2
    # the situation of interest: an indefinite likelihood Hessian, a positive-definite
    # posterior
    assert torch.linalg.eigvalsh(lik).min() < 0 < torch.linalg.eigvalsh(post).min()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        la = laplace.Laplace(
            model, "regression", hessian="full", prior_precision=DELTA, sigma_noise=S
        )
        la.fit(x, y)
        lml = la.log_marginal_likelihood()
    assert la.n_negative > 0 and la.min_posterior_eigenvalue > 0
    torch.testing.assert_close(
        la.min_posterior_eigenvalue, torch.linalg.eigvalsh(post).min().item()
    )
    # the evidence of eq. (lap-evidence) with the unclipped log det
    n = len(x)
    log_lik = -(energy(theta) - 0.5 * DELTA * theta @ theta) - n * (
        torch.log(torch.tensor(S, dtype=torch.float64)) + 0.5 * curv.LOG_2PI
    )
    logdet = torch.linalg.slogdet(post)[1]
    ref = (
        log_lik
        - 0.5 * DELTA * theta @ theta
        - 0.5
        * (logdet - len(theta) * torch.log(torch.tensor(DELTA, dtype=torch.float64)))
    )
    torch.testing.assert_close(lml, ref, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(
        la.posterior_covariance, torch.linalg.inv(post), rtol=1e-7, atol=1e-9
    )


def test_an_indefinite_posterior_precision_warns_and_is_clipped(tanh_map):
    model, x, y, _, _ = tanh_map
    # far below the prior precision of the MAP, the same point is a saddle of the
    # posterior
    la = laplace.Laplace(
        model, "regression", hessian="full", prior_precision=1e-3, sigma_noise=S
    )
    with pytest.warns(
        RuntimeWarning, match="posterior precision .* not positive definite"
    ):
        la.fit(x, y)
    assert la.min_posterior_eigenvalue < 0
    spectrum = la._spectrum()
    assert (spectrum > 0).all()
    assert torch.isfinite(la.log_marginal_likelihood())
