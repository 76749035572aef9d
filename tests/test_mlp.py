"""probdl.mlp: the one base of the book's fully connected networks, its builder and
likelihoods, against direct computations and torch.distributions."""

import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from probdl import bbb, dropout, ensemble, mlp

D64 = torch.float64


def by_hand(weights, x, activation=torch.relu):
    for i, (w, b) in enumerate(weights):
        x = x @ w.T + b
        x = activation(x) if i < len(weights) - 1 else x
    return x


def test_sequential_is_linear_layers_with_the_activation_between():
    net = mlp.sequential([3, 4, 5, 2], nn.Tanh, dropout=0.5)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    net.eval()
    x = torch.randn(6, 3)
    lin = [m for m in net if isinstance(m, nn.Linear)]
    expect = by_hand([(m.weight, m.bias) for m in lin], x, torch.tanh)
    torch.testing.assert_close(net(x), expect)
    with pytest.raises(ValueError, match="at least two positive"):
        mlp.sequential([3])


def test_the_three_networks_share_one_forward_pass():
    torch.manual_seed(0)
    x = torch.randn(7, 3, dtype=D64)
    plain = mlp.PlainMLP([3, 5, 4, 2], likelihood="gaussian").double().eval()
    weights = [(layer.weight, layer.bias) for layer in plain.layers]
    torch.testing.assert_close(plain(x), by_hand(weights, x))
    # Bayes by Backprop with a negligible sigma: its forward pass at w = mu
    bayes = bbb.BayesianMLP(
        [3, 5, 4, 2], likelihood="gaussian", init_sigma=1e-12
    ).double()
    mus = [tuple(mu for mu, _ in layer.params()) for layer in bayes.layers]
    torch.testing.assert_close(bayes(x), by_hand(mus, x), rtol=1e-9, atol=1e-9)
    # variational dropout in eval mode: the means theta
    vd = dropout.VariationalDropoutMLP([3, 5, 4, 2]).double().eval()
    thetas = [(layer.weight, layer.bias) for layer in vd.layers]
    torch.testing.assert_close(vd(x), by_hand(thetas, x))
    for net in (plain, bayes, vd):
        assert isinstance(net, mlp.MLPBase) and net.sizes == [3, 5, 4, 2]


def test_log_likelihood_against_torch_distributions():
    torch.manual_seed(1)
    out, y = torch.randn(6, 2, dtype=D64), torch.randn(6, 2, dtype=D64)
    reg = mlp.PlainMLP([3, 2], likelihood="gaussian", noise_std=0.3).double()
    ref = Normal(out, 0.3).log_prob(y).sum(-1)
    torch.testing.assert_close(reg.log_likelihood(out, y), ref)
    clf = mlp.PlainMLP([3, 4])
    logits, labels = torch.randn(6, 4), torch.randint(0, 4, (6,))
    torch.testing.assert_close(
        clf.log_likelihood(logits, labels), Categorical(logits=logits).log_prob(labels)
    )
    with pytest.raises(ValueError, match="int64"):
        clf.log_likelihood(logits, labels.float())
    with pytest.raises(ValueError, match="'categorical' or 'gaussian'"):
        mlp.PlainMLP([3, 4], likelihood="poisson")


def test_noise_scale_is_learned_or_fixed():
    learned = mlp.PlainMLP(
        [2, 3, 1], likelihood="gaussian", noise_std=0.5, learn_noise=True
    )
    fixed = bbb.BayesianMLP([2, 3, 1], likelihood="gaussian", noise_std=0.5)
    assert torch.isclose(learned.noise_std, torch.tensor(0.5)) and torch.isclose(
        fixed.noise_std, torch.tensor(0.5)
    )
    names = [n for n, _ in learned.named_parameters()]
    layer_names = [n for n, _ in learned.layers.named_parameters(prefix="layers")]
    assert names == ["log_noise", *layer_names]  # the module's own parameter first
    assert "log_noise" not in dict(fixed.named_parameters()) and "log_noise" in dict(
        fixed.named_buffers()
    )
    with pytest.raises(ValueError, match="noise_std"):
        mlp.PlainMLP([2, 1], likelihood="gaussian", noise_std=0.0)


def test_dropout_between_layers_only_in_training():
    net = mlp.PlainMLP([4, 50, 3], dropout=0.5, input_dropout=0.2)
    x = torch.randn(5, 4)
    net.eval()
    torch.testing.assert_close(net(x), net(x))  # deterministic in eval mode
    net.train()
    torch.manual_seed(0)
    a = net(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, net(x))


def test_nll_objective_is_the_mean_negative_log_likelihood():
    net = mlp.PlainMLP([3, 4])
    x, y = torch.randn(8, 3), torch.randint(0, 4, (8,))
    out = mlp.nll_objective(net, x, y)
    torch.testing.assert_close(
        out["loss"], torch.nn.functional.cross_entropy(net(x), y)
    )


def test_dropout_masks_from_a_generator_are_f_dropouts_masks():
    """mlp.dropout with a generator draws the masks F.dropout draws from torch's global
    generator in the same state (so MC dropout's numbers did not move when its masks
    left the global generator), keeps units with probability 1 - p and scales them by
    1 / (1 - p)."""
    h = torch.rand(400, 300) + 0.5
    torch.manual_seed(7)
    ref = torch.nn.functional.dropout(h, 0.3, True)
    got = mlp.dropout(h, 0.3, True, torch.Generator().manual_seed(7))
    assert torch.equal(got, ref)
    kept = got != 0
    torch.testing.assert_close(got[kept], h[kept] / 0.7)
    # the kept share: 120,000 Bernoulli(0.7) draws, standard error 0.0013
    assert abs(kept.float().mean().item() - 0.7) < 4 * (0.7 * 0.3 / h.numel()) ** 0.5
    assert torch.equal(mlp.dropout(h, 0.3, False, torch.Generator()), h)


def test_a_networks_random_choices_come_from_its_generator():
    """model(x, generator=g): the same g state gives the same pass, whatever the global
    generator's state, for the plain network's dropout (hidden and input), Bayes by
    Backprop's weights and variational dropout's noise."""
    nets = [
        mlp.PlainMLP([4, 16, 16, 3], dropout=0.5, input_dropout=0.2),
        bbb.BayesianMLP([4, 16, 3], init_sigma=0.5),
        dropout.VariationalDropoutMLP([4, 16, 3]),
    ]
    x = torch.randn(8, 4)
    for net in nets:
        net.train()
        outs = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            outs.append(net(x, generator=torch.Generator().manual_seed(3)))
        assert torch.equal(*outs), type(net).__name__
        torch.manual_seed(1)
        other = net(x, generator=torch.Generator().manual_seed(4))
        assert not torch.equal(outs[0], other), type(net).__name__


def test_map_objective_is_the_nll_plus_the_priors_weight_decay():
    """-(1/N) log p(theta | D) up to a constant: the mean NLL plus prior_precision / 2
    |theta|^2 / N over the weights and biases, not the learned noise scale; the
    ensemble's old spelling (prior_sigma) gives the same terms."""
    torch.manual_seed(0)
    model = mlp.PlainMLP([2, 5, 1], likelihood="gaussian", learn_noise=True).double()
    with torch.no_grad():
        model.log_noise.fill_(3.0)  # a noise scale in the penalty would show
    x, y = torch.randn(7, 2, dtype=D64), torch.randn(7, 1, dtype=D64)
    terms = mlp.map_objective(model, x, y, n_data=50, prior_precision=4.0)
    w = torch.cat([p.flatten() for p in model.layers.parameters()])
    nll = -Normal(model(x), model.noise_std).log_prob(y).sum(-1).mean()
    torch.testing.assert_close(terms["loss"], nll + 0.5 * 4.0 * (w @ w) / 50)
    old = ensemble.map_objective(model, x, y, n_data=50, prior_sigma=0.5)
    torch.testing.assert_close(old["loss"], terms["loss"])
