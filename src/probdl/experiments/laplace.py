"""Chapter 07's experiment: Laplace against variational inference on the UCI regression sets,
on the standard train/test splits (chapter 08 uses its scores too): MAP, Bayes by Backprop, the
linearized GGN Laplace and the last-layer Laplace on the same one-hidden-layer network.
Hyperparameters are chosen on a validation part of each training split, then every model is
refit on the whole training split (inputs and targets standardized on it); test RMSE and test
log-likelihood are reported in the targets' original units."""

from __future__ import annotations

import functools
import math

import torch

from .. import bbb, config, data, mlp, predictive, priors, train
from ..laplace import Laplace
from ..mlp import map_objective

METHODS = ("MAP", "Bayes by Backprop", "Laplace (GGN, linearized)", "Laplace (last layer)")


def gaussian_scores(mean: torch.Tensor, var: torch.Tensor, y: torch.Tensor) -> dict:
    """RMSE and mean log N(y; mean, var) per example of a Gaussian predictive."""
    mean, var, y = mean.double(), var.double(), y.double()
    ll = -0.5 * (math.log(2 * math.pi) + var.log() + (y - mean) ** 2 / var)
    return {"rmse": ((y - mean) ** 2).mean().sqrt().item(), "ll": ll.mean().item()}


def fit_map(x, y, hidden: int, prior_precision: float, epochs: int, lr: float) -> mlp.PlainMLP:
    """The MAP network (weight decay ``prior_precision``, noise scale learned), full-batch Adam."""
    net = mlp.PlainMLP([x.shape[1], hidden, 1], likelihood="gaussian", noise_std=0.5, learn_noise=True)
    objective = functools.partial(map_objective, n_data=len(x), prior_precision=prior_precision)
    train.fit(net, objective, (x, y), epochs=epochs, batch_size=len(x), lr=lr, progress=False)
    return net.eval()


def valid_elbo(net: bbb.BayesianMLP, x, y, n_fit: int, n_samples: int = 20) -> float:
    """The ELBO per example on held-out (x, y): the mean of E_q log p(y | x, w) over ``n_samples``
    weight draws, minus KL(q || p) / ``n_fit`` (the training ELBO's scaling)."""
    net.train()
    g = torch.Generator(x.device).manual_seed(0)  # the same draws at every call: a smooth curve
    with torch.no_grad():
        ll = torch.stack([net.log_likelihood(net(x, g), y).mean() for _ in range(n_samples)]).mean()
        return (ll - net.kl() / n_fit).item()


def fit_bbb(x, y, hidden, prior_sigma, epochs, lr, valid=None, eval_every=100):
    """Bayes by Backprop with a N(0, prior_sigma^2) prior (closed-form KL, noise scale learned),
    full-batch Adam. With ``valid=(x_v, y_v)`` the :func:`valid_elbo` is recorded every
    ``eval_every`` steps. Returns (net, history)."""
    net = bbb.BayesianMLP(
        [x.shape[1], hidden, 1],
        priors.GaussianPrior(prior_sigma),
        likelihood="gaussian",
        noise_std=0.5,
        learn_noise=True,
        init_sigma=0.01,
    )
    objective = functools.partial(bbb.elbo_objective, n_data=len(x), kl="closed")
    kw = {}
    if valid is not None:
        kw = dict(eval_fn=lambda m: {"valid_elbo": valid_elbo(m, *valid, len(x))}, eval_every=eval_every)
    hist = train.fit(net, objective, (x, y), epochs=epochs, batch_size=len(x), lr=lr, progress=False, **kw)
    return net.eval(), hist


def bbb_predictive(net, x, n_samples: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Bayes by Backprop's predictive mean and variance of y (weights' spread plus noise)."""
    mean, var = predictive.predictive(net, x, n_samples)
    return mean, var + net.noise_std.detach() ** 2


def laplace_predictive(la: Laplace, x) -> tuple[torch.Tensor, torch.Tensor]:
    mean, var = la.predictive(x)
    return mean, var + la.sigma_noise**2


def _map_predictive(m):
    return lambda z: (m(z).detach(), m.noise_std.detach() ** 2 * torch.ones(len(z), 1))


def _timed(seconds: dict, name: str, fn):
    with config.timer() as t:
        out = fn()
    seconds[name] = seconds.get(name, 0.0) + t.seconds
    return out


def _select(
    seconds, x_train, y_train, seed, hidden, valid_fraction, prior_grid, map_epochs, bbb_sigma_grid,
    bbb_epochs, lr, eval_every, n_pred_samples,
):  # fmt: skip
    """Step 1 of :func:`evaluate_split`: the prior precision of MAP and the prior scale of Bayes by
    Backprop chosen on a validation part of the training split, and the chosen fit's ELBO curve."""
    fit_idx, valid_idx = data.random_split(len(x_train), (1 - valid_fraction,), seed)
    xf, xv, _, _ = data.standardize(x_train[fit_idx], x_train[valid_idx])
    yf, yv, _, _ = data.standardize(y_train[fit_idx], y_train[valid_idx])

    def valid_ll(pred):
        return gaussian_scores(*pred(xv), yv)["ll"]

    maps = [
        _timed(seconds, "MAP (selection)", lambda d=d: fit_map(xf, yf, hidden, d, map_epochs, lr))
        for d in prior_grid
    ]
    delta = prior_grid[max(range(len(maps)), key=lambda i: valid_ll(_map_predictive(maps[i])))]
    vis = [
        _timed(
            seconds,
            "Bayes by Backprop (selection)",
            lambda s=s: fit_bbb(xf, yf, hidden, s, bbb_epochs, lr, (xv, yv), eval_every),
        )
        for s in bbb_sigma_grid
    ]
    best = max(
        range(len(vis)), key=lambda i: valid_ll(lambda z: bbb_predictive(vis[i][0], z, n_pred_samples))
    )
    sigma, curve = bbb_sigma_grid[best], vis[best][1].values("valid_elbo", evals=True)
    return delta, sigma, curve


def evaluate_split(
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    seed: int,
    hidden: int = 50,
    valid_fraction: float = 0.2,
    prior_grid=(0.1, 1.0, 10.0),
    map_epochs: int = 1000,
    bbb_sigma_grid=(0.5, 1.0),
    bbb_epochs: int = 3000,
    lr: float = 0.01,
    eval_every: int = 100,
    n_pred_samples: int = 100,
) -> dict:
    """MAP, Bayes by Backprop and two Laplace approximations on one train/test split.

    1. A ``valid_fraction`` of the training split validates: MAP networks for each prior
       precision in ``prior_grid`` and Bayes by Backprop for each prior scale in
       ``bbb_sigma_grid`` are fitted on the rest (standardized on it) and the best of
       each by validation log-likelihood is kept; Bayes by Backprop's validation ELBO is
       recorded.
    2. Refit on the whole training split, standardized on it: the MAP network with the
       chosen prior precision, Bayes by Backprop with the chosen prior scale; both
       Laplace approximations (GGN over all weights, linearized; GGN of the last layer)
       start from the refit MAP network and set their prior precision and noise scale
       by the evidence.

    Returns ``{"scores": {method: {"rmse", "ll"}}`` (test, in the targets' original
    units), ``"chosen"``: the validated hyperparameters, ``"laplace"``: each Laplace
    fit's evidence-optimized ``prior_precision`` and ``sigma_noise`` (in standardized
    units), ``"seconds"``: the time of each kind of fit, ``"bbb_valid_elbo"``: the
    chosen Bayes by Backprop's validation ELBO every ``eval_every`` steps, and
    ``"n_refit"``."""
    seconds: dict[str, float] = {}
    torch.manual_seed(1000 + seed)
    delta, sigma, curve = _select(
        seconds, x_train, y_train, seed, hidden, valid_fraction, prior_grid,
        map_epochs, bbb_sigma_grid, bbb_epochs, lr, eval_every, n_pred_samples,
    )  # fmt: skip

    x, xt, _, _ = data.standardize(x_train, x_test)
    y, yt, _, y_std = data.standardize(y_train, y_test)
    net = _timed(seconds, "MAP", lambda: fit_map(x, y, hidden, delta, map_epochs, lr))
    vi, _ = _timed(seconds, "Bayes by Backprop", lambda: fit_bbb(x, y, hidden, sigma, bbb_epochs, lr))
    preds = {"MAP": _map_predictive(net)(xt), "Bayes by Backprop": bbb_predictive(vi, xt, n_pred_samples)}
    found = {}
    for name, subset in (("Laplace (GGN, linearized)", "all"), ("Laplace (last layer)", "last_layer")):

        def fit_laplace(subset=subset):
            la = Laplace(net, "regression", hessian="ggn", subset=subset, prior_precision=delta)
            return la.fit(x, y).optimize_prior_precision(sigma_noise=True)

        la = _timed(seconds, name, fit_laplace)
        found[name] = {"prior_precision": la.prior_precision.item(), "sigma_noise": la.sigma_noise.item()}
        preds[name] = laplace_predictive(la, xt)
    scores = {}
    for name, (m, v) in preds.items():
        s = gaussian_scores(m, v, yt)
        scores[name] = {"rmse": s["rmse"] * y_std.item(), "ll": s["ll"] - math.log(y_std.item())}
    return {
        "scores": scores,
        "chosen": {"map_prior_precision": delta, "bbb_prior_sigma": sigma},
        "laplace": found,
        "seconds": seconds,
        "bbb_valid_elbo": curve,
        "n_refit": len(x),
    }


def run_uci(name: str, splits, root=None, progress: bool | None = None, **kwargs) -> list[dict]:
    """:func:`evaluate_split` on each split in ``splits`` of UCI set ``name``
    (:func:`probdl.data.load_uci`), with the package's text progress bar
    (:func:`probdl.train.progress_bar`; ``progress=None``: unless ``config.quiet()``); keyword
    arguments go to it."""
    splits, out = list(splits), []
    enabled = not config.quiet() if progress is None else progress
    with train.progress_bar(len(splits), name, enabled) as bar:
        for i in splits:
            xtr, ytr, xte, yte = data.load_uci(name, i, root=root)
            out.append(evaluate_split(xtr, ytr, xte, yte, seed=i, **kwargs))
            bar.update()
    return out


def elbo_converged(curve: torch.Tensor, window: int = 5) -> tuple[bool, float, float]:
    """Has a validation-ELBO curve flattened? The change of its mean over the last ``window``
    evaluations from the ``window`` before, against twice the standard error of that difference
    (from the scatter within the windows). Returns (converged, change, threshold)."""
    if len(curve) < 2 * window:
        raise ValueError(f"need at least {2 * window} evaluations, got {len(curve)}")
    last, before = curve[-window:], curve[-2 * window : -window]
    change = (last.mean() - before.mean()).item()
    threshold = 2 * math.sqrt((last.var() + before.var()).item() / window)
    return change <= threshold, change, threshold


def summarize(results: list[dict]) -> dict[str, dict]:
    """Mean and standard error over splits of each method's test scores."""
    table = {}
    for name in results[0]["scores"]:
        row = {}
        for key in ("rmse", "ll"):
            v = torch.tensor([r["scores"][name][key] for r in results], dtype=torch.float64)
            se = v.std() / math.sqrt(len(v)) if len(v) > 1 else torch.tensor(float("nan"))
            row[key], row[key + "_se"] = v.mean().item(), se.item()
        table[name] = row
    return table
