"""Tests of probdl.mcmc: the leapfrog integrator's reversibility and second-order energy
error, HMC's moments where the answer is known (a correlated Gaussian, conjugate
Bayesian linear regression) and against Pyro's HMC, SGLD, the diagnostics, and the
flat-weight network."""

import math

import pytest
import torch

from probdl import exact, mcmc, mlp

D64 = torch.float64


def gaussian(rho=0.95):
    mean = torch.tensor([1.0, -1.0], dtype=D64)
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=D64)
    prec = torch.linalg.inv(cov)

    def log_prob(q):
        z = q - mean
        return -0.5 * ((z @ prec) * z).sum(-1)

    return mean, cov, log_prob


def linreg(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=D64)
    y = x @ torch.tensor([0.5, -1.0, 2.0], dtype=D64) + 0.5 * torch.randn(
        n, generator=g, dtype=D64
    )
    return exact.BayesLinReg(x, y, noise_var=0.25, prior_var=1.0)


def check_moments(samples, mean, cov, z=4.5):
    """Mean within z Monte Carlo standard errors (ESS-based); covariance entries within
    z standard errors of a Gaussian's sample covariance."""
    flat = samples.reshape(-1, samples.shape[-1])
    n_eff = mcmc.ess(samples).clamp(max=flat.shape[0])
    se_mean = (cov.diagonal() / n_eff).sqrt()
    assert ((flat.mean(0) - mean).abs() < z * se_mean).all(), (
        flat.mean(0),
        mean,
        se_mean,
    )
    emp = torch.cov(flat.T)
    sd = cov.diagonal().sqrt()
    se_cov = ((cov**2 + torch.outer(sd**2, sd**2)) / n_eff.min()).sqrt()
    assert ((emp - cov).abs() < z * se_cov).all(), (emp, cov, se_cov)


def test_leapfrog_is_reversible_on_a_network():
    torch.manual_seed(0)
    x = torch.rand(30, 1, dtype=D64)
    post = mcmc.NetworkPosterior([1, 8, 8, 1], x, torch.sin(6 * x), noise_std=0.1)
    q0 = torch.randn(3, post.dim, dtype=D64) * 0.5
    p0 = torch.randn(3, post.dim, dtype=D64)
    q1, p1, _, _ = mcmc.leapfrog(post.log_prob, q0, p0, 1e-3, 25)
    q2, p2, _, _ = mcmc.leapfrog(post.log_prob, q1, -p1, 1e-3, 25)
    assert (q1 - q0).abs().max() > 1e-3  # it moved
    torch.testing.assert_close(q2, q0, rtol=0, atol=1e-9)
    torch.testing.assert_close(-p2, p0, rtol=0, atol=1e-9)


def test_leapfrog_energy_error_is_second_order():
    mean, cov, log_prob = gaussian(0.9)
    q0 = torch.tensor([[2.0, 0.5]], dtype=D64)
    p0 = torch.tensor([[0.3, -1.0]], dtype=D64)

    def energy_error(eps, length=1.0):
        q, p, lp, _ = mcmc.leapfrog(log_prob, q0, p0, eps, round(length / eps))
        return (
            ((-lp + 0.5 * (p * p).sum(-1)) - (-log_prob(q0) + 0.5 * (p0 * p0).sum(-1)))
            .abs()
            .item()
        )

    errors = [energy_error(eps) for eps in (0.04, 0.02, 0.01)]
    slopes = [math.log2(a / b) for a, b in zip(errors[:-1], errors[1:])]
    assert all(1.8 < s < 2.2 for s in slopes), (errors, slopes)


def test_hmc_correlated_gaussian():
    mean, cov, log_prob = gaussian()
    g = torch.Generator().manual_seed(1)
    samples, info = mcmc.hmc(
        log_prob, torch.zeros(4, 2, dtype=D64), 400, 500, n_leapfrog=10, generator=g
    )
    assert samples.shape == (400, 4, 2)
    assert (
        0.7 < info["accept_rate"].mean() < 0.95
    )  # the adaptation reached its target of 0.8
    assert info["n_grad_evals"] == 900 * 10
    check_moments(samples, mean, cov)
    assert (mcmc.split_rhat(samples) < 1.02).all()


def test_hmc_bayes_linear_regression():
    model = linreg()
    g = torch.Generator().manual_seed(2)
    init = torch.randn(4, 3, generator=g, dtype=D64)
    samples, info = mcmc.hmc(
        model.log_joint, init, 300, 200, n_leapfrog=10, generator=g
    )
    check_moments(samples, model.mean, model.cov)


def test_hmc_records_the_warm_up_trace():
    """With a fixed step size the warm-up is the same chain as sampling: a run with 5
    warm-up iterations records in warmup_log_prob what a run without warm-up records in
    log_prob."""
    mean, cov, log_prob = gaussian()
    init = torch.tensor([[3.0, 3.0], [-2.0, 0.5]], dtype=D64)
    run = lambda n, w: mcmc.hmc(  # noqa: E731
        log_prob,
        init,
        n,
        w,
        step_size=0.3,
        n_leapfrog=3,
        generator=torch.Generator().manual_seed(7),
    )[1]
    warm, plain = run(1, 5), run(6, 0)
    assert warm["warmup_log_prob"].shape == (5, 2) and plain[
        "warmup_log_prob"
    ].shape == (0, 2)
    torch.testing.assert_close(
        warm["warmup_log_prob"], plain["log_prob"][:5], rtol=0, atol=0
    )
    torch.testing.assert_close(
        warm["log_prob"][0], plain["log_prob"][5], rtol=0, atol=0
    )
    assert (
        plain["log_prob"][0] != log_prob(init)
    ).all()  # states after the first iteration


def test_hmc_fixed_step_is_not_adapted():
    mean, cov, log_prob = gaussian(0.0)
    samples, info = mcmc.hmc(
        log_prob, torch.zeros(2, 2, dtype=D64), 20, 20, step_size=0.3, n_leapfrog=3
    )
    assert torch.equal(info["step_size"], torch.full((2,), 0.3, dtype=D64))


def pyro_samples(potential, init, step_size, n_leapfrog, n_samples, n_warmup, seed):
    pyro = pytest.importorskip("pyro")
    from pyro.infer import HMC, MCMC

    pyro.set_rng_seed(seed)
    kernel = HMC(
        potential_fn=lambda params: potential(params["z"]),
        step_size=step_size,
        num_steps=n_leapfrog,
        adapt_step_size=False,
    )
    run = MCMC(
        kernel,
        n_samples,
        warmup_steps=n_warmup,
        initial_params={"z": init},
        disable_progbar=True,
    )
    run.run()
    return run.get_samples()["z"]


@pytest.mark.parametrize("problem", ["correlated gaussian", "bayesian regression"])
def test_hmc_agrees_with_pyro(problem):
    if problem == "correlated gaussian":
        mean, cov, log_prob = gaussian()
        step = 0.25
    else:
        model = linreg()
        log_prob, mean, cov = model.log_joint, model.mean, model.cov
        step = 0.15
    dim = len(mean)
    ref = pyro_samples(
        lambda z: -log_prob(z.unsqueeze(0))[0],
        torch.zeros(dim, dtype=D64),
        step,
        8,
        500,
        50,
        3,
    )
    g = torch.Generator().manual_seed(4)
    ours, _ = mcmc.hmc(
        log_prob,
        torch.zeros(4, dim, dtype=D64),
        200,
        50,
        step_size=step,
        n_leapfrog=8,
        generator=g,
    )
    ours = ours.reshape(-1, dim)
    # both against the exact moments, and against each other within their joint Monte
    # Carlo error (iid standard errors inflated by 2 for autocorrelation)
    se = (cov.diagonal() / len(ref) + cov.diagonal() / len(ours)).sqrt() * 2
    assert ((ref.mean(0) - ours.mean(0)).abs() < 4 * se).all(), (
        ref.mean(0),
        ours.mean(0),
        se,
    )
    assert ((ref.var(0) / ours.var(0)).log().abs() < 0.25).all(), (
        ref.var(0),
        ours.var(0),
    )
    corr = lambda s: torch.corrcoef(s.T)[0, 1]  # noqa: E731
    assert (corr(ref) - corr(ours)).abs() < 0.1


def test_sgld_stationary_variance_is_the_discretized_chains():
    """With the exact gradient of a Gaussian N(0, diag(s^2)), one SGLD step is the AR(1)
    update theta' = a theta + sqrt(eps) xi with a = 1 - eps / (2 s^2): its stationary
    variance is eps / (1 - a^2) = s^2 / (1 - eps / (4 s^2)), above s^2 by the
    discretization. The chain's second moment is compared with it at the Monte Carlo
    error of AR(1) draws (x^2 has autocorrelation a^(2t), so n (1 - a^2) / (1 + a^2)
    effective draws); half the noise variance, a missing 1/2 on the gradient or the
    posterior's own variance are all far off."""
    sig = torch.tensor([0.5, 1.0, 2.0], dtype=D64)
    eps, chains, n = 0.2, 8, 4000

    def log_prob(theta, batch):  # the batch is ignored: the gradient is exact
        return -0.5 * ((theta / sig) ** 2).sum(-1)

    g = torch.Generator().manual_seed(5)
    init = sig * torch.randn(chains, 3, generator=g, dtype=D64)
    samples, _ = mcmc.sgld(
        log_prob, init, (torch.zeros(10, 1),), n, 300, eps, batch_size=10, generator=g
    )
    a = 1 - eps / (2 * sig**2)
    exact_var = eps / (1 - a**2)
    torch.testing.assert_close(exact_var, sig**2 / (1 - eps / (4 * sig**2)))
    n_sq = chains * n * (1 - a**2) / (1 + a**2)  # effective draws of x^2
    n_x = chains * n * (1 - a) / (1 + a)  # effective draws of x
    z = 4.5
    second = samples.pow(2).mean((0, 1))
    se = math.sqrt(2) * exact_var / n_sq.sqrt()  # Var(x^2) = 2 var^2 for a Gaussian
    assert ((second - exact_var).abs() < z * se).all(), (second, exact_var, se)
    # the discretization bias is resolved: the narrowest direction is off the
    # posterior's s^2
    assert (second[0] - sig[0] ** 2) > z * se[0], (second, sig**2)
    mean = samples.mean((0, 1))
    assert (mean.abs() < z * (exact_var / n_x).sqrt()).all(), mean


def test_sgld_bayes_linear_regression():
    model = linreg(n=100)

    def log_prob(theta, x, y):
        resid = y - theta @ x.T
        return model.log_prior(theta) - 0.5 * (resid**2).sum(-1) / model.noise_var * (
            model.n / len(y)
        )

    g = torch.Generator().manual_seed(5)
    init = model.mean.expand(4, 3).clone()
    samples, info = mcmc.sgld(
        log_prob,
        init,
        (model.x, model.y),
        1000,
        200,
        2e-4,
        batch_size=20,
        thin=2,
        generator=g,
    )
    assert samples.shape == (1000, 4, 3) and info["n_grad_evals"] == 2200
    flat = samples.reshape(-1, 3)
    sd = model.cov.diagonal().sqrt()
    assert ((flat.mean(0) - model.mean).abs() < 0.5 * sd).all()
    ratio = flat.var(0) / model.cov.diagonal()
    assert ((ratio > 0.5) & (ratio < 2.0)).all(), (
        ratio
    )  # SGLD is biased by its step; loosely right


def test_diagnostics_known_cases():
    g = torch.Generator().manual_seed(6)
    iid = torch.randn(2000, 4, 3, generator=g, dtype=D64)
    assert (mcmc.split_rhat(iid) - 1).abs().max() < 0.01
    assert ((mcmc.ess(iid) / 8000 - 1).abs() < 0.15).all()
    # AR(1) with phi = 0.9: ESS = n (1 - phi) / (1 + phi)
    phi, x = 0.9, torch.zeros(4000, 4, dtype=D64)
    noise = torch.randn(4000, 4, generator=g, dtype=D64) * math.sqrt(1 - phi**2)
    x[0] = torch.randn(4, generator=g, dtype=D64)
    for t in range(1, 4000):
        x[t] = phi * x[t - 1] + noise[t]
    expected = 16000 * (1 - phi) / (1 + phi)
    assert abs(mcmc.ess(x).item() / expected - 1) < 0.3
    stuck = iid + torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=D64)[None, :, None]
    assert (mcmc.split_rhat(stuck) > 1.1).all()
    drift = (
        iid + torch.linspace(0, 2, 2000, dtype=D64)[:, None, None]
    )  # split chains catch a trend
    assert (mcmc.split_rhat(drift) > 1.1).all()


def test_network_posterior_matches_plain_mlp():
    torch.manual_seed(7)
    net = mlp.PlainMLP([1, 6, 5, 1], likelihood="gaussian", noise_std=0.3).double()
    x, y = torch.rand(10, 1, dtype=D64), torch.randn(10, 1, dtype=D64)
    post = mcmc.NetworkPosterior([1, 6, 5, 1], x, y, noise_std=0.3, prior_sigma=2.0)
    theta = mcmc.flatten(net).unsqueeze(0)
    assert theta.shape == (1, post.dim) == (1, 6 * 1 + 6 + 5 * 6 + 5 + 5 + 1)
    with torch.no_grad():
        torch.testing.assert_close(post.forward(theta, x)[0], net(x))
        ll = net.log_likelihood(net(x), y).sum()
    prior = torch.distributions.Normal(0.0, 2.0).log_prob(theta).sum()
    torch.testing.assert_close(post.log_prob(theta)[0], ll + prior)
    assert post.predict(theta.expand(7, 2, -1), x).shape == (7, 2, 10, 1)
    # the minibatch estimate is unbiased: its mean over a partition into batches is
    # log_prob
    parts = [
        post.minibatch_log_prob(theta, x[i : i + 2], y[i : i + 2])
        for i in range(0, 10, 2)
    ]
    torch.testing.assert_close(torch.stack(parts).mean(0), post.log_prob(theta))


@pytest.mark.parametrize(
    "sizes", [[1, 8, 8, 1], [3, 5, 2], [1, 1], [2, 1, 4], [4, 6, 1, 3]]
)
def test_network_posterior_hand_written_gradient_is_autograds(sizes):
    """NetworkPosterior.value_and_grad writes the backward pass out (with broadcasts for
    a width or fan-in of 1): it must equal autograd's gradient of log_prob, which
    hmc(post, ...) uses."""
    torch.manual_seed(3)
    x, y = torch.randn(40, sizes[0], dtype=D64), torch.randn(40, sizes[-1], dtype=D64)
    post = mcmc.NetworkPosterior(sizes, x, y, noise_std=0.4, prior_sigma=1.5)
    theta = torch.randn(3, post.dim, dtype=D64)
    with torch.enable_grad():
        t = theta.clone().requires_grad_(True)
        lp = post.log_prob(t)
        (grad,) = torch.autograd.grad(lp.sum(), t)
    before = theta.clone()
    lp_hand, grad_hand = post.value_and_grad(theta)
    torch.testing.assert_close(lp_hand, lp.detach(), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(grad_hand, grad, rtol=1e-10, atol=1e-10)
    assert (
        torch.equal(theta, before) and not grad_hand.requires_grad
    )  # theta left untouched
    # the samplers use it: value_and_grad(post, q) is the hand-written one, post(q) is
    # log_prob
    torch.testing.assert_close(
        mcmc.value_and_grad(post, theta)[1], grad_hand, rtol=0, atol=0
    )
    torch.testing.assert_close(post(theta), lp.detach())
    # another activation falls back to autograd and is still right
    tanh = mcmc.NetworkPosterior(sizes, x, y, noise_std=0.4, activation=torch.tanh)
    with torch.enable_grad():
        t = theta.clone().requires_grad_(True)
        (g_tanh,) = torch.autograd.grad(tanh.log_prob(t).sum(), t)
    torch.testing.assert_close(tanh.value_and_grad(theta)[1], g_tanh)


def test_errors_say_what_to_do():
    _, _, log_prob = gaussian()
    with pytest.raises(ValueError, match="chains, dim"):
        mcmc.hmc(log_prob, torch.zeros(2, dtype=D64), 10, 10)
    with pytest.raises(ValueError, match=r"to \(chains,\)"):
        mcmc.hmc(lambda q: q.sum(), torch.zeros(2, 2, dtype=D64), 10, 10)
    with pytest.raises(ValueError, match="n >= 4"):
        mcmc.split_rhat(torch.zeros(2, 3))


def test_adapted_mass_matrix_samples_a_badly_scaled_gaussian():
    """Scales from 0.01 to 10: with the identity the step size fits the narrowest
    direction and the widest one hardly moves; the windowed diagonal metric learns the
    variances and mixes."""
    scales = torch.tensor([0.01, 0.1, 1.0, 10.0], dtype=D64)

    def log_prob(q):
        return torch.distributions.Normal(0.0, scales).log_prob(q).sum(-1)

    ess = {}
    for adapt in (False, True):
        g = torch.Generator().manual_seed(3)
        init = torch.full((4, 4), 0.5, dtype=D64)
        samples, info = mcmc.hmc(
            log_prob, init, 400, 400, n_leapfrog=10, adapt_mass=adapt, generator=g
        )
        ess[adapt] = mcmc.ess(samples)
    ratio = info["inv_mass"] / scales**2
    assert ((ratio > 0.5) & (ratio < 2.0)).all(), (
        ratio
    )  # the metric is the inverse variance
    check_moments(samples, torch.zeros(4, dtype=D64), torch.diag(scales**2))
    assert ess[True].min() > 100 and ess[False].min() < 20, ess
    with pytest.raises(ValueError, match="n_warmup"):
        mcmc.hmc(log_prob, init, 10, 20, adapt_mass=True)


def test_accept_prob_is_metropolis_and_rejects_divergences():
    """min(1, exp(H0 - H1)); a trajectory of infinite or NaN energy is rejected."""
    h0 = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    h1 = torch.tensor([0.5, 1.0, 3.0, float("inf"), float("nan")], dtype=torch.float64)
    a = mcmc.accept_prob(h0, h1)
    expected = torch.tensor([1.0, 1.0, math.exp(-2.0), 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(a, expected)
