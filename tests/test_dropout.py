"""Tests of probdl.dropout: the log-uniform KL approximation against numerical
integration and Monte Carlo, the moments of local reparameterization against weight
noise, the sparse mode, the objective, the gradient variance of the three estimators,
Gal & Ghahramani's weight decay against a Monte Carlo KL of the mixture it approximates,
and MC dropout."""

import functools
import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from probdl import dropout, mlp, predictive, train

# --- the KL ---------------------------------------------------------------------------


def test_kl_approximation_matches_quadrature():
    """Molchanov et al.'s fit is within 0.01 nats of the integral over log alpha in [-8,
    8]."""
    la = np.linspace(-8.0, 8.0, 41)
    exact = dropout.kl_log_uniform_quadrature(la)
    approx = dropout.kl_log_uniform(torch.tensor(la, dtype=torch.float64)).numpy()
    assert np.abs(approx - exact).max() < 0.01
    # the constant is fixed: the KL vanishes for pure noise and grows like -log(alpha)/2
    # for small alpha
    assert abs(dropout.kl_log_uniform(torch.tensor(20.0)).item()) < 1e-6
    small = dropout.kl_log_uniform(torch.tensor([-12.0, -14.0], dtype=torch.float64))
    assert (small[1] - small[0]).item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("log_alpha", [-3.0, 0.0, 2.5])
def test_quadrature_matches_monte_carlo(log_alpha):
    """The quadrature against a Monte Carlo average of log|1 + sqrt(alpha) e| (4
    standard errors)."""
    g = torch.Generator().manual_seed(1)
    e = torch.randn(400_000, generator=g, dtype=torch.float64)
    c = (np.euler_gamma + math.log(2.0)) / 2
    v = torch.log(torch.abs(1 + math.exp(log_alpha / 2) * e)) - log_alpha / 2 + c
    se = v.std().item() / math.sqrt(len(v))
    assert (
        abs(v.mean().item() - float(dropout.kl_log_uniform_quadrature(log_alpha)))
        < 4 * se
    )


def test_kl_depends_on_alpha_only_and_rejects_non_tensors():
    layer = dropout.VariationalDropoutLinear(3, 2)
    with torch.no_grad():
        layer.log_sigma2.copy_(
            torch.log(0.5 * layer.weight**2)
        )  # alpha = 0.5 everywhere
    assert layer.kl().item() == pytest.approx(
        6 * dropout.kl_log_uniform(torch.tensor(math.log(0.5))).item(), rel=1e-4
    )
    with pytest.raises(TypeError, match="tensor"):
        dropout.kl_log_uniform(0.3)


# --- the layer ------------------------------------------------------------------------


def _layer(parameterization="additive", local=True, seed=0, **kw):
    torch.manual_seed(seed)
    layer = dropout.VariationalDropoutLinear(
        4, 3, parameterization=parameterization, local_reparameterization=local, **kw
    ).double()
    with torch.no_grad():
        alpha = torch.linspace(0.05, 2.0, 12, dtype=torch.float64).reshape(3, 4)
        if parameterization == "additive":
            layer.log_sigma2.copy_(torch.log(alpha * layer.weight**2))
        else:
            layer._log_alpha.copy_(torch.log(alpha))
    return layer, alpha


@pytest.mark.parametrize("parameterization", ["additive", "multiplicative"])
@pytest.mark.parametrize("local", [True, False])
def test_output_moments(parameterization, local):
    """Every estimator samples pre-activations with mean x theta + b and variance x^2
    (alpha theta^2)."""
    layer, alpha = _layer(parameterization, local)
    layer.generator = torch.Generator().manual_seed(2)
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0]], dtype=torch.float64)
    n = 20_000
    with torch.no_grad():
        out = (
            torch.cat([layer(x) for _ in range(n)])
            if not local
            else layer(x.expand(n, 4))
        )
    mean = x @ layer.weight.T + layer.bias
    var = (x**2) @ (alpha * layer.weight**2).T
    assert torch.allclose(
        layer.log_alpha, torch.log(alpha).clamp(*dropout.LOG_ALPHA_RANGE), atol=1e-6
    )
    se_mean = (var / n).sqrt()
    assert ((out.mean(0) - mean[0]).abs() < 4 * se_mean[0]).all()
    se_var = var * math.sqrt(2 / n)
    assert ((out.var(0) - var[0]).abs() < 4 * se_var[0]).all()


def test_local_noise_is_independent_across_examples_and_weight_noise_is_shared():
    layer, _ = _layer(local=True)
    x = torch.ones(2000, 4, dtype=torch.float64)
    with torch.no_grad():
        out = layer(x)
        assert out[:, 0].std() > 0
        layer.local_reparameterization = False
        shared = layer(x)
    assert torch.allclose(
        shared, shared[:1].expand_as(shared)
    )  # one weight matrix per minibatch


def test_sparse_mode_drops_noisy_weights_deterministically():
    layer = dropout.VariationalDropoutLinear(5, 2, threshold=3.0)
    with torch.no_grad():
        layer.log_sigma2.copy_(torch.log(layer.weight**2) - 5.0)  # log alpha = -5: kept
        layer.log_sigma2[0, 1] = (
            torch.log(layer.weight[0, 1] ** 2) + 4.0
        )  # log alpha = 4: dropped
        layer.log_sigma2[1, 3] = (
            torch.log(layer.weight[1, 3] ** 2) + 2.9
        )  # below threshold: kept
    layer.eval()
    x = torch.randn(7, 5)
    mask = torch.ones(2, 5)
    mask[0, 1] = 0
    expected = torch.nn.functional.linear(x, layer.weight * mask, layer.bias)
    assert torch.allclose(layer(x), expected, atol=1e-6) and torch.equal(
        layer(x), layer(x)
    )
    layer.sparse = False
    assert torch.allclose(
        layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-6
    )
    net = dropout.VariationalDropoutMLP([5, 2])
    net.layers[0] = layer
    s = net.sparsity()
    assert (s["kept"], s["total"]) == (9, 10) and s["removed"] == pytest.approx(0.1)
    assert s["compression"] == pytest.approx(10 / 9)


def test_generator_makes_noise_reproducible():
    x = torch.randn(6, 4, dtype=torch.float64)
    outs = []
    for seed in (3, 3, 4):
        layer, _ = _layer()
        layer.generator = torch.Generator().manual_seed(seed)
        outs.append(layer(x))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="in_features"):
        dropout.VariationalDropoutLinear(0, 3)
    with pytest.raises(ValueError, match="parameterization"):
        dropout.VariationalDropoutLinear(2, 3, parameterization="log")
    with pytest.raises(ValueError, match="got inputs with 5 features"):
        dropout.VariationalDropoutLinear(4, 3)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="n_data"):
        dropout.sgvlb_objective(
            dropout.VariationalDropoutMLP([2, 1]),
            torch.randn(3, 2),
            torch.zeros(3, dtype=torch.long),
            n_data=0,
        )
    with pytest.raises(ValueError, match="n_repeats"):
        dropout.gradient_variance(
            dropout.VariationalDropoutMLP([2, 2]),
            torch.randn(3, 2),
            torch.zeros(3, dtype=torch.long),
            1,
        )


# --- the objective and training -------------------------------------------------------


def test_objective_and_warmup():
    warm = dropout.KLWarmup(2)
    assert [warm() for _ in range(4)] == [0.0, 0.5, 1.0, 1.0]
    net = dropout.VariationalDropoutMLP(
        [3, 4, 2]
    ).eval()  # eval: deterministic, to compare terms
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    terms = dropout.sgvlb_objective(net, x, y, n_data=50, kl_weight=0.3)
    ll = -torch.nn.functional.cross_entropy(net(x), y)
    assert terms["log_lik"].item() == pytest.approx(ll.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(
        -ll.item() + 0.3 * net.kl().item() / 50, rel=1e-5
    )


def test_variational_dropout_switches_off_irrelevant_inputs():
    """Automatic relevance determination: y = 2 x1 - x2 + noise, x3 and x4 irrelevant.
    After training, the irrelevant weights are pure noise (log alpha > 3: dropped) and
    the relevant ones are nearly certain (full batch, 500 steps; data seed 3, where the
    least-squares weights of x3 and x4 are small: with another seed one of them may need
    more steps)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 4, generator=g)
    y = 2 * x[:, :1] - x[:, 1:2] + 0.3 * torch.randn(200, 1, generator=g)
    torch.manual_seed(0)
    net = dropout.VariationalDropoutMLP(
        [4, 1], likelihood="gaussian", noise_std=0.3, init_log_sigma2=-6.0
    )
    obj = functools.partial(dropout.sgvlb_objective, n_data=len(x))
    train.fit(net, obj, (x, y), steps=500, batch_size=200, lr=0.02, progress=False)
    la = net.layers[0].log_alpha.detach()[0]
    assert (la[2:] > 3.0).all() and (la[:2] < -5.0).all(), la
    assert net.sparsity()["kept"] == 2


def test_gradient_variance_of_the_three_estimators():
    """At alpha = 0.5: local reparameterization < weight noise (additive) <
    multiplicative noise."""
    torch.manual_seed(0)
    x, y = torch.randn(100, 20), torch.randint(0, 5, (100,))
    nets = {}
    for name, (param, local) in {
        "local": ("additive", True),
        "additive": ("additive", False),
        "multiplicative": ("multiplicative", False),
    }.items():
        torch.manual_seed(1)
        net = dropout.VariationalDropoutMLP(
            [20, 30, 5], parameterization=param, local_reparameterization=local
        )
        with torch.no_grad():
            for layer in net.layers:
                if param == "additive":
                    layer.log_sigma2.copy_(torch.log(0.5 * layer.weight**2))
                else:
                    layer._log_alpha.fill_(math.log(0.5))
        nets[name] = dropout.gradient_variance(net, x, y, n_repeats=200)["variance"]
    assert (
        nets["local"] < 0.5 * nets["additive"]
        and nets["additive"] < 0.8 * nets["multiplicative"]
    ), nets


# --- MC dropout -----------------------------------------------------------------------


def test_mc_predict_regression_classification_and_modes():
    torch.manual_seed(0)
    reg = mlp.PlainMLP([1, 20, 1], likelihood="gaussian", dropout=0.3)
    x = torch.linspace(0, 1, 9).reshape(-1, 1)
    reg.train()
    mean, var = dropout.mc_predict(
        reg, x, 2000, generator=torch.Generator().manual_seed(0)
    )
    assert reg.training and mean.shape == var.shape == (9, 1) and (var > 0).all()
    # the MC mean approaches the mean network (inverted dropout keeps the first layer's
    # mean exact)
    with torch.no_grad():
        samples = torch.stack([reg(x) for _ in range(2000)])
    assert torch.allclose(
        mean,
        samples.mean(0),
        atol=4 * samples.std(0).max().item() / math.sqrt(2000) * 2,
    )
    # the variance of the passes (not their sd): against the independent draws, 4
    # standard errors
    ref_var = samples.var(0)
    assert (
        (var - ref_var).abs() < 4 * ref_var * math.sqrt(2 / 2000) * math.sqrt(2)
    ).all()
    again = dropout.mc_predict(reg, x, 2000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], mean)
    plain = mlp.PlainMLP([1, 20, 1], likelihood="gaussian")
    assert dropout.mc_predict(plain, x, 5)[1].abs().max() < 1e-10
    clf = dropout.VariationalDropoutMLP([3, 8, 4])
    with torch.no_grad():
        for layer in clf.layers:
            layer.log_sigma2.copy_(torch.log(layer.weight**2))  # alpha = 1
    clf.eval()
    xc = torch.randn(6, 3)
    probs = dropout.mc_predict(clf, xc, 50)
    assert not clf.training and torch.allclose(probs.sum(-1), torch.ones(6), atol=1e-5)
    # the same input: a dropout_on that left the variational layers in eval mode would
    # give exactly the deterministic softmax (alpha = 1 moves the probabilities by far
    # more than 1e-3)
    assert (probs - torch.softmax(clf(xc), -1)).abs().max() > 1e-3
    # the mean of the passes' probabilities (not the softmax of the mean logits)
    many = dropout.mc_predict(clf, xc, 4000, generator=torch.Generator().manual_seed(1))
    clf.train()
    with torch.no_grad():
        ref = torch.stack([torch.softmax(clf(xc), -1) for _ in range(4000)])
    clf.eval()
    se = ref.std(0) / math.sqrt(4000)
    assert ((many - ref.mean(0)).abs() < 4 * math.sqrt(2) * se + 1e-6).all()
    with pytest.raises(ValueError, match="n_samples"):
        dropout.mc_predict(reg, x, 0)


def test_mc_predict_is_the_one_predictive_with_dropout_on_and_leaves_torchs_rng_alone():
    """mc_predict = predictive.predictive(dropout=True) on a stream seeded by one draw
    from the generator: the numbers of the earlier implementation, which reseeded
    torch's global generator with that draw (rebuilt here), and torch's global state is
    never touched."""
    torch.manual_seed(0)
    reg = mlp.PlainMLP(
        [1, 30, 30, 1], likelihood="gaussian", dropout=0.2, input_dropout=0.1
    )
    x = torch.linspace(0, 1, 50).reshape(-1, 1)
    seed = int(torch.randint(2**62, (1,), generator=torch.Generator().manual_seed(5)))
    torch.manual_seed(seed)
    with torch.no_grad(), predictive.dropout_on(reg):
        outs = torch.stack([reg(x) for _ in range(40)]).double()
    torch.manual_seed(11)
    state = torch.get_rng_state()
    mean, var = dropout.mc_predict(
        reg, x, 40, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(mean, outs.mean(0).float(), rtol=0, atol=1e-7)
    torch.testing.assert_close(
        var, outs.var(0, unbiased=False).float(), rtol=1e-5, atol=1e-9
    )
    m2, v2 = predictive.predictive(
        reg, x, 40, dropout=True, generator=torch.Generator().manual_seed(9)
    )
    assert torch.equal(torch.get_rng_state(), state) and (v2 > 0).all()
    # predictive without dropout=True: the eval-mode network, no spread
    assert predictive.predictive(reg, x, 5)[1].abs().max() == 0
    with pytest.raises(TypeError, match="generator"):
        predictive.predictive(
            torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Dropout(0.5)),
            x,
            3,
            dropout=True,
            generator=torch.Generator(),
        )


# --- Bernoulli dropout as variational inference ---------------------------------------


def _mixture_kl_draws(m, p, sigma, length_scale, z, e):
    """log q(w) - log p(w) at w = z m + sigma e, for q = p N(0, sigma^2 I) + (1-p) N(m,
    sigma^2 I) (torch.distributions) and the prior N(0, l^-2 I): single-draw KL
    estimates."""
    comp = Independent(Normal(torch.stack([torch.zeros_like(m), m]), sigma), 1)
    q = MixtureSameFamily(Categorical(torch.tensor([p, 1 - p], dtype=m.dtype)), comp)
    prior = Independent(Normal(torch.zeros_like(m), 1 / length_scale), 1)
    w = z[:, None] * m + sigma * e
    return q.log_prob(w) - prior.log_prob(w)


def test_gal_kl_term_matches_the_mixture_kl():
    """N x (the term at 2W - the term at W) against the Monte Carlo KL of the mixture of
    a narrow Gaussian at 0 and one at each column m_k of M = W / (1-p) (the weights unit
    k feeds), summed over units, with common random numbers: the parameter-dependent
    part of the KL, its constant (1-p) l^2 / 2, which p goes with which layer (0.2 on
    the inputs, 0.5 on the hidden units), and the inverted-dropout scaling M = W / (1-p)
    (4 standard errors)."""
    torch.manual_seed(0)
    net = mlp.PlainMLP([3, 4, 2], dropout=0.5, input_dropout=0.2).double()
    n_data, ell, sigma, n = 40, 2.0, 1e-2, 100_000
    assert dropout.input_dropout_rates(net) == [0.2, 0.5]
    g = torch.Generator().manual_seed(1)
    diffs = 0.0
    for layer, p in zip(net.layers, (0.2, 0.5)):
        for k in range(layer.in_features):
            m = layer.weight.detach()[:, k] / (1 - p)
            z = (torch.rand(n, generator=g, dtype=torch.float64) > p).double()
            e = torch.randn(n, len(m), generator=g, dtype=torch.float64)
            diffs = diffs + _mixture_kl_draws(2 * m, p, sigma, ell, z, e)
            diffs = diffs - _mixture_kl_draws(m, p, sigma, ell, z, e)
    se = diffs.std().item() / math.sqrt(n)
    before = dropout.gal_kl_term(net, n_data, ell).item()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(2)
    after = dropout.gal_kl_term(net, n_data, ell).item()
    assert abs(n_data * (after - before) - diffs.mean().item()) < 4 * se, (
        after - before,
        se,
    )


def test_gal_kl_term_biases_and_objective():
    """Biases are never dropped: l^2 / (2N) ||b||^2. The objective adds the term to the
    mean NLL (eval mode here, so that the network is deterministic)."""
    net = mlp.PlainMLP([2, 3, 1], dropout=0.5, likelihood="gaussian", noise_std=0.5)
    n_data, ell = 25, 3.0
    with_bias = dropout.gal_kl_term(net, n_data, ell)
    with torch.no_grad():
        b = [layer.bias.clone() for layer in net.layers]
        for layer in net.layers:
            layer.bias.zero_()
    expected = ell**2 / (2 * n_data) * sum(bi.pow(2).sum() for bi in b)
    assert (with_bias - dropout.gal_kl_term(net, n_data, ell)).item() == pytest.approx(
        expected.item(), rel=1e-5
    )
    net.eval()
    x, y = torch.randn(7, 2), torch.randn(7, 1)
    terms = dropout.mc_dropout_objective(net, x, y, n_data=n_data, length_scale=ell)
    nll = -torch.distributions.Normal(net(x), 0.5).log_prob(y).mean()
    kl = dropout.gal_kl_term(net, n_data, ell)
    assert terms["loss"].item() == pytest.approx((nll + kl).item(), rel=1e-5)
    assert terms["kl_term"].item() == pytest.approx(kl.item(), rel=1e-6)
    with pytest.raises(ValueError, match="length_scale"):
        dropout.gal_kl_term(net, n_data, 0.0)
    with pytest.raises(ValueError, match="n_data"):
        dropout.gal_kl_term(net, 0, ell)
    with pytest.raises(TypeError, match="PlainMLP"):
        dropout.gal_kl_term(dropout.VariationalDropoutMLP([2, 1]), n_data, ell)
