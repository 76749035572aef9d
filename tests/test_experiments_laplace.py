"""Smoke and unit tests of probdl.experiments.laplace (the UCI comparison of chapter
07), and of the alias it keeps at its old home."""

import math

import pytest
import torch

from probdl import config, data
from probdl.experiments import laplace as ex

TINY = dict(
    hidden=8,
    prior_grid=(0.5, 2.0),
    map_epochs=30,
    bbb_sigma_grid=(1.0,),
    bbb_epochs=40,
    eval_every=4,
)


def test_evaluate_split_reports_scores_choices_evidence_and_times():
    xtr, ytr, xte, yte = data.load_uci("yacht", 0)
    out = ex.evaluate_split(xtr, ytr, xte, yte, seed=0, **TINY)
    assert set(out["scores"]) == set(ex.METHODS)
    assert out["n_refit"] == len(xtr) == 277  # the refit uses the whole training split
    assert out["chosen"]["map_prior_precision"] in TINY["prior_grid"]
    assert out["chosen"]["bbb_prior_sigma"] == 1.0
    assert len(out["bbb_valid_elbo"]) == 10
    for v in out["laplace"].values():
        assert v["prior_precision"] > 0 and v["sigma_noise"] > 0
    assert (
        all(t > 0 for t in out["seconds"].values())
        and "Bayes by Backprop" in out["seconds"]
    )
    # the linearized predictive's mean is the MAP network's output
    assert out["scores"]["Laplace (GGN, linearized)"]["rmse"] == pytest.approx(
        out["scores"]["MAP"]["rmse"], rel=1e-5
    )


def test_scores_are_in_the_targets_original_units():
    xtr, ytr, xte, yte = data.load_uci("yacht", 1)
    a = ex.evaluate_split(xtr, ytr, xte, yte, seed=1, **TINY)["scores"]
    b = ex.evaluate_split(xtr, 1000 * ytr + 7, xte, 1000 * yte + 7, seed=1, **TINY)[
        "scores"
    ]
    for m in ("MAP", "Laplace (GGN, linearized)", "Laplace (last layer)"):
        assert b[m]["rmse"] == pytest.approx(1000 * a[m]["rmse"], rel=1e-3)
        assert b[m]["ll"] == pytest.approx(a[m]["ll"] - math.log(1000), abs=1e-3)


def test_gaussian_scores_against_torch_distributions():
    g = torch.Generator().manual_seed(0)
    m, v, y = (
        torch.randn(50, 1, generator=g),
        torch.rand(50, 1, generator=g) + 0.1,
        torch.randn(50, 1, generator=g),
    )
    s = ex.gaussian_scores(m, v, y)
    ref = (
        torch.distributions.Normal(m.double(), v.double().sqrt())
        .log_prob(y.double())
        .mean()
        .item()
    )
    assert s["ll"] == pytest.approx(ref, rel=1e-12)
    assert s["rmse"] == pytest.approx(((m - y) ** 2).mean().sqrt().item(), rel=1e-6)


def test_elbo_converged_and_summarize():
    flat = torch.tensor([-5.0, -2.0] + [-1.0, -1.01] * 6)
    rising = torch.linspace(-3, -1, 14)
    assert ex.elbo_converged(flat)[0] and not ex.elbo_converged(rising)[0]
    with pytest.raises(ValueError, match="at least 10"):
        ex.elbo_converged(rising[:5])
    res = [{"scores": {"A": {"rmse": r, "ll": -r}}} for r in (1.0, 2.0, 3.0)]
    row = ex.summarize(res)["A"]
    assert row["rmse"] == pytest.approx(2.0) and row["rmse_se"] == pytest.approx(
        1 / math.sqrt(3)
    )


def test_paper_sizes_build():
    P = config.sizes("laplace", "paper")
    assert P["uci_splits"] == data.uci_n_splits("yacht") == 20
    xtr, ytr, xte, yte = data.load_uci("yacht", 19)
    kw = dict(
        hidden=P["uci_hidden"],
        prior_grid=P["uci_prior_grid"][:1],
        bbb_sigma_grid=P["uci_bbb_sigma_grid"][:1],
    )
    out = ex.evaluate_split(
        xtr, ytr, xte, yte, seed=19, map_epochs=2, bbb_epochs=20, eval_every=2, **kw
    )
    assert set(out["scores"]) == set(ex.METHODS)


def test_predictives_of_y_include_the_noise():
    from probdl import laplace

    xtr, ytr, _, _ = data.load_uci("yacht", 2)
    x, _, _ = data.standardize(xtr)
    y, _, _ = data.standardize(ytr)
    net = ex.fit_map(x, y, 8, 1.0, 30, 0.01)
    la = laplace.Laplace(net, "regression", hessian="ggn", sigma_noise=0.3).fit(x, y)
    _, v = ex.laplace_predictive(la, x[:5])
    torch.testing.assert_close(v, la.predictive(x[:5])[1] + 0.09)
    vi, _ = ex.fit_bbb(x, y, 8, 1.0, 5, 0.01)
    torch.manual_seed(0)
    _, v_vi = ex.bbb_predictive(vi, x[:5], 200)
    torch.manual_seed(0)
    _, v_f = ex.predictive.predictive(vi, x[:5], 200)
    torch.testing.assert_close(v_vi, v_f + vi.noise_std.detach() ** 2)


def test_the_old_home_is_an_alias_for_one_release():
    from probdl import laplace_experiments

    assert laplace_experiments is ex
    assert laplace_experiments.evaluate_split is ex.evaluate_split


def test_valid_elbo_draws_from_its_own_stream():
    """The same 20 weight draws at every call (a smooth validation curve), made from a
    generator of its own: torch's global generator is neither read nor moved."""
    from probdl import bbb

    torch.manual_seed(3)
    net = bbb.BayesianMLP([3, 20, 1], likelihood="gaussian", init_sigma=0.1)
    x, y = torch.randn(50, 3), torch.randn(50, 1)
    state = torch.get_rng_state()
    first = ex.valid_elbo(net, x, y, n_fit=100)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(123)
    assert ex.valid_elbo(net, x, y, n_fit=100) == first
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        ll = torch.stack([net.log_likelihood(net(x, g), y).mean() for _ in range(20)])
    assert first == pytest.approx((ll.mean() - net.kl() / 100).item(), rel=1e-6)


def test_run_uci_evaluates_each_split_with_a_text_progress_bar(capsys):
    """One result per split, each seeded by its split; the bar is the package's text bar
    on stderr (no notebook widget), and nothing is printed with progress=False."""
    out = ex.run_uci("yacht", [0, 1], progress=True, **TINY)
    assert len(out) == 2 and out[0]["scores"] != out[1]["scores"]
    err = capsys.readouterr().err
    assert "yacht" in err and "2/2" in err
    again = ex.run_uci("yacht", [1], progress=False, **TINY)
    assert capsys.readouterr().err == ""
    assert again[0]["scores"] == out[1]["scores"]
