"""Tests of probdl.bbb: the mathematics of Bayes by Backprop."""

import copy
import functools
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from probdl import bbb, data, predictive, priors


def test_closed_form_kl_against_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    layer = bbb.BayesianLinear(5, 4, priors.GaussianPrior(0.7), init_sigma=0.3)
    with torch.no_grad():
        layer.weight_rho.copy_(torch.rand(4, 5, generator=g) * 2.5 - 2.0)
    kl = layer.kl()
    ref = sum(
        kl_divergence(Normal(mu, s), Normal(0.0, 0.7)).sum() for mu, s in layer.params()
    )
    torch.testing.assert_close(kl, ref, rtol=1e-5, atol=1e-5)
    # Monte Carlo: KL = E_q[log q - log p] at sampled weights (the negative surprise)
    draws = []
    with torch.no_grad():
        for _ in range(1500):
            layer(torch.zeros(1, 5), g)
            draws.append((layer.log_q() - layer.log_p()).item())
    draws = torch.tensor(draws, dtype=torch.float64)
    se = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - kl.item()) < 4 * se, (draws.mean(), kl, se)


def test_log_q_is_the_gaussian_density_of_the_sampled_weights():
    g = torch.Generator().manual_seed(1)
    layer = bbb.BayesianLinear(3, 2, init_sigma=0.5)
    layer(torch.randn(4, 3, generator=g), g)
    w, b = layer._w
    ref = (
        Normal(layer.weight_mu, layer.weight_sigma).log_prob(w).sum()
        + Normal(layer.bias_mu, layer.bias_sigma).log_prob(b).sum()
    )
    torch.testing.assert_close(layer.log_q(), ref)
    torch.testing.assert_close(
        layer.log_p(), Normal(0.0, 1.0).log_prob(torch.cat([w.reshape(-1), b])).sum()
    )


@pytest.mark.parametrize("param", ["softplus", "exp"])
def test_parameterizations_give_the_asked_initial_sigma_and_name_the_free_parameter(
    param,
):
    layer = bbb.BayesianLinear(3, 2, parameterization=param, init_sigma=0.05)
    torch.testing.assert_close(layer.weight_sigma, torch.full((2, 3), 0.05))
    names = {n for n, _ in layer.named_parameters()}
    free = {"softplus": "rho", "exp": "log_sigma"}[param]
    assert names == {"weight_mu", "bias_mu", f"weight_{free}", f"bias_{free}"}
    with torch.no_grad():
        layer.free_scale("weight").normal_()
    d = layer.free_scale("weight")
    expected = d.exp() if param == "exp" else torch.log1p(d.exp())
    torch.testing.assert_close(layer.weight_sigma, expected)


def test_local_reparameterization_matches_weight_sampling_moments():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, generator=g)
    layer = bbb.BayesianLinear(6, 2, init_sigma=0.4)
    with torch.no_grad():
        layer.weight_rho.copy_(-1.5 * torch.rand(2, 6, generator=g))
    n = 20000
    with torch.no_grad():
        lrt = copy.deepcopy(layer)
        lrt.local_reparameterization = True
        a = torch.stack([lrt(x, g) for _ in range(n)])
        b = torch.stack([layer(x, g) for _ in range(n)])
        mean = torch.nn.functional.linear(x, layer.weight_mu, layer.bias_mu)
        var = torch.nn.functional.linear(
            x**2, layer.weight_sigma**2, layer.bias_sigma**2
        )
    for s in (a, b):
        assert torch.allclose(s.mean(0), mean, atol=4 * (var / n).sqrt().max())
        assert torch.allclose(s.var(0), var, rtol=0.04)
    # different examples get independent noise under local reparameterization only
    ca = torch.corrcoef(torch.stack([a[:, 0, 0], a[:, 1, 0]]))[0, 1]
    cb = torch.corrcoef(torch.stack([b[:, 0, 0], b[:, 1, 0]]))[0, 1]
    assert abs(ca) < 0.03 and abs(cb) > 0.1, (ca, cb)


def test_minibatch_estimate_is_unbiased_for_the_full_data_objective():
    """With the same weight sample, the N/B-scaled likelihood averaged over all
    minibatches of a partition equals the full-data likelihood; the surprise is the same
    in each."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 2, generator=g)
    y = torch.randn(12, 1, generator=g)
    model = bbb.BayesianMLP(
        [2, 8, 1], likelihood="gaussian", noise_std=0.5, init_sigma=0.1
    )

    def same_weights():  # one generator state for every call: the same weight sample
        return torch.Generator().manual_seed(7)

    full = bbb.elbo_objective(model, x, y, n_data=12, generator=same_weights())["F"]
    estimates, unscaled = [], []
    for idx in torch.randperm(12, generator=g).split(4):
        estimates.append(
            bbb.elbo_objective(
                model, x[idx], y[idx], n_data=12, generator=same_weights()
            )["F"]
        )
        # N = B: no N/B factor
        unscaled.append(
            bbb.elbo_objective(
                model, x[idx], y[idx], n_data=4, generator=same_weights()
            )["F"]
        )
    torch.testing.assert_close(
        torch.stack(estimates).mean(), full, rtol=1e-5, atol=1e-4
    )
    # a wrong scaling (no N/B) is far off
    assert abs(torch.stack(unscaled).mean() - full) > 0.1 * abs(full)
    # a different generator state is a different weight sample
    other = bbb.elbo_objective(
        model, x, y, n_data=12, generator=torch.Generator().manual_seed(8)
    )["F"]
    assert abs(other - full) > 1e-3


def test_elbo_objective_against_torch_distributions():
    """F = (N/B) sum log N(y; f(x; w), s^2) - KL(q || p), from torch.distributions: with
    sigma tiny the sampled w is mu, so the likelihood term is the mean network's."""
    torch.manual_seed(3)
    model = bbb.BayesianMLP(
        [2, 5, 1],
        priors.GaussianPrior(0.7),
        likelihood="gaussian",
        noise_std=0.4,
        init_sigma=1e-9,
    ).double()
    x = torch.randn(8, 2, dtype=torch.float64)
    y = torch.randn(8, 1, dtype=torch.float64)
    out = bbb.elbo_objective(model, x, y, n_data=40, kl="closed")
    h = x
    for i, layer in enumerate(model.layers):
        (w_mu, _), (b_mu, _) = layer.params()
        h = torch.nn.functional.linear(h, w_mu, b_mu)
        h = torch.relu(h) if i < len(model.layers) - 1 else h
    kl = sum(
        kl_divergence(Normal(mu, sigma), Normal(0.0, 0.7)).sum()
        for layer in model.layers
        for mu, sigma in layer.params()
    )
    log_lik = Normal(h, 0.4).log_prob(y).sum() * 40 / 8
    assert kl.item() > 100 and log_lik.item() < -100  # both terms weigh: a sign shows
    torch.testing.assert_close(
        out["F"].detach(), (log_lik - kl).detach(), rtol=1e-6, atol=1e-6
    )
    torch.testing.assert_close(out["loss"].detach(), -(log_lik - kl).detach() / 40)


def test_blundell_kl_weights_sum_to_one_and_keep_the_epoch_unbiased():
    for m in (1, 3, 10, 500, 2000):
        w = bbb.minibatch_kl_weights(m)
        assert torch.isfinite(w).all()
        torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    w = bbb.minibatch_kl_weights(4)
    torch.testing.assert_close(w, torch.tensor([8, 4, 2, 1], dtype=torch.float64) / 15)
    schedule = bbb.BlundellSchedule(40, 10)
    weights = [schedule() for _ in range(8)]  # two epochs of M = 4 minibatches
    assert weights[:4] == weights[4:] and schedule.step == 8
    assert (
        abs(sum(weights[:4]) / 4 - 1.0) < 1e-12
    )  # on average one whole complexity cost per step
    torch.testing.assert_close(torch.tensor(weights[:4], dtype=torch.float64), 4 * w)
    # the objective applies the schedule's weight to the surprise (and only to it)
    model = bbb.BayesianMLP([2, 3], init_sigma=0.1)
    x, y = torch.randn(10, 2), torch.randint(0, 3, (10,))
    terms = [
        bbb.elbo_objective(model, x, y, n_data=40, kl="closed", kl_weight=k)
        for k in (bbb.BlundellSchedule(40, 10), 1.0)
    ]
    with torch.no_grad():
        torch.testing.assert_close(
            terms[0]["F"],
            terms[0]["log_lik"] + 4 * w[0].item() * terms[0]["surprise"],
            rtol=1e-6,
            atol=1e-4,
        )
        torch.testing.assert_close(
            terms[1]["F"], terms[1]["log_lik"] + terms[1]["surprise"]
        )
    with pytest.raises(ValueError, match="batch_size"):
        bbb.BlundellSchedule(40, 0)


def test_closed_and_mc_objectives_agree_in_expectation():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 3, generator=g), torch.randint(0, 4, (20,), generator=g)
    model = bbb.BayesianMLP([3, 5, 4], priors.GaussianPrior(0.5), init_sigma=0.2)
    with torch.no_grad():
        closed = bbb.elbo_objective(model, x, y, n_data=20, kl="closed")["surprise"]
        mc = torch.stack(
            [
                bbb.elbo_objective(model, x, y, n_data=20, kl="mc", generator=g)[
                    "surprise"
                ]
                for _ in range(500)
            ]
        )
    torch.testing.assert_close(closed, -model.kl())
    assert abs(mc.mean() - closed) < 4 * mc.std() / math.sqrt(500)


def test_training_moves_the_elbo_up():
    torch.manual_seed(0)
    x = torch.rand(64, 1)
    y = x + 0.3 * torch.sin(2 * math.pi * x)
    model = bbb.BayesianMLP(
        [1, 16, 1], likelihood="gaussian", noise_std=0.1, init_sigma=0.01
    )
    obj = functools.partial(bbb.elbo_objective, n_data=64, kl="closed")
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = obj(model, x, y)["F"].item()
    for _ in range(300):
        loss = obj(model, x, y)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = torch.stack([obj(model, x, y)["F"] for _ in range(20)]).mean().item()
    assert last > first + 100


def test_errors():
    with pytest.raises(ValueError, match="positive"):
        priors.GaussianPrior(0.0)
    with pytest.raises(ValueError, match="positive"):
        priors.ScaleMixturePrior(0.5, -1.0, 0.1)
    with pytest.raises(ValueError, match="positive"):
        priors.ScaleMixturePrior(0.5, 1.0, 0.0)
    for pi in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            priors.ScaleMixturePrior(pi, 1.0, 0.1)
    with pytest.raises(ValueError, match="closed"):
        bbb.elbo_objective(
            bbb.BayesianMLP([2, 3]),
            torch.zeros(3, 2),
            torch.zeros(3).long(),
            n_data=3,
            kl="exact",
        )
    layer = bbb.BayesianLinear(4, 2)
    with pytest.raises(ValueError, match="got inputs with 3 features"):
        layer(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="positive int"):
        bbb.BayesianLinear(0, 2)
    with pytest.raises(ValueError, match="parameterization"):
        bbb.BayesianLinear(2, 2, parameterization="tanh")
    with pytest.raises(ValueError, match="sizes"):
        bbb.BayesianMLP([784])
    model = bbb.BayesianMLP([2, 3], likelihood="gaussian")
    with pytest.raises(ValueError, match="shape"):
        model.log_likelihood(torch.zeros(4, 3), torch.zeros(4, 1))
    cls = bbb.BayesianMLP([2, 3])
    with pytest.raises(ValueError, match="int64"):
        cls.log_likelihood(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(NotImplementedError):
        bbb.BayesianMLP([2, 3], priors.ScaleMixturePrior()).kl()


def test_generator_makes_sampling_reproducible_and_leaves_the_global_state_alone():
    model = bbb.BayesianMLP([3, 4, 2], init_sigma=0.5)
    lrt = bbb.BayesianMLP([3, 4, 2], init_sigma=0.5, local_reparameterization=True)
    x = torch.ones(5, 3)
    for m in (model, lrt):
        state = torch.random.get_rng_state()
        a = m(x, torch.Generator().manual_seed(3))
        b = m(x, torch.Generator().manual_seed(3))
        assert torch.equal(torch.random.get_rng_state(), state), (
            "the global generator was used"
        )
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, m(x, torch.Generator().manual_seed(4)))
        # log q and log p of the lazily drawn weights (local reparameterization) come
        # from it too
        m(x, torch.Generator().manual_seed(3))
        lq = m.log_q()
        m(x, torch.Generator().manual_seed(3))
        torch.testing.assert_close(lq, m.log_q())


def test_mean_network_restores_the_state_also_after_an_error():
    model = bbb.BayesianMLP([3, 4, 2], init_sigma=0.5)
    model.train()
    x = torch.randn(2, 3)
    with bbb.mean_network(model) as m:
        assert not m.training and not any(layer.sample for layer in m.layers)
        torch.testing.assert_close(m(x), m(x))  # deterministic
    assert model.training and all(layer.sample for layer in model.layers)
    with pytest.raises(RuntimeError, match="boom"):
        with bbb.mean_network(model):
            raise RuntimeError("boom")
    assert model.training and all(layer.sample for layer in model.layers)
    model.eval().set_sample(False)
    with predictive.sampling_network(model):
        assert all(layer.sample for layer in model.layers)
    assert not model.training and not any(layer.sample for layer in model.layers)


def test_regression_mean_against_monte_carlo():
    """E[y | x] in closed form against the mean of many draws of regression_data at
    fixed x."""
    n = 200_000
    for noise_var in (0.02, 0.0004):
        x, y = data.regression_data(
            n, low=0.14, high=0.14 + 1e-9, noise_var=noise_var, seed=1
        )
        mc, se = y.double().mean().item(), y.double().std().item() / math.sqrt(n)
        exact = data.regression_mean(
            torch.tensor([[0.14]], dtype=torch.float64), noise_var
        ).item()
        assert abs(mc - exact) < 4 * se, (noise_var, mc, exact, se)
    xs = torch.linspace(0, 1, 11)
    torch.testing.assert_close(data.regression_mean(xs, 0.0), data.regression_curve(xs))
    # under the variance reading the noise-free curve is far from the mean near x = 0.14
    gap = (data.regression_curve(xs) - data.regression_mean(xs, 0.02)).abs().max()
    assert gap > 0.2
    with pytest.raises(ValueError, match="variance"):
        data.regression_mean(xs, -1.0)
