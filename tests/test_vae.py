"""Tests of probdl.vae: the mathematics (KL against Monte Carlo and torch.distributions,
the importance-weighted estimate against quadrature and a closed-form evidence,
reparameterized gradients against autograd), shapes, determinism and error messages."""

import functools
import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from probdl import config, vae
from probdl.vi import log_mean_exp


def _binary(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, d), 0.4), generator=g)


def _small(n_visible=6, n_hidden=8, n_latent=3, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return vae.VAE(n_visible, n_hidden, n_latent).to(dtype)


def test_architecture_and_shapes():
    m = vae.VAE()
    assert [l.out_features for l in m.encoder if hasattr(l, "out_features")] == [
        200,
        200,
        100,
    ]
    assert [l.out_features for l in m.decoder if hasattr(l, "out_features")] == [
        200,
        200,
        784,
    ]
    assert "784-200-200-50" in repr(m)
    one = vae.VAE(784, 400, 20, n_layers=1)
    assert "784-400-20" in repr(one)
    x = _binary(7, 784).float()
    assert m.elbo(x).shape == (7,)
    assert m.log_marginal(x, 3).shape == (7,)
    assert m.log_weights(x, 5).shape == (5, 7)
    assert m.reconstruct(x).shape == x.shape
    r = m.reconstruct(x)
    assert (r >= 0).all() and (r <= 1).all()
    assert m.sample(4).shape == (4, 784)
    s = m.sample(4, binary=True)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    mu, sigma = m.encode(x)
    assert mu.shape == sigma.shape == (7, 50) and (sigma > 0).all()
    t = m.terms(x)
    assert set(t) >= {
        "log_px_z",
        "log_pz",
        "log_qz",
        "surprise",
        "kl",
        "elbo",
        "elbo_mc",
    }
    assert all(v.shape == (7,) for v in t.values())
    assert (t["log_px_z"] <= 0).all() and (t["kl"] >= 0).all()


def test_terms_match_torch_distributions():
    m = _small()
    x = _binary(5, 6).double()
    g = torch.Generator().manual_seed(3)
    t = m.terms(x, generator=g)
    mu, sigma = m.encode(x)
    z = mu + sigma * torch.randn(
        mu.shape, dtype=mu.dtype, generator=torch.Generator().manual_seed(3)
    )
    q = Independent(Normal(mu, sigma), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(sigma)), 1)
    logits = m.decode(z)
    lik = (
        x * torch.log(torch.sigmoid(logits))
        + (1 - x) * torch.log(1 - torch.sigmoid(logits))
    ).sum(-1)
    torch.testing.assert_close(t["log_px_z"], lik)
    torch.testing.assert_close(t["surprise"], p.log_prob(z) - q.log_prob(z))
    torch.testing.assert_close(t["kl"], kl_divergence(q, p))
    torch.testing.assert_close(t["elbo"], lik - kl_divergence(q, p))


def test_analytic_kl_against_monte_carlo():
    m = _small(seed=1)
    x = _binary(4, 6, seed=1).double()
    with torch.no_grad():
        mu, sigma = m.encode(x)
        kl = m.terms(x)["kl"]
        n = 200_000
        g = torch.Generator().manual_seed(0)
        z = mu + sigma * torch.randn((n, *mu.shape), dtype=mu.dtype, generator=g)
        q = Independent(Normal(mu, sigma), 1)
        p = Independent(Normal(torch.zeros_like(mu), 1.0), 1)
        d = q.log_prob(z) - p.log_prob(z)
        mc, se = d.mean(0), d.std(0) / math.sqrt(n)
    assert (kl - mc).abs().max() < 4 * se.max() + 1e-6, (kl, mc, se)


def _quadrature_log_px(m, x):
    """log p(x) = log int N(z; 0, 1) p(x|z) dz by the trapezoid rule, for a 1-D
    latent."""
    z = torch.linspace(-12, 12, 40001, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        log_joint = m.likelihood(z.unsqueeze(1)).log_prob(x) + Normal(
            0.0, 1.0
        ).log_prob(z)  # (grid, batch)
    dz = z[1, 0] - z[0, 0]
    return torch.logsumexp(log_joint, 0) + torch.log(dz)


def test_importance_estimate_converges_to_quadrature_and_increases_with_k():
    m = _small(n_visible=30, n_hidden=6, n_latent=1, seed=2)
    with torch.no_grad():
        m.decoder[-1].weight.mul_(
            4.0
        )  # a sharper posterior: larger gaps between the bounds
    x = _binary(3, 30, seed=2).double()
    exact = _quadrature_log_px(m, x)
    g = torch.Generator().manual_seed(0)
    big = m.log_marginal(x, 20_000, generator=g)
    torch.testing.assert_close(big, exact, atol=1e-2, rtol=0)
    # On average the estimate is non-decreasing in K (Burda et al. 2016, Theorem 1) and
    # <= log p(x): disjoint groups of k weights out of one large draw
    with torch.no_grad():
        log_w = m.log_weights(x, 64 * 500, generator=torch.Generator().manual_seed(0))
        est = vae.estimates_by_k(log_w, [1, 2, 8, 64])
        means = torch.stack([est[k] for k in (1, 2, 8, 64)])
        elbo = m.terms(x.repeat(20_000, 1))["elbo"].reshape(20_000, -1).mean(0)
    assert (means[1:] - means[:-1] > -1e-3).all(), means
    assert (means <= exact + 1e-2).all(), (means, exact)
    # K = 1 is the ELBO with the Monte Carlo KL; its average equals the analytic-KL ELBO
    torch.testing.assert_close(means[0], elbo, atol=0.02, rtol=0)
    gap = exact - means[0]  # KL(q || p(z|x)) > 0 for an untrained encoder
    assert (gap > 0).all() and gap.mean() > 0.05, gap


def test_log_weights_chunking_and_iwae_bound():
    m = _small()
    x = _binary(4, 6).double()
    a = m.log_weights(x, 10, generator=torch.Generator().manual_seed(0))
    # chunked over samples: the same distribution of weights (different draws)
    with torch.no_grad():
        big = m.log_weights(x, 4000, generator=torch.Generator().manual_seed(1))
        chunked = m.log_weights(
            x, 4000, generator=torch.Generator().manual_seed(2), chunk=3
        )
    assert chunked.shape == big.shape == (4000, 4)
    se = (big.var(0) / 4000 + chunked.var(0) / 4000).sqrt()
    assert ((big.mean(0) - chunked.mean(0)).abs() < 4 * se).all()
    # k = 1: the IWAE bound is the Monte Carlo ELBO with the same noise
    t = m.terms(x, generator=torch.Generator().manual_seed(5))
    iw = m.iwae_bound(x, 1, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(iw, t["elbo_mc"])
    # estimates_by_k
    est = vae.estimates_by_k(a, [1, 2, 5, 10])
    torch.testing.assert_close(est[10], log_mean_exp(a, 0))
    torch.testing.assert_close(est[1], a.mean(0))
    with pytest.raises(ValueError, match="does not divide"):
        vae.estimates_by_k(a, [3])


def test_reparameterized_gradients_against_autograd():
    g = torch.Generator().manual_seed(0)
    D, L = 7, 3
    x = torch.bernoulli(torch.full((D,), 0.5), generator=g).double()
    W = torch.randn(D, L, dtype=torch.float64, generator=g).requires_grad_()
    b = torch.randn(D, dtype=torch.float64, generator=g).requires_grad_()
    mu = torch.randn(L, dtype=torch.float64, generator=g).requires_grad_()
    sigma = (0.5 + torch.rand(L, dtype=torch.float64, generator=g)).requires_grad_()
    eps = torch.randn(L, dtype=torch.float64, generator=g)
    z = mu + sigma * eps
    lik = torch.distributions.Bernoulli(logits=W @ z + b).log_prob(x).sum()
    kl = kl_divergence(Normal(mu, sigma), Normal(0.0, 1.0)).sum()
    (lik - kl).backward()
    hand = vae.linear_decoder_gradients(
        x, W.detach(), b.detach(), mu.detach(), sigma.detach(), eps
    )
    for name, p in (("W", W), ("b", b), ("mu", mu), ("sigma", sigma)):
        torch.testing.assert_close(hand[name], p.grad, msg=name)


def test_objective_terms_and_training_moves_the_elbo():
    from probdl.train import fit

    config.seed_everything(0)
    x = _binary(128, 20, seed=4)
    x[:, :10] = x[:, 10:]  # structure to learn
    m = vae.VAE(20, 32, 4)
    terms = vae.elbo_objective(m, x[:8])
    torch.testing.assert_close(terms["loss"], -terms["elbo"])
    torch.testing.assert_close(terms["kl_mc"], -terms["surprise"])
    before = vae.evaluate(m, x)
    hist = fit(
        m, vae.elbo_objective, x, epochs=40, batch_size=32, lr=1e-2, progress=False
    )
    after = vae.evaluate(m, x)
    assert after > before + 1, (before, after)  # the sign-flipped loss goes down
    assert set(hist.names()) >= {"elbo", "log_px_z", "surprise", "kl", "kl_mc"}
    iw = functools.partial(vae.iwae_objective, k=4)
    m.zero_grad()
    out = iw(m, x[:8], torch.zeros(8))  # extra batch tensors (labels) are ignored
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters())
    # it is the k-sample bound with the same noise
    with torch.no_grad():
        torch.manual_seed(7)
        objective = vae.iwae_objective(m, x, k=4)["bound"]
        torch.manual_seed(7)
        bound = log_mean_exp(m.log_weights(x, 4), 0).mean()
    torch.testing.assert_close(objective, bound)
    # and with k = 4 it lies above the k = 1 bound on average (Burda et al. 2016,
    # Theorem 1)
    with torch.no_grad():
        k1 = torch.stack([vae.iwae_objective(m, x, k=1)["bound"] for _ in range(200)])
        k4 = torch.stack([vae.iwae_objective(m, x, k=4)["bound"] for _ in range(200)])
    se = ((k1.var() + k4.var()) / 200).sqrt()
    assert k4.mean() > k1.mean() + 2 * se, (k1.mean(), k4.mean(), se)
    torch.testing.assert_close(out["loss"], -out["bound"])


def test_q_is_the_encoders_gaussian():
    m = _small()
    x = _binary(5, 6).double()
    q = m.q(x)
    mu, sigma = m.encode(x)
    assert q.batch_shape == (5,) and q.event_shape == (3,)
    torch.testing.assert_close(q.mean, mu)
    torch.testing.assert_close(q.stddev, sigma)
    torch.testing.assert_close(
        torch.distributions.kl_divergence(q, m.prior()),
        m.terms(x)["kl"],
        msg="KL(q || prior)",
    )


def test_active_units_counts_the_dimensions_whose_mean_depends_on_x():
    m = _small(n_visible=20, n_hidden=16, n_latent=6, seed=3)
    x = _binary(400, 20, seed=3).double()
    head = m.encoder[-1]  # rows 0..5: mu, rows 6..11: log sigma^2
    with torch.no_grad():
        head.weight[:2].zero_()  # mu_0 and mu_1 no longer depend on x: inactive
        head.weight[2:6].mul_(20.0)  # the others vary a lot with x
    n, activity = vae.active_units(m, x)
    mu = m.encode(x)[0].detach()
    torch.testing.assert_close(activity, mu.var(0))
    assert activity[:2].max() < 1e-20 and activity[2:].min() > 0.01, activity
    assert n == 4
    # the threshold is what decides: above every activity, nothing is active
    assert vae.active_units(m, x, threshold=float(activity.max()) * 2)[0] == 0
    with pytest.raises(ValueError, match="threshold"):
        vae.active_units(m, x, threshold=0.0)


def test_determinism_with_a_seed():
    x = _binary(5, 784).float()
    res = []
    for _ in range(2):
        config.seed_everything(123)
        m = vae.VAE(784, 50, 5)
        res.append((m.elbo(x), m.log_marginal(x, 7), m.sample(2)))
    for a, b in zip(*res):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    m = vae.VAE(784, 50, 5)
    a = m.log_marginal(x, 7, generator=torch.Generator().manual_seed(1))
    b = m.log_marginal(x, 7, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_errors():
    m = vae.VAE(784, 20, 2)
    grey = torch.rand(3, 784)
    with pytest.raises(ValueError, match="binary"):
        m.elbo(grey)
    with pytest.raises(ValueError, match="binary"):
        m.log_marginal(grey, 10)
    with pytest.raises(ValueError, match="shape"):
        m.elbo(torch.zeros(784))
    with pytest.raises(ValueError, match="n_visible=784"):
        m.elbo(torch.zeros(3, 100))
    # integer 0/1 input is accepted and converted, as for every model that checks binary
    # data
    assert m.elbo(torch.zeros(3, 784, dtype=torch.int64)).dtype == torch.float32
    x = torch.zeros(3, 784)
    for k in (0, -1, 2.5):
        with pytest.raises(ValueError, match="K must be an int >= 1"):
            m.log_marginal(x, k)
    with pytest.raises(ValueError, match="K must be"):
        m.iwae_bound(x, 0)
    with pytest.raises(ValueError, match="K must be"):
        vae.iwae_objective(m, x, k=0)
    with pytest.raises(TypeError):
        vae.iwae_objective(m, x)  # k has no default: bind it with functools.partial
    with pytest.raises(ValueError, match="at least 2 images"):
        vae.active_units(m, x[:1])
    with pytest.raises(ValueError, match="positive int"):
        vae.VAE(784, 200, 0)
    with pytest.raises(ValueError, match="positive int"):
        m.sample(0)


def test_iwae_schedule():
    assert vae.IWAE_EPOCHS == 3280
    assert vae.iwae_lr_factor(0) == 1.0
    assert vae.iwae_lr_factor(1) == pytest.approx(
        10 ** (-1 / 7)
    )  # epochs 1..3 are stage 1
    assert vae.iwae_lr_factor(3) == pytest.approx(10 ** (-1 / 7))
    assert vae.iwae_lr_factor(4) == pytest.approx(10 ** (-2 / 7))
    assert vae.iwae_lr_factor(3279) == pytest.approx(0.1)
    f = vae.exponential_lr_factor(10, 0.1)
    assert (
        f(0) == 1.0 and f(5) == pytest.approx(10**-0.5) and f(10) == pytest.approx(0.1)
    )
    with pytest.raises(ValueError):
        vae.exponential_lr_factor(0)


def test_k_ladder_is_the_importance_estimate_for_every_k_and_restores_the_mode():
    model, x = _small(), _binary(6, 6).double()
    model.train()
    g = functools.partial(torch.Generator().manual_seed, 3)
    r = vae.k_ladder(model, x, [1, 4, 16], batch_size=4, generator=g())
    assert model.training  # the mode it had
    ref = model.log_marginal(x, k=16, batch_size=4, generator=g())
    assert math.isclose(r["estimates"][16], ref.mean().item(), rel_tol=1e-9)
    assert math.isclose(r["stderr"], (ref.std() / math.sqrt(6)).item(), rel_tol=1e-9)
    # k = 1 is the Monte Carlo ELBO; the analytic-KL ELBO has the same expectation
    one = g()  # one stream over the batches, as k_ladder draws them
    log_w = torch.cat(
        [model.log_weights(xb, 16, generator=one) for xb in x.split(4)], 1
    )
    assert math.isclose(r["estimates"][1], log_w.mean().item(), rel_tol=1e-9)
    assert r["estimates"][1] <= r["estimates"][4] <= r["estimates"][16]
    assert abs(r["elbo"] - r["estimates"][1]) < 1.0


def test_encode_is_the_encoder_network_written_out():
    """mu and sigma from the encoder's layers by hand: its output's first L entries are
    mu, the last L are log sigma^2."""
    m, x = _small(), _binary(5, 6).double()
    h = x
    layers = [layer for layer in m.encoder if isinstance(layer, torch.nn.Linear)]
    for i, layer in enumerate(layers):
        h = h @ layer.weight.T + layer.bias
        h = torch.relu(h) if i < len(layers) - 1 else h
    mu, sigma = m.encode(x)
    torch.testing.assert_close(mu, h[:, :3])
    torch.testing.assert_close(sigma, torch.exp(0.5 * h[:, 3:]))
    prior = m.prior()
    assert prior.event_shape == (3,) and prior.batch_shape == ()
    z = torch.randn(4, 3, dtype=torch.float64)
    by_hand = Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(prior.log_prob(z), by_hand)
