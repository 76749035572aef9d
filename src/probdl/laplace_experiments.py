"""Laplace against variational inference on a small regression table (the comparison of the
Laplace chapter): one seeded split, MAP, Bayes by Backprop and Laplace on the same one-hidden-layer
network, hyperparameters chosen on a validation part of the training split, scored by test RMSE
and test log-likelihood in the targets' original units."""

from __future__ import annotations

import functools
import math

import torch

from . import bbb, data, mlp, predictive, priors, train
from .laplace import Laplace, map_objective

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


def fit_bbb(x, y, hidden: int, prior_sigma: float, epochs: int, lr: float) -> bbb.BayesianMLP:
    """Bayes by Backprop with a N(0, prior_sigma^2) prior (closed-form KL, noise scale learned)."""
    net = bbb.BayesianMLP(
        [x.shape[1], hidden, 1],
        priors.GaussianPrior(prior_sigma),
        likelihood="gaussian",
        noise_std=0.5,
        learn_noise=True,
        init_sigma=0.01,
    )
    objective = functools.partial(bbb.elbo_objective, n_data=len(x), kl="closed")
    train.fit(net, objective, (x, y), epochs=epochs, batch_size=len(x), lr=lr, progress=False)
    return net.eval()


def bbb_predictive(net, x, n_samples: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Bayes by Backprop's predictive mean and variance of y (weights' spread plus noise)."""
    mean, var = predictive.predictive(net, x, n_samples)
    return mean, var + net.noise_std.detach() ** 2


def laplace_predictive(la: Laplace, x) -> tuple[torch.Tensor, torch.Tensor]:
    mean, var = la.predictive(x)
    return mean, var + la.sigma_noise**2


def regression_split(x, y, seed: int, S: dict) -> dict[str, dict]:
    """One seeded random split of (x, y): 90 % for training, 10 % for testing; see
    :func:`evaluate_split`."""
    train_idx, test_idx = data.random_split(len(x), (0.9,), seed)
    return evaluate_split(x[train_idx], y[train_idx], x[test_idx], y[test_idx], seed, S)


def evaluate_split(x_train, y_train, x_test, y_test, seed: int, S: dict) -> dict[str, dict]:
    """MAP, Bayes by Backprop and Laplace on one split. A ``valid_fraction`` of the training part
    chooses the hyperparameters (MAP's prior precision from ``uci_prior_grid``, Bayes by
    Backprop's prior scale from ``uci_bbb_sigma_grid``) by validation log-likelihood; Laplace
    starts from the chosen MAP network and sets its prior precision and noise scale by the
    evidence on the fitting part. Inputs and targets are standardized by the fitting part.
    Returns {method: {"rmse", "ll"}} on the test part, in the targets' units."""
    fit_idx, valid_idx = data.random_split(len(x_train), (1 - S["valid_fraction"],), seed)
    xf, xv, xt, _, _ = data.standardize(x_train[fit_idx], x_train[valid_idx], x_test)
    yf, yv, yt, _, y_std = data.standardize(y_train[fit_idx], y_train[valid_idx], y_test)
    h = S["uci_hidden"]

    def valid_ll(pred):
        return gaussian_scores(*pred(xv), yv)["ll"]

    def map_pred(m):
        return lambda z: (m(z).detach(), m.noise_std.detach() ** 2 * torch.ones(len(z), 1))

    torch.manual_seed(1000 + seed)
    maps = [fit_map(xf, yf, h, d, S["uci_epochs"], S["uci_lr"]) for d in S["uci_prior_grid"]]
    best = max(range(len(maps)), key=lambda i: valid_ll(map_pred(maps[i])))
    net, delta = maps[best], S["uci_prior_grid"][best]
    bbbs = [fit_bbb(xf, yf, h, s, S["uci_bbb_epochs"], S["uci_lr"]) for s in S["uci_bbb_sigma_grid"]]
    vi = max(bbbs, key=lambda m: valid_ll(lambda z: bbb_predictive(m, z)))
    preds = {"MAP": map_pred(net)(xt), "Bayes by Backprop": bbb_predictive(vi, xt)}
    for name, subset in (("Laplace (GGN, linearized)", "all"), ("Laplace (last layer)", "last_layer")):
        la = Laplace(net, "regression", hessian="ggn", subset=subset, prior_precision=delta).fit(xf, yf)
        preds[name] = laplace_predictive(la.optimize_prior_precision(sigma_noise=True), xt)
    out = {}
    for name, (m, v) in preds.items():
        s = gaussian_scores(m, v, yt)
        out[name] = {"rmse": s["rmse"] * y_std.item(), "ll": s["ll"] - math.log(y_std.item())}
    return out


def summarize(results: list[dict]) -> dict[str, dict]:
    """Mean and standard error over splits of each method's scores."""
    table = {}
    for name in results[0]:
        row = {}
        for key in ("rmse", "ll"):
            v = torch.tensor([r[name][key] for r in results], dtype=torch.float64)
            se = v.std() / math.sqrt(len(v)) if len(v) > 1 else torch.tensor(float("nan"))
            row[key], row[key + "_se"] = v.mean().item(), se.item()
        table[name] = row
    return table
