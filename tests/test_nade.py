"""NADE: Algorithm 1 with a hand-written backward, against its reference and autograd
(the two baselines of Table 1 are tested in test_baselines.py)."""

import pytest
import torch
from binary_support import all_binary, random_binary

from probdl.nade import (
    NADE,
    LeakyNADE,
    NADELogProb,
    evaluate_nll,
    log_prob_reference,
    nade_objective,
    nade_sweep,
)


def random_nade(d, h, seed=0, dtype=torch.float64, block=16):
    torch.manual_seed(seed)
    m = NADE(d, h, block=block).to(dtype)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.7)
    return m


def test_normalised_over_all_binary_vectors():
    m = random_nade(10, 6)
    x = all_binary(10)
    with torch.no_grad():
        for logp in (m.log_prob(x), log_prob_reference(m, x)):
            assert torch.exp(torch.logsumexp(logp, 0)).item() == pytest.approx(
                1.0, abs=1e-10
            )


def test_reference_is_the_chain_rule_of_the_conditionals():
    """Algorithm 1 (the reference) against eq. h_d = sigmoid(c + W[:, :d] x[:d]) per
    example."""
    m = random_nade(9, 5)
    x = random_binary(4, 9)
    with torch.no_grad():
        ref = log_prob_reference(m, x)
        for xi, r in zip(x, ref):
            total = 0.0
            for d in range(9):
                p = torch.sigmoid(
                    m.b[d] + m.V[d] @ torch.sigmoid(m.c + m.W[:, :d] @ xi[:d])
                )
                total += (torch.log(p) if xi[d] == 1 else torch.log1p(-p)).item()
            assert r.item() == pytest.approx(total, abs=1e-10)


@pytest.mark.parametrize("d,block", [(10, 16), (10, 4), (13, 16), (24, 8), (24, 1)])
def test_fast_log_prob_equals_reference(d, block):
    m = random_nade(d, 7, block=block)
    x = random_binary(6, d)
    with torch.no_grad():
        assert torch.allclose(m.log_prob(x), log_prob_reference(m, x), atol=1e-10)


def test_leaky_nade_is_not_normalised():
    """The deliberately wrong model: h_d sees x_d, and p no longer sums to one."""
    m = random_nade(10, 6, block=4)
    leaky = LeakyNADE(10, 6, block=4).double()
    leaky.load_state_dict(m.state_dict())
    x = all_binary(10)
    # the leak written plainly: a (batch, D, H) cumulative sum that includes W[:, d] x_d
    a = leaky.c + torch.cumsum(x[:, :, None] * leaky.W.t(), 1)
    logits = (torch.sigmoid(a) * leaky.V).sum(-1) + leaky.b
    ref = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, x, reduction="none"
    ).sum(-1)
    weights = torch.randn(len(x), dtype=torch.float64)
    (ref * weights).sum().backward()
    ref_grads = [p.grad.clone() for p in leaky.parameters()]
    leaky.zero_grad()
    logp = leaky.log_prob(x)
    (logp * weights).sum().backward()
    assert torch.allclose(logp, ref, atol=1e-10)
    for g, r in zip((p.grad for p in leaky.parameters()), ref_grads):
        assert torch.allclose(g, r, atol=1e-9)
    total = torch.logsumexp(logp.detach(), 0).exp().item()
    assert abs(total - 1) > 1e-2, total
    with pytest.raises(NotImplementedError):
        leaky.sample(3)


def test_conditionals_equal_loop_probabilities():
    m = random_nade(12, 5)
    x = random_binary(4, 12)
    probs = m.conditionals(x)
    with torch.no_grad():
        for i, xi in enumerate(x):
            for d in range(12):
                h = torch.sigmoid(m.c + m.W[:, :d] @ xi[:d])
                assert probs[i, d].item() == pytest.approx(
                    torch.sigmoid(m.b[d] + m.V[d] @ h).item(), abs=1e-12
                )


def test_float32_mnist_size_matches_float64():
    m = random_nade(784, 50, seed=3, dtype=torch.float32)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(0.1)
    x = random_binary(8, 784, dtype=torch.float32)
    m64 = random_nade(784, 50, seed=3)
    m64.load_state_dict({k: v.double() for k, v in m.state_dict().items()})
    assert torch.allclose(m.log_prob(x).double(), m64.log_prob(x.double()), rtol=1e-5)


def _reference_grads(m, x, weights):
    """log p and the gradients of sum_b weights_b log p(x_b) by autograd through the
    reference."""
    ref = NADE(m.n_visible, m.n_hidden).to(m.W.dtype)
    ref.load_state_dict(m.state_dict())
    logp = log_prob_reference(ref, x)
    (logp * weights).sum().backward()
    return logp.detach(), [p.grad for p in (ref.W, ref.c, ref.V, ref.b)]


@pytest.mark.parametrize("uniform", [True, False])
def test_gradients_equal_autograd_through_reference(uniform):
    m = random_nade(20, 9, block=8)
    x = random_binary(7, 20)
    weights = (
        torch.full((7,), -1 / 7, dtype=torch.float64)
        if uniform
        else torch.randn(7, dtype=torch.float64)
    )
    ref_logp, ref = _reference_grads(m, x, weights)
    m.zero_grad()
    logp = m.log_prob(x)
    (logp * weights).sum().backward()
    assert torch.allclose(logp.detach(), ref_logp, atol=1e-10)
    for name, p, g in zip("WcVb", (m.W, m.c, m.V, m.b), ref):
        assert torch.allclose(p.grad, g, atol=1e-10), f"gradient of {name} differs"


def test_gradcheck_of_the_function():
    m = random_nade(9, 4, block=3)
    x = random_binary(3, 9)
    params = [p.detach().clone().requires_grad_() for p in (m.W, m.c, m.V, m.b)]
    # a weighting that is not uniform exercises the second, exact sweep
    assert torch.autograd.gradcheck(
        lambda *ps: (
            NADELogProb.apply(x, *ps, 3) * torch.arange(1.0, 4.0, dtype=torch.float64)
        ),
        params,
    )
    assert torch.autograd.gradcheck(
        lambda *ps: NADELogProb.apply(x, *ps, 3).sum(), params
    )


def test_sample_frequencies_match_probabilities():
    m = random_nade(5, 4, seed=2)
    g = torch.Generator().manual_seed(0)
    n = 40_000
    xs = m.sample(n, generator=g)
    codes = (xs * (2 ** torch.arange(4, -1, -1, dtype=torch.float64))).sum(1).long()
    freq = torch.bincount(codes, minlength=32).double() / n
    probs = torch.exp(m.log_prob(all_binary(5))).detach()
    tv = 0.5 * (freq - probs).abs().sum().item()
    assert tv < 0.02, f"total variation {tv:.4f} between sample frequencies and p(x)"
    # chi-square statistic with 31 degrees of freedom: mean 31, sd ~ 8
    expected = probs * n
    chi2 = ((freq * n - expected) ** 2 / expected).sum().item()
    assert chi2 < 70, f"chi-square {chi2:.1f}"


def test_sample_probs_and_given_prefix():
    m = random_nade(12, 5)
    g = torch.Generator().manual_seed(0)
    xs, probs = m.sample(6, generator=g, return_probs=True)
    assert xs.shape == probs.shape == (6, 12)
    assert set(xs.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(
        probs, m.conditionals(xs), atol=1e-12
    )  # the probs used are p(x_d | sampled x_<d)
    given = random_binary(6, 5)
    xc = m.sample(generator=g, given=given)
    assert torch.equal(xc[:, :5], given)
    with pytest.raises(ValueError, match="0/1"):
        m.sample(given=given * 0.5)
    with pytest.raises(ValueError, match="positive"):
        m.sample(0)


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.full((2, 10), 0.5), "0 or 1"),
        (torch.zeros(2, 11), "10 visible units"),
        (torch.zeros(10), "single example"),
        (torch.zeros(2, 2, 5), "2-D"),
    ],
)
def test_clear_errors(bad, match):
    m = NADE(10, 3)
    with pytest.raises(ValueError, match=match):
        m.log_prob(bad)


def test_training_lowers_the_nll():
    from probdl.train import fit

    torch.manual_seed(0)
    x = random_binary(200, 16, dtype=torch.float32)
    x[:, 8:] = x[:, :8]  # strong dependencies to learn
    m = NADE(16, 8)
    before = evaluate_nll(m, x)
    fit(m, nade_objective, x, epochs=30, batch_size=50, lr=0.03, progress=False)
    after = evaluate_nll(m, x)
    assert after < before - 3, (before, after)
    assert evaluate_nll(m, x) == pytest.approx(-m.log_prob(x).mean().item(), rel=1e-6)


def test_init_bias_gives_independent_fit():
    x = random_binary(100, 10, dtype=torch.float32)
    m = NADE(10, 3, init_std=0.0).init_bias(x)
    m_ = x.mean(0).clamp(1e-2, 1 - 1e-2)
    indep = (x * torch.log(m_) + (1 - x) * torch.log1p(-m_)).sum(1)
    assert torch.allclose(m.log_prob(x), indep, atol=1e-4)


# --- baselines ------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_large_batches_are_swept_in_parts(workers):
    m = random_nade(20, 6, block=4)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(0.3)
    x = random_binary(300, 20)  # more than one part of 128
    weights = torch.randn(300, dtype=torch.float64)
    ref_logp, ref = _reference_grads(m, x, weights)
    W, c, V, b = (p.detach() for p in (m.W, m.c, m.V, m.b))
    logp, grads = nade_sweep(x, W, c, V, b, weights=weights, block=4, workers=workers)
    assert torch.allclose(logp, ref_logp, atol=1e-10)
    for name, g, r in zip("WcVb", grads, ref):
        assert torch.allclose(g, r, atol=1e-9), f"gradient of {name} differs"


def test_parallel_sweep_leaves_torch_threads_alone():
    m = random_nade(20, 6, block=4)
    x = random_binary(64, 20)
    W, c, V, b = (p.detach() for p in (m.W, m.c, m.V, m.b))
    before = torch.get_num_threads()
    one, _ = nade_sweep(x, W, c, V, b, workers=1)
    two, _ = nade_sweep(x, W, c, V, b, workers=2)
    assert torch.get_num_threads() == before
    assert torch.allclose(one, two, atol=1e-12)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_evaluate_nll_restores_the_mode_also_after_an_error(mode):
    m = NADE(10, 3).train(mode == "train")
    with pytest.raises(ValueError, match="0 or 1"):
        evaluate_nll(m, torch.full((4, 10), 0.5))
    assert m.training == (mode == "train")
    evaluate_nll(m, random_binary(4, 10, dtype=torch.float32))
    assert m.training == (mode == "train")
