"""Tests of probdl.swag (SWAG's moments and samples) and probdl.ensemble (MAP objective,
ensemble predictive)."""

import functools
import math

import pytest
import torch

from probdl import ensemble, exact, mcmc, mlp, swag, train


def net_with(theta: torch.Tensor) -> mlp.PlainMLP:
    model = mlp.PlainMLP([1, 2, 1], likelihood="gaussian")
    torch.nn.utils.vector_to_parameters(theta.float(), model.layers.parameters())
    return model


def test_swag_moments_and_sample_covariance():
    g = torch.Generator().manual_seed(0)
    dim, rank = 7, 5  # [1, 2, 1]: 2 + 2 + 2 + 1 weights
    iterates = (
        torch.randn(12, dim, generator=g, dtype=torch.float64)
        * torch.linspace(0.5, 2, dim)
        + 3.0
    )
    s = swag.SWAG(dim, rank=rank)
    for theta in iterates:
        s.collect(net_with(theta))
    theta32 = iterates.float().double()  # the model stores float32
    torch.testing.assert_close(s.mean, theta32.mean(0))
    torch.testing.assert_close(
        s.variance, theta32.var(0, unbiased=False), rtol=1e-5, atol=1e-6
    )
    assert len(s.deviations) == rank
    # the deviations are from the running mean at the time each iterate came in (Maddox
    # et al.)
    torch.testing.assert_close(s.deviations[-1], theta32[-1] - theta32.mean(0))
    dev = torch.stack(s.deviations, 1)
    expected = torch.diag(s.variance) / 2 + dev @ dev.T / (2 * (rank - 1))
    draws = s.sample(50_000, generator=g).double()
    torch.testing.assert_close(draws.mean(0), s.mean, atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(draws.T), expected, atol=0.1, rtol=0.05)


def test_swag_errors():
    with pytest.raises(ValueError, match="rank"):
        swag.SWAG(5, rank=1)
    s = swag.SWAG(7, rank=3)
    with pytest.raises(RuntimeError, match="at least two"):
        s.sample(3)
    with pytest.raises(ValueError, match="7"):
        s.collect(mlp.PlainMLP([1, 3, 1]))


def iterates_of(s: swag.SWAG) -> torch.Tensor:
    """The collected iterates, rebuilt from the final mean and the deviations (all of
    them, so rank >= epochs): theta_i = mean_i + D_i and mean_(i-1) = mean_i - D_i / (i
    - 1)."""
    assert len(s.deviations) == s.n
    mean, out = s.mean.clone(), []
    for i in range(s.n, 0, -1):
        out.append(mean + s.deviations[i - 1])
        if i > 1:
            mean = mean - s.deviations[i - 1] / (i - 1)
    return torch.stack(out[::-1])


def test_fit_swag_collects_per_epoch_and_stays_near_the_mode():
    """Linear regression through a [1, 1] network, whose posterior is exact: SGD with a
    constant rate from near the mode circles the mode (the objective is quadratic, so
    the iterates' mean is the mode), inside the posterior's own typical set, with a
    spread that grows with the rate (at least in proportion to it for small rates; Mandt
    et al. 2017)."""
    torch.manual_seed(1)
    n, s_noise, z = 128, 0.3, 4.5
    x = 2 * torch.rand(n, 1) - 1
    y = 2 * x - 0.5 + s_noise * torch.randn(n, 1)
    ex = exact.BayesLinReg(
        torch.cat([x, torch.ones(n, 1)], 1), y[:, 0], noise_var=s_noise**2
    )
    obj = functools.partial(ensemble.map_objective, n_data=n, prior_sigma=1.0)
    fits = {}
    for lr in (0.004, 0.001):
        torch.manual_seed(2)
        model = mlp.PlainMLP([1, 1], likelihood="gaussian", noise_std=s_noise)
        train.fit(model, obj, (x, y), epochs=40, batch_size=16, lr=0.05, progress=False)
        g = torch.Generator().manual_seed(0)
        s, _ = swag.fit_swag(
            model, obj, (x, y), epochs=100, lr=lr, rank=100, batch_size=16, generator=g
        )
        assert s.n == 100 and len(s.deviations) == 100
        its = iterates_of(s)
        torch.testing.assert_close(
            its[-1].float(), mcmc.flatten(model)
        )  # ends at the last iterate
        n_eff = mcmc.ess(its[:, None])
        fits[lr] = s.variance, n_eff
        assert ((s.mean - ex.mean).abs() < z * (s.variance / n_eff).sqrt()).all(), (
            s.mean,
            ex.mean,
        )
        # 2 (log p(mode) - log p(theta)) is chi^2 with 2 degrees of freedom under the
        # posterior, exceeded with probability exp(-q / 2): q = -2 log(0.001) for its
        # 0.999 quantile
        drop = 2 * (ex.log_joint(ex.mean[None]) - ex.log_joint(its))
        assert drop.max() < -2 * math.log(0.001), drop.max()
    (v1, e1), (v4, e4) = fits[0.001], fits[0.004]
    tol = (
        z * (2 / e1 + 2 / e4).sqrt()
    )  # relative standard errors of the two variances, in logs
    assert ((v4 / v1).log() > math.log(4) - tol).all(), (v4 / v1, tol)
    post = mcmc.NetworkPosterior([1, 1], x, y, noise_std=s_noise)
    assert post.predict(s.sample(50), x).shape == (50, 128, 1)
