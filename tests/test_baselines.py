"""Tests of probdl.baselines, the models NADE is compared with: the mixture of
Bernoullis (against torch.distributions; EM never lowers the likelihood), FVSBN (the
chain rule, normalised), independent pixels, and their errors."""

import pytest
import torch
from binary_support import all_binary, bernoulli_logp, random_binary

from probdl.baselines import (
    FVSBN,
    MixtureOfBernoullis,
    fvsbn_objective,
    independent_nll,
)


def test_mixture_log_prob_matches_torch_distributions():
    from torch.distributions import (
        Bernoulli,
        Categorical,
        Independent,
        MixtureSameFamily,
    )

    torch.manual_seed(0)
    mob = MixtureOfBernoullis(8, 3).double()
    with torch.no_grad():
        mob.logit_mu.normal_()
        mob.logit_pi.normal_()
    ref = MixtureSameFamily(
        Categorical(logits=mob.logit_pi), Independent(Bernoulli(logits=mob.logit_mu), 1)
    )
    x = all_binary(8)
    assert torch.allclose(mob.log_prob(x), ref.log_prob(x), atol=1e-10)
    assert torch.logsumexp(mob.log_prob(x), 0).item() == pytest.approx(0.0, abs=1e-10)


def test_em_never_lowers_the_likelihood():
    x = random_binary(300, 12, dtype=torch.float32)
    x[:150, :6] = 1 - x[:150, 6:]
    mob = MixtureOfBernoullis(12, 4)
    hist = mob.fit_em(
        x, iterations=15, prior=0.0, generator=torch.Generator().manual_seed(0)
    )
    nll = [h["train_nll"] for h in hist]
    assert all(b <= a + 1e-4 for a, b in zip(nll, nll[1:])), nll
    assert nll[-1] < nll[0]


def test_fvsbn_log_prob_is_the_chain_rule_and_normalised():
    torch.manual_seed(0)
    f = FVSBN(6).double()
    with torch.no_grad():
        f.W.normal_()
        f.b.normal_()
    x = all_binary(6)
    lp = f.log_prob(x)
    assert torch.logsumexp(lp, 0).item() == pytest.approx(0.0, abs=1e-10)
    Wm = torch.tril(f.W, -1)
    for xi, l in zip(x[:10], lp[:10]):
        ref = sum(
            bernoulli_logp(torch.sigmoid(f.b[d] + Wm[d] @ xi), xi[d]) for d in range(6)
        )
        assert l.item() == pytest.approx(ref.item(), abs=1e-10)
    terms = fvsbn_objective(f, x, l2=0.1)
    assert terms["loss"].item() > terms["nll"].item()
    s = f.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, 6)


def test_baseline_errors():
    with pytest.raises(ValueError, match="0 or 1"):
        FVSBN(4).log_prob(torch.full((1, 4), 0.3))
    with pytest.raises(ValueError, match="4 visible units"):
        MixtureOfBernoullis(4, 2).log_prob(torch.zeros(1, 5))


def test_independent_nll_matches_torch_distributions():
    from torch.distributions import Bernoulli, Independent

    x_train = random_binary(50, 12, seed=3)
    x_test = random_binary(20, 12, seed=4)
    m = x_train.mean(0).clamp(1e-2, 1 - 1e-2)
    ref = -Independent(Bernoulli(probs=m), 1).log_prob(x_test).mean().item()
    assert independent_nll(x_train, x_test) == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ValueError, match="12 visible units"):
        independent_nll(x_train, x_test[:, :5])
