"""probdl.dlgm: stick breaking, the mixture's density and Jensen's entropy bound against
torch.distributions and Monte Carlo, and the mixture VAE's estimates against
quadrature."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from probdl import dlgm


def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_mixture(batch=(3,), k=4, l=2, seed=0):
    g = gen(seed)
    log_w = torch.log_softmax(
        torch.randn(*batch, k, generator=g, dtype=torch.float64), -1
    )
    mu = 2 * torch.randn(*batch, k, l, generator=g, dtype=torch.float64)
    log_s = 0.5 * torch.randn(*batch, k, l, generator=g, dtype=torch.float64) - 0.3
    return log_w, mu, log_s


def torch_mixture(log_w, mu, log_s):
    return MixtureSameFamily(
        Categorical(logits=log_w), Independent(Normal(mu, log_s.exp()), 1)
    )


def test_stick_breaking_against_the_product_formula():
    gamma = torch.rand(5, 6, generator=gen(1), dtype=torch.float64)
    w, rem = dlgm.stick_breaking(gamma)
    for k in range(6):
        prod = torch.prod(1 - gamma[:, :k], dim=-1)
        torch.testing.assert_close(w[:, k], gamma[:, k] * prod)
        torch.testing.assert_close(rem[:, k], torch.prod(1 - gamma[:, : k + 1], dim=-1))
    torch.testing.assert_close(
        w.sum(-1) + rem[:, -1], torch.ones(5, dtype=torch.float64)
    )
    gamma[:, -1] = 1.0  # closing the stick: the weights sum to one
    torch.testing.assert_close(
        dlgm.stick_breaking(gamma)[0].sum(-1), torch.ones(5, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="gamma in"):
        dlgm.stick_breaking(torch.tensor([1.5]))


def test_weight_entropy_uses_a_sum_of_logs():
    gamma = torch.rand(4, 5, generator=gen(2), dtype=torch.float64)
    gamma[:, -1] = 1.0
    w, _ = dlgm.stick_breaking(gamma)
    log_w = torch.log(gamma) + torch.cat(
        [torch.zeros(4, 1, dtype=gamma.dtype), torch.log1p(-gamma[:, :-1]).cumsum(-1)],
        -1,
    )
    torch.testing.assert_close(log_w.exp(), w)
    torch.testing.assert_close(
        dlgm.categorical_entropy(log_w), Categorical(probs=w).entropy()
    )
    wrong = torch.log(gamma) + torch.cat(
        [torch.zeros(4, 1, dtype=gamma.dtype), torch.log1p(-gamma[:, :-1]).cumprod(-1)],
        -1,
    )
    assert (
        dlgm.categorical_entropy(wrong) - Categorical(probs=w).entropy()
    ).abs().max() > 1e-3


def test_mixture_log_prob_matches_torch_distributions():
    log_w, mu, log_s = random_mixture()
    z = torch.randn(7, 3, 2, generator=gen(3), dtype=torch.float64)
    torch.testing.assert_close(
        dlgm.mixture_log_prob(z, log_w, mu, log_s),
        torch_mixture(log_w, mu, log_s).log_prob(z),
    )


def test_jensen_entropy_bound_is_below_the_monte_carlo_entropy():
    for seed in range(5):
        log_w, mu, log_s = random_mixture(batch=(4,), k=3, l=2, seed=seed)
        q = torch_mixture(log_w, mu, log_s)
        z = q.sample((200_000,))
        lp = q.log_prob(z)
        h_mc, se = -lp.mean(0), lp.std(0) / math.sqrt(len(lp))
        bound = dlgm.mixture_entropy_lower_bound(log_w, mu, log_s)
        assert (bound <= h_mc + 4 * se).all(), (bound, h_mc)
    # one component: -log N(mu; mu, 2 sigma^2) is the Gaussian's entropy minus (L/2)(1 -
    # log 2)
    log_w, mu, log_s = random_mixture(batch=(2,), k=1, l=3)
    exact = Independent(Normal(mu[:, 0], log_s[:, 0].exp()), 1).entropy()
    torch.testing.assert_close(
        dlgm.mixture_entropy_lower_bound(log_w, mu, log_s),
        exact - 1.5 * (1 - math.log(2)),
    )


def tiny_model(adaptive=False, k=3, latent=2, seed=0):
    torch.manual_seed(seed)
    return dlgm.MixtureVAE(
        12, 16, latent, k, adaptive=adaptive, threshold=0.05
    ).double()


def binary(n, d=12, seed=0):
    return (torch.rand(n, d, generator=gen(seed), dtype=torch.float64) < 0.4).double()


def spread_model(adaptive):
    """A tiny model whose mixture components lie apart (the fixed model's means are set
    at three points; the adaptive one's gammas near 0.9, so that it halts after two of
    its three steps): there the mixture's entropy differs from the components' entropies
    by about H(pi)."""
    model = tiny_model(adaptive)
    with torch.no_grad():
        bias = model.head.bias.view(1 if adaptive else 3, 5)
        if adaptive:
            bias[:, -1] = 2.0
        else:
            bias[:, :2] = torch.tensor(
                [[-2.0, 0.0], [2.0, 0.5], [0.0, 2.5]], dtype=torch.float64
            )
        bias[:, 2:4] -= 0.5
    return model


@pytest.mark.parametrize("adaptive", [False, True])
def test_elbo_estimate_is_unbiased(adaptive):
    """The mean of many one-draw-per-component estimates equals the ELBO of the same q
    computed by quadrature, sum_grid q(z) [log p(x, z) - log q(z)] dz, within 4 standard
    errors (about 0.02 nats). A Jensen-bound entropy (0.3 nats lower), each component's
    own density in place of the mixture's (up to H(pi) higher) or a constant off by a
    nat all fail."""
    model, x, n = spread_model(adaptive), binary(3), 20_000
    with torch.no_grad():
        q = model.q_params(x)
        exact, mass = dlgm.grid_elbo(model, x, q[:3], lim=6.0, n=301)
        draws = model.elbo(x.repeat(n, 1), gen(1)).view(n, 3)
        t = model.terms(x)
    torch.testing.assert_close(
        mass, torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0
    )
    se = draws.std(0) / math.sqrt(n)
    assert ((draws.mean(0) - exact).abs() < 4 * se).all(), (draws.mean(0), exact, se)
    assert (se < 0.01).all()  # small enough to see a 0.3-nat bias
    log_px, _ = dlgm.grid_log_marginal(model, x, lim=6.0, n=301)
    assert (exact <= log_px).all()
    assert (t["entropy_bound"] <= t["entropy_mc"] + 5).all()  # a loose sanity bound
    assert (t["components"] >= 1).all() and (t["components"] <= 3).all()
    if adaptive:
        assert (
            q[3].sum(-1) == 2
        ).all()  # gamma near 0.9: the stick left after two is 1 %


@pytest.mark.parametrize("adaptive", [False, True])
def test_importance_sampled_log_marginal_converges_to_quadrature(adaptive):
    model, x = tiny_model(adaptive), binary(3, seed=1)
    log_px, post = dlgm.grid_log_marginal(model, x, lim=6.0, n=301)
    est = model.log_marginal(x, k=20_000, generator=gen(5))
    torch.testing.assert_close(est, log_px, atol=0.02, rtol=0)
    cell = (12.0 / 300) ** 2
    torch.testing.assert_close(
        post.exp().sum((1, 2)) * cell,
        torch.ones(3, dtype=torch.float64),
        atol=1e-6,
        rtol=0,
    )


def full_recurrence_q(model, x):
    """The adaptive q with the recurrence run for all K steps for every example, then
    the stick closed at the halting step: what the halting model must give, computed the
    long way."""
    h, (b, k, l) = model.trunk(x), (x.shape[0], model.n_components, model.n_latent)
    state, outs = None, []
    for _ in range(k):
        state = model.cell(h, state)
        outs.append(model.head(state[0]))
    out = torch.stack(outs, 1)
    gamma = torch.sigmoid(out[..., -1])
    _, remaining = dlgm.stick_breaking(gamma)
    halt = torch.cat(
        [remaining[:, :-1] < model.threshold, torch.ones(b, 1, dtype=torch.bool)], 1
    )
    first = halt.float().argmax(1)
    steps = torch.arange(k)
    gamma = torch.where(steps[None] == first[:, None], torch.ones_like(gamma), gamma)
    active = steps[None] <= first[:, None]
    return dlgm.stick_breaking(gamma)[0], out[..., :l], out[..., l : 2 * l], active


def test_adaptive_recurrence_stops_for_halted_examples():
    """Halting is real: the LSTM cell sees an example only until its stick is used up
    (counted by a hook on the cell), and q is the same as with the recurrence run to the
    end."""
    model = tiny_model(adaptive=True, k=5)
    with torch.no_grad():
        model.head.bias[-1] = (
            0.8  # gamma near 0.7: the examples halt after 3 of 5 steps
        )
    rows = []
    model.cell.register_forward_hook(lambda mod, inp, out: rows.append(inp[0].shape[0]))
    x = binary(40, seed=6)
    with torch.no_grad():
        log_w, mu, log_s, active = model.q_params(x)
        seen = sum(rows)
        w_ref, mu_ref, ls_ref, active_ref = full_recurrence_q(model, x)
    assert torch.equal(active, active_ref)
    assert (
        1 < active.sum(-1).float().mean() < 4.5
    )  # some halt early: the test sees the saving
    assert seen == active.sum()  # one LSTM step per component used, none after halting
    torch.testing.assert_close(log_w.exp(), w_ref)
    torch.testing.assert_close(mu[active], mu_ref[active])
    torch.testing.assert_close(log_s[active], ls_ref[active])


def test_adaptive_weights_halt_and_sum_to_one():
    model = tiny_model(adaptive=True, k=5)
    with torch.no_grad():
        log_w, mu, log_s, active = model.q_params(binary(20, seed=2))
    torch.testing.assert_close(log_w.exp().sum(-1), torch.ones(20, dtype=torch.float64))
    assert (log_w.exp()[~active] == 0).all()
    first_inactive_is_contiguous = (active.long().diff(dim=-1) <= 0).all()
    assert first_inactive_is_contiguous


def test_objective_trains_and_rejects_grey_input():
    model = tiny_model()
    protos = binary(
        2, seed=3
    )  # two prototypes with 5 % of the pixels flipped: structure to learn
    flips = (torch.rand(64, 12, generator=gen(4), dtype=torch.float64) < 0.05).double()
    x = (protos[torch.arange(64) % 2] + flips) % 2
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        out = dlgm.mixture_vae_objective(model, x)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = first if first is not None else out["loss"].item()
    assert out["loss"].item() < first - 0.5
    with pytest.raises(ValueError):
        model.log_marginal(torch.full((2, 12), 0.5, dtype=torch.float64), k=3)
    with pytest.raises(ValueError, match="entropy"):
        dlgm.mixture_vae_objective(model, x, entropy="exact")


def test_grid_modes_finds_the_bumps_of_a_two_mode_density():
    grid = torch.linspace(-4, 4, 81)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1)
    centres = torch.tensor([[-2.0, 1.0], [1.5, -1.0]])
    dens = torch.logsumexp(
        -((zz[..., None, :] - centres) ** 2).sum(-1) / 0.5 + torch.tensor([0.0, -1.0]),
        -1,
    )
    modes = dlgm.grid_modes(dens, grid, 2)
    assert torch.allclose(modes, centres, atol=0.11)  # the higher bump first
    assert torch.allclose(
        dlgm.grid_modes(dens, grid, 3)[2], centres[0], atol=0.11
    )  # repeats


def test_grid_modes_with_a_generator_starts_extra_components_apart_and_on_the_density():
    grid = torch.linspace(-4, 4, 81)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1)
    dens = -((zz - torch.tensor([1.0, -0.5])) ** 2).sum(-1) / 0.5  # one bump
    starts = dlgm.grid_modes(dens, grid, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(
        starts[0], torch.tensor([1.0, -0.5]), atol=0.11
    )  # the peak first
    assert (
        len({tuple(s.tolist()) for s in starts}) == 3
    )  # the other two are not copies of it
    assert (
        (starts - torch.tensor([1.0, -0.5])).norm(dim=-1) < 2.0
    ).all()  # drawn where the mass is


def bimodal_model(d=6, a=2.0, c=3.0):
    """A model with a known answer: the decoder's logits are a |z_1| - c for all d
    pixels (two ReLU units give |z_1|), so for x = all ones the posterior is symmetric
    in z_1 -> -z_1 with two modes of mass 1/2 each, far apart. The best single Gaussian
    sits on one of them; a two-component mixture takes both, so its gap is smaller by
    log 2 (the two halves barely overlap) and its ELBO stays below log p(x)."""
    model = dlgm.MixtureVAE(d, 2, 2, 1)
    with torch.no_grad():
        first, second, out = model.decoder[0], model.decoder[2], model.decoder[4]
        first.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        second.weight.copy_(torch.eye(2))
        out.weight.fill_(a)
        first.bias.zero_(), second.bias.zero_(), out.bias.fill_(-c)
    return model, torch.ones(1, d)


def mc_elbo_se(model, x, q, n, seed):
    """The standard error of a direct fit's n-draw ELBO estimate (as in fit_q)."""
    log_w, mu, log_s = q
    z = mu + log_s.exp() * torch.randn((n, *mu.shape), generator=gen(seed))
    with torch.no_grad():
        v = (
            log_w.exp()
            * (
                model.log_joint(x.expand(len(log_w), -1), z)
                - dlgm.mixture_log_prob(z, *q)
            )
        ).sum(-1)
    return v.std() / math.sqrt(n)


def test_mixture_fit_closes_a_known_bimodal_gap():
    model, x = bimodal_model()
    grid = torch.linspace(-5, 5, 201)
    log_px, post = dlgm.grid_log_marginal(model, x, lim=5.0, n=201)
    _, masses = dlgm.grid_basins(post[0])
    torch.testing.assert_close(
        masses[:2], torch.tensor([0.5, 0.5], dtype=torch.float64), atol=1e-6, rtol=0
    )
    gap = {}
    for k in (1, 2):
        init = dlgm.grid_modes(post[0], grid, k)
        q, value = dlgm.fit_q(model, x, k, steps=300, generator=gen(k), init_means=init)
        exact, mass = dlgm.grid_elbo(
            model, x, tuple(t[None] for t in q), lim=5.0, n=201
        )
        assert abs(mass.item() - 1) < 1e-4
        assert exact.item() <= log_px.item() + 1e-4  # the grid's own error is ~1e-5
        se = mc_elbo_se(model, x, q, 4000, seed=10 + k)
        assert (
            abs(value - exact.item()) < 4 * se
        )  # fit_q's reported ELBO is the ELBO of its q
        gap[k] = (log_px - exact).item()
    assert gap[1] > math.log(2) - 0.02  # one Gaussian misses half the mass
    assert gap[2] < 0.1 * gap[1]  # the mixture closes most of it
    assert abs(gap[1] - gap[2] - math.log(2)) < 0.02  # by log 2, the known answer


def test_grid_basins_weigh_each_mode():
    grid = torch.linspace(-4, 4, 81)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1)
    comps = torch.stack(
        [
            -((zz - c) ** 2).sum(-1) / 0.5
            for c in torch.tensor([[-2.0, 1.0], [1.5, -1.0]])
        ]
    )
    dens = torch.logsumexp(comps + torch.tensor([0.25, 0.75]).log()[:, None, None], 0)
    peaks, masses = dlgm.grid_basins(dens)
    assert len(peaks) == 2
    torch.testing.assert_close(
        masses, torch.tensor([0.75, 0.25], dtype=torch.float64), atol=1e-3, rtol=0
    )
    assert torch.allclose(
        zz.reshape(-1, 2)[peaks[0]], torch.tensor([1.5, -1.0]), atol=0.11
    )


def test_gradient_of_the_estimate_is_unbiased():
    """The estimate's gradient (reparameterized draws, weights through pi_k) averages to
    the gradient of the quadrature ELBO (central differences), for the weights' logits,
    a mean and a log sigma, within 4 standard errors over batches of draws: a detach on
    z or on pi fails."""
    model, x = spread_model(False), binary(2)
    idx = [
        4,
        9,
        14,
        0,
        6,
        3,
    ]  # the three weight logits, two means, a log sigma (head.bias layout)
    grads = []
    for s in range(20):
        model.zero_grad()
        model.elbo(x.repeat(1000, 1), gen(100 + s)).sum().div(1000).backward()
        grads.append(model.head.bias.grad[idx].clone())
    grads = torch.stack(grads)
    fd, h = [], 1e-4
    for i in idx:
        vals = []
        for sign in (1, -1):
            with torch.no_grad():
                model.head.bias[i] += sign * h
                vals.append(
                    dlgm.grid_elbo(model, x, model.q_params(x)[:3], lim=6.0, n=301)[
                        0
                    ].sum()
                )
                model.head.bias[i] -= sign * h
        fd.append((vals[0] - vals[1]) / (2 * h))
    fd = torch.stack(fd)
    se = grads.std(0) / math.sqrt(len(grads))
    assert ((grads.mean(0) - fd).abs() < 4 * se + 1e-4).all(), (grads.mean(0), fd, se)
    assert (fd.abs() > 10 * se).sum() >= 4  # the test can see a missing gradient path


def test_occam_penalty_is_the_weight_entropy_times_its_weight():
    model, x = tiny_model(adaptive=True), binary(8, seed=7)
    out = {}
    for lam in (0.0, 0.5):
        torch.manual_seed(3)
        out[lam] = dlgm.mixture_vae_objective(model, x, weight_entropy=lam)["loss"]
    with torch.no_grad():
        h = dlgm.categorical_entropy(model.q_params(x)[0]).mean()
    assert h > 0.1
    torch.testing.assert_close(out[0.5] - out[0.0], 0.5 * h)


def test_objective_with_the_jensen_bound_uses_the_bound():
    """entropy="bound": the objective's ELBO is the joint term plus Jensen's entropy
    bound (lower than the sampled entropy's by at least (L/2)(1 - log 2) on average),
    from the same draws."""
    model, x = spread_model(False), binary(8, seed=8)
    torch.manual_seed(4)
    out = dlgm.mixture_vae_objective(model, x, entropy="bound")
    torch.manual_seed(4)
    t = model.terms(x)
    torch.testing.assert_close(out["elbo"], (t["joint"] + t["entropy_bound"]).mean())
    torch.testing.assert_close(out["loss"], -(t["joint"] + t["entropy_bound"]).mean())


def test_basin_starts_put_the_components_on_the_modes_weighted_by_mass():
    grid = torch.linspace(-4, 4, 81)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1)
    centres = torch.tensor([[-2.0, 1.0], [1.5, -1.0]])
    comps = torch.stack([-((zz - c) ** 2).sum(-1) / 0.5 for c in centres])
    dens = torch.logsumexp(comps + torch.tensor([0.25, 0.75]).log()[:, None, None], 0)
    means, log_w = dlgm.basin_starts(dens, grid, 2)
    assert torch.allclose(means, centres.flip(0), atol=0.11)  # the heavier mode first
    torch.testing.assert_close(
        log_w.exp(), torch.tensor([0.75, 0.25]), atol=1e-3, rtol=0
    )
    means3, log_w3 = dlgm.basin_starts(dens, grid, 3, generator=gen(0))
    assert len(means3) == 3 and abs(log_w3.exp().sum().item() - 1) < 1e-6
    assert log_w3.exp()[2] < 0.02  # a start beyond the modes gets a small weight
    q, _ = dlgm.fit_q(
        bimodal_model()[0],
        torch.ones(1, 6),
        2,
        steps=1,
        init_means=means,
        init_log_weights=log_w,
    )
    torch.testing.assert_close(
        q[0].exp(), log_w.exp(), atol=0.05, rtol=0
    )  # one step from the start
    with pytest.raises(ValueError, match="init_log_weights"):
        dlgm.fit_q(
            bimodal_model()[0], torch.ones(1, 6), 3, steps=1, init_log_weights=log_w
        )


def test_iwae_objective_against_quadrature():
    """With one draw the importance-weighted bound is the ELBO (its mean equals the
    quadrature ELBO within 4 standard errors); with k = 2000 it is within 0.05 nats
    below the exact log p(x), and ten draws beat one. Dropping log q (the joint alone),
    log-sum instead of log-mean (log k too high) or a missing log_q's sign all fail one
    of these."""
    model, x, n = tiny_model(k=1), binary(3, seed=2), 4000
    with torch.no_grad():
        elbo, _ = dlgm.grid_elbo(model, x, model.q_params(x)[:3], lim=6.0, n=301)
        log_px, _ = dlgm.grid_log_marginal(model, x, lim=6.0, n=301)
        torch.manual_seed(3)
        one = torch.stack(
            [
                -dlgm.iwae_objective(model, x[i : i + 1].repeat(n, 1), k=1)["loss"]
                for i in range(3)
            ]
        )
        b = {
            k: torch.stack(
                [
                    dlgm.iwae_objective(model, x[i : i + 1].repeat(500, 1), k=k)[
                        "bound"
                    ]
                    for i in range(3)
                ]
            )
            for k in (10, 2000)
        }
    # the loss is a mean over the n copies: its standard error from the ELBO's per-draw
    # spread
    se = torch.stack(
        [model.elbo(x[i : i + 1].repeat(n, 1)).std() for i in range(3)]
    ).detach() / math.sqrt(n)
    assert ((one - elbo).abs() < 4 * se).all(), (one, elbo, se)
    assert ((log_px - b[2000]) >= -0.01).all() and ((log_px - b[2000]) < 0.05).all(), (
        b[2000],
        log_px,
    )
    assert (elbo < b[10]).all(), (elbo, b)  # ten draws already beat one
    with pytest.raises(ValueError, match="n_components=1"):
        dlgm.iwae_objective(tiny_model(k=3), x, k=5)
