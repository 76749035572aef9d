"""Tests of probdl.gan: the Parzen estimate against torch.distributions, the Fréchet
distance against closed forms and scipy's sqrtm, the optimal discriminator and the
value/JSD identity by quadrature, the players' losses against their formulas, mode
coverage, training, errors."""

import math

import numpy as np
import pytest
import torch
from scipy import linalg
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from probdl import gan, gan_eval


def _kde(samples, sigma):
    n = len(samples)
    comp = Independent(
        Normal(samples.double(), torch.full_like(samples.double(), sigma)), 1
    )
    return MixtureSameFamily(
        Categorical(torch.full((n,), 1.0 / n, dtype=torch.float64)), comp
    )


@pytest.mark.parametrize("batch_size", [1, 7, 100])
def test_parzen_matches_mixture_log_prob(batch_size):
    g = torch.Generator().manual_seed(0)
    samples, x = torch.rand(50, 5, generator=g), torch.rand(23, 5, generator=g)
    expected = _kde(samples, 0.3).log_prob(x.double()).mean()
    got = gan_eval.parzen_log_likelihood(samples, x, 0.3, batch_size=batch_size)
    assert torch.allclose(got, expected, atol=1e-10), (got, expected)


def test_parzen_is_stable_far_from_the_samples():
    samples = torch.zeros(3, 784)
    x = torch.ones(2, 784)  # squared distance 784: exp(-784 / (2 * 0.05^2)) underflows
    got = gan_eval.parzen_log_likelihood(samples, x, 0.05)
    expected = -784 / (2 * 0.05**2) - 392 * math.log(2 * math.pi * 0.05**2)
    assert math.isfinite(got.item()) and got.item() == pytest.approx(expected, rel=1e-9)


def test_parzen_sigma_selection_picks_the_true_bandwidth():
    g = torch.Generator().manual_seed(1)
    samples = 0.2 * torch.randn(4000, 1, generator=g)  # a KDE of N(0, 0.2^2) ...
    valid = 0.2 * torch.randn(2000, 1, generator=g)
    sigmas = [0.005, 0.02, 0.05, 1.0, 3.0]
    best, scores = gan_eval.select_parzen_sigma(samples, valid, sigmas)
    assert best in (0.02, 0.05), (
        scores
    )  # a small bandwidth wins; too small or too large lose
    for s in sigmas:
        assert scores[s] == pytest.approx(
            _kde(samples, s).log_prob(valid.double()).mean().item(), abs=1e-8
        )


def test_parzen_errors():
    with pytest.raises(ValueError, match="same d"):
        gan_eval.parzen_log_likelihood(torch.zeros(3, 2), torch.zeros(3, 4), 0.1)
    with pytest.raises(ValueError, match="every one positive"):
        gan_eval.parzen_log_likelihood(torch.zeros(3, 2), torch.zeros(3, 2), 0.0)
    with pytest.raises(ValueError, match="at least one bandwidth"):
        gan_eval.select_parzen_sigma(torch.zeros(3, 2), torch.zeros(3, 2), [])


def _gaussian_samples(mean, cov, n, seed):
    """n points whose sample mean and unbiased covariance are exactly ``mean`` and
    ``cov``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = (
        z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    )  # whitened, ddof = 1
    return z @ np.linalg.cholesky(cov).T + mean


def _random_cov(d, seed):
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_closed_form_diagonal():
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    a = _gaussian_samples(m1, np.diag(v1), 200, 0)
    b = _gaussian_samples(m2, np.diag(v2), 300, 1)
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert gan_eval.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_frechet_matches_scipy_sqrtm_as_pytorch_fid():
    d = 6
    m1, m2 = np.arange(d, dtype=float), np.ones(d)
    c1, c2 = _random_cov(d, 2), _random_cov(d, 3)
    a, b = _gaussian_samples(m1, c1, 100, 4), _gaussian_samples(m2, c2, 50, 5)
    covmean = linalg.sqrtm(c1 @ c2).real  # pytorch-fid's computation
    expected = (
        ((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean)
    )
    got = gan_eval.frechet_distance(
        torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float64)
    )
    assert got == pytest.approx(expected, rel=1e-5)


def test_frechet_uses_unbiased_covariance_and_is_a_distance():
    a = np.array([[0.0], [2.0]])  # mean 1, unbiased variance 2 (biased: 1)
    b = np.array([[1.0], [1.0], [1.0]])  # mean 1, variance 0
    assert gan_eval.frechet_distance(a, b) == pytest.approx(2.0)
    x = np.random.default_rng(0).standard_normal((40, 3))
    assert abs(gan_eval.frechet_distance(x, x)) < 1e-8
    y = x + np.array([3.0, 0.0, 4.0])
    assert gan_eval.frechet_distance(x, y) == pytest.approx(25.0, rel=1e-8)
    assert gan_eval.frechet_distance(x, y) == pytest.approx(
        gan_eval.frechet_distance(y, x), rel=1e-8
    )


def test_frechet_errors():
    with pytest.raises(ValueError, match="n >= 2"):
        gan_eval.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="differ in dimension"):
        gan_eval.frechet_distance(np.zeros((4, 3)), np.zeros((5, 2)))


def _two_densities():
    grid = torch.linspace(-12, 12, 20001, dtype=torch.float64)
    p_data = Normal(torch.tensor(1.0, dtype=torch.float64), 1.0)
    p_g = Normal(torch.tensor(-0.5, dtype=torch.float64), 2.0)
    return grid, p_data.log_prob(grid), p_g.log_prob(grid)


def test_optimal_discriminator_maximises_the_value():
    grid, lp, lg = _two_densities()
    d_star = gan_eval.optimal_discriminator(lp, lg)
    assert torch.allclose(d_star, lp.exp() / (lp.exp() + lg.exp()))
    v_star = gan_eval.value_by_quadrature(d_star, lp, lg, grid)
    for bump in (0.05, -0.05):  # any other D is worse
        other = (d_star + bump * torch.sin(grid)).clamp(1e-6, 1 - 1e-6)
        assert gan_eval.value_by_quadrature(other, lp, lg, grid) < v_star
    jsd = gan_eval.jensen_shannon(lp, lg, grid)
    assert v_star.item() == pytest.approx(-math.log(4) + 2 * jsd.item(), abs=1e-7)


def test_jensen_shannon_limits():
    grid, lp, lg = _two_densities()
    assert gan_eval.jensen_shannon(lp, lp, grid).item() == pytest.approx(0.0, abs=1e-10)
    far = Normal(torch.tensor(40.0, dtype=torch.float64), 1.0)
    wide = torch.linspace(-12, 60, 40001, dtype=torch.float64)
    got = gan_eval.jensen_shannon(
        Normal(torch.tensor(0.0, dtype=torch.float64), 1.0).log_prob(wide),
        far.log_prob(wide),
        wide,
    )
    assert got.item() == pytest.approx(math.log(2), abs=1e-6)
    # the value at D* is then -log 4 + 2 JSD = 0 when the supports do not overlap, -log
    # 4 at p_g = p_data
    assert gan_eval.value_by_quadrature(
        torch.full_like(grid, 0.5), lp, lp, grid
    ).item() == pytest.approx(-math.log(4), abs=1e-6)


def _toy_gan(seed=0):
    torch.manual_seed(seed)
    return gan.GAN(gan.Generator([2, 16, 1]), gan.Discriminator([1, 16]))


def test_losses_match_their_formulas():
    model = _toy_gan()
    x = torch.randn(32, 1)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    terms = gan.discriminator_objective(model, x, generator=g1)
    fake = model.generator(model.noise(32, g2))
    d_real, d_fake = (
        torch.sigmoid(model.discriminator(x)),
        torch.sigmoid(model.discriminator(fake)),
    )
    value = torch.log(d_real).mean() + torch.log(1 - d_fake).mean()
    assert torch.allclose(terms["loss"], -value, atol=1e-6)
    for saturating in (True, False):
        g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
        loss = gan.generator_objective(model, 16, saturating, generator=g1)["loss"]
        d = torch.sigmoid(model.discriminator(model.generator(model.noise(16, g2))))
        expected = torch.log(1 - d).mean() if saturating else -torch.log(d).mean()
        assert torch.allclose(loss, expected, atol=1e-6)


def test_discriminator_step_does_not_move_the_generator():
    model = _toy_gan()
    before = [p.clone() for p in model.generator.parameters()]
    gan.discriminator_objective(model, torch.randn(8, 1))["loss"].backward()
    assert all(p.grad is None for p in model.generator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))


def test_saturating_gradient_vanishes_when_d_rejects():
    model = _toy_gan()
    with torch.no_grad():  # a discriminator that is sure every generated point is fake
        model.discriminator.net[-1].bias.fill_(-12.0)
    g = torch.Generator().manual_seed(0)
    sat = gan.generator_grad_norm(model, 256, True, generator=g)
    g = torch.Generator().manual_seed(0)
    non = gan.generator_grad_norm(model, 256, False, generator=g)
    assert sat < 1e-3 * non, (sat, non)  # d/dl log(1 - sigmoid(l)) = -sigmoid(l) ~ 6e-6


def test_mode_coverage():
    centers = gan_eval.ring_centers(8, 2.0)
    g = torch.Generator().manual_seed(0)
    x = gan_eval.ring_of_gaussians(4000, std=0.05, generator=g)
    assert torch.allclose(centers.norm(dim=1), torch.full((8,), 2.0))
    full = gan_eval.mode_coverage(x, centers, 0.05)
    assert (
        full["modes_hit"] == 1.0 and full["near"] > 0.98
    )  # 3-sigma in 2-D holds 98.9%
    collapsed = gan_eval.mode_coverage(centers[[0, 3]].repeat(100, 1), centers, 0.05)
    assert collapsed["modes_hit"] == 0.25 and collapsed["near"] == 1.0
    assert gan_eval.mode_coverage(torch.zeros(10, 2), centers, 0.05)["near"] == 0.0


def test_training_on_one_dimension_moves_the_samples():
    torch.manual_seed(0)
    model = gan.GAN(gan.Generator([4, 32, 32, 1]), gan.Discriminator([1, 32, 32]))
    g = torch.Generator().manual_seed(0)
    x = 3.0 + 0.5 * torch.randn(2000, 1, generator=g)
    hist = gan.train_gan(
        model, x, epochs=15, batch_size=100, k=1, lr_d=1e-3, lr_g=1e-3, generator=g
    )
    assert len(hist) == 300 and {"d_loss", "g_loss", "d_real", "d_fake"} <= set(
        hist.names()
    )
    s = model.sample(4000, generator=g)
    assert abs(s.mean().item() - 3.0) < 0.3 and 0.2 < s.std().item() < 1.0, (
        s.mean(),
        s.std(),
    )
    k2 = gan.train_gan(_toy_gan(), torch.randn(200, 1), epochs=2, k=2, batch_size=50)
    assert len(k2) == 4  # 8 discriminator steps, one generator step per two


def test_mlp_features_and_errors():
    from probdl.mlp import PlainMLP

    mlp = PlainMLP([5, 7, 3])
    x = torch.randn(4, 5)
    assert torch.allclose(gan_eval.mlp_features(mlp, x), torch.relu(mlp.layers[0](x)))
    with pytest.raises(ValueError, match="shape"):
        gan.Generator([2, 3, 1])(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="inputs"):
        gan.Discriminator([2, 3])(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="discriminator reads"):
        gan.GAN(gan.Generator([2, 3, 1]), gan.Discriminator([2, 3]))
    with pytest.raises(ValueError, match="k"):
        gan.train_gan(_toy_gan(), torch.zeros(10, 1), epochs=1, k=0)
    u = gan.GAN(
        gan.Generator([2, 3, 1]), gan.Discriminator([1, 3]), noise="uniform"
    ).noise(1000)
    assert u.min() >= -1 and u.max() <= 1 and abs(u.mean()) < 0.1


def test_sample_uses_eval_mode_and_restores_it():
    torch.manual_seed(0)
    g = gan.Generator([2, 8, 1])
    g.net.insert(
        1, torch.nn.Dropout(0.5)
    )  # a generator whose eval and train modes differ
    model = gan.GAN(g, gan.Discriminator([1, 4]))
    z = model.noise(64, torch.Generator().manual_seed(0))
    model.train()
    s = model.sample(64, generator=torch.Generator().manual_seed(0))
    assert model.generator.training, (
        "sample() must restore the generator's training mode"
    )
    model.eval()
    assert torch.allclose(s, model.generator(z)), (
        "sample() must draw with the generator in eval mode"
    )
    assert not model.generator.training
