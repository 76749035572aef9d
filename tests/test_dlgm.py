"""probdl.dlgm: stick breaking, the mixture's density and Jensen's entropy bound against
torch.distributions and Monte Carlo, and the mixture VAE's estimates against quadrature."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from probdl import dlgm

torch.set_num_threads(1)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_mixture(batch=(3,), k=4, l=2, seed=0):
    g = gen(seed)
    log_w = torch.log_softmax(torch.randn(*batch, k, generator=g, dtype=torch.float64), -1)
    mu = 2 * torch.randn(*batch, k, l, generator=g, dtype=torch.float64)
    log_s = 0.5 * torch.randn(*batch, k, l, generator=g, dtype=torch.float64) - 0.3
    return log_w, mu, log_s


def torch_mixture(log_w, mu, log_s):
    return MixtureSameFamily(Categorical(logits=log_w), Independent(Normal(mu, log_s.exp()), 1))


def test_stick_breaking_against_the_product_formula():
    gamma = torch.rand(5, 6, generator=gen(1), dtype=torch.float64)
    w, rem = dlgm.stick_breaking(gamma)
    for k in range(6):
        prod = torch.prod(1 - gamma[:, :k], dim=-1)
        torch.testing.assert_close(w[:, k], gamma[:, k] * prod)
        torch.testing.assert_close(rem[:, k], torch.prod(1 - gamma[:, : k + 1], dim=-1))
    torch.testing.assert_close(w.sum(-1) + rem[:, -1], torch.ones(5, dtype=torch.float64))
    gamma[:, -1] = 1.0  # closing the stick: the weights sum to one
    torch.testing.assert_close(dlgm.stick_breaking(gamma)[0].sum(-1), torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="gamma in"):
        dlgm.stick_breaking(torch.tensor([1.5]))


def test_weight_entropy_uses_a_sum_of_logs():
    gamma = torch.rand(4, 5, generator=gen(2), dtype=torch.float64)
    gamma[:, -1] = 1.0
    w, _ = dlgm.stick_breaking(gamma)
    log_w = torch.log(gamma) + torch.cat(
        [torch.zeros(4, 1, dtype=gamma.dtype), torch.log1p(-gamma[:, :-1]).cumsum(-1)], -1
    )
    torch.testing.assert_close(log_w.exp(), w)
    torch.testing.assert_close(dlgm.categorical_entropy(log_w), Categorical(probs=w).entropy())
    wrong = torch.log(gamma) + torch.cat(
        [torch.zeros(4, 1, dtype=gamma.dtype), torch.log1p(-gamma[:, :-1]).cumprod(-1)], -1
    )
    assert (dlgm.categorical_entropy(wrong) - Categorical(probs=w).entropy()).abs().max() > 1e-3


def test_mixture_log_prob_matches_torch_distributions():
    log_w, mu, log_s = random_mixture()
    z = torch.randn(7, 3, 2, generator=gen(3), dtype=torch.float64)
    torch.testing.assert_close(
        dlgm.mixture_log_prob(z, log_w, mu, log_s), torch_mixture(log_w, mu, log_s).log_prob(z)
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
    # one component: -log N(mu; mu, 2 sigma^2) is the Gaussian's entropy minus (L/2)(1 - log 2)
    log_w, mu, log_s = random_mixture(batch=(2,), k=1, l=3)
    exact = Independent(Normal(mu[:, 0], log_s[:, 0].exp()), 1).entropy()
    torch.testing.assert_close(
        dlgm.mixture_entropy_lower_bound(log_w, mu, log_s), exact - 1.5 * (1 - math.log(2))
    )


def tiny_model(adaptive=False, k=3, latent=2, seed=0):
    torch.manual_seed(seed)
    return dlgm.MixtureVAE(12, 16, latent, k, adaptive=adaptive, threshold=0.05).double()


def binary(n, d=12, seed=0):
    return (torch.rand(n, d, generator=gen(seed), dtype=torch.float64) < 0.4).double()


@pytest.mark.parametrize("adaptive", [False, True])
def test_elbo_estimate_is_unbiased_and_below_log_px(adaptive):
    model, x = tiny_model(adaptive), binary(3)
    log_px, _ = dlgm.grid_log_marginal(model, x, lim=6.0, n=301)
    with torch.no_grad():
        draws = torch.stack([model.elbo(x, gen(s)) for s in range(400)])
        t = model.terms(x)
    assert (draws.mean(0) <= log_px + 3 * draws.std(0) / 20).all()
    assert (t["entropy_bound"] <= t["entropy_mc"] + 5).all()  # a loose sanity bound; the exact test is above
    assert (t["components"] >= 1).all() and (t["components"] <= 3).all()


@pytest.mark.parametrize("adaptive", [False, True])
def test_importance_sampled_log_marginal_converges_to_quadrature(adaptive):
    model, x = tiny_model(adaptive), binary(3, seed=1)
    log_px, post = dlgm.grid_log_marginal(model, x, lim=6.0, n=301)
    est = model.log_marginal(x, k=20_000, generator=gen(5))
    torch.testing.assert_close(est, log_px, atol=0.02, rtol=0)
    cell = (12.0 / 300) ** 2
    torch.testing.assert_close(
        post.exp().sum((1, 2)) * cell, torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0
    )


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
    protos = binary(2, seed=3)  # two prototypes with 5 % of the pixels flipped: structure to learn
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
    dens = torch.logsumexp(-((zz[..., None, :] - centres) ** 2).sum(-1) / 0.5 + torch.tensor([0.0, -1.0]), -1)
    modes = dlgm.grid_modes(dens, grid, 2)
    assert torch.allclose(modes, centres, atol=0.11)  # the higher bump first
    assert torch.allclose(dlgm.grid_modes(dens, grid, 3)[2], centres[0], atol=0.11)  # repeats


def test_grid_modes_with_a_generator_starts_extra_components_apart_and_on_the_density():
    grid = torch.linspace(-4, 4, 81)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1)
    dens = -((zz - torch.tensor([1.0, -0.5])) ** 2).sum(-1) / 0.5  # one bump
    starts = dlgm.grid_modes(dens, grid, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(starts[0], torch.tensor([1.0, -0.5]), atol=0.11)  # the peak first
    assert len({tuple(s.tolist()) for s in starts}) == 3  # the other two are not copies of it
    assert ((starts - torch.tensor([1.0, -0.5])).norm(dim=-1) < 2.0).all()  # drawn where the mass is
