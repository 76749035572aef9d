"""Benchmark: a training step of the 784-1200-1200-10 Bayes-by-Backprop MLP, three
estimators.

- ``weight sampling``: one weight sample per minibatch (Blundell et al. 2015), the
  baseline of the ratio column; ``bbb.BayesianMLP(...,
  local_reparameterization=False)``.
- ``local reparameterization``: pre-activations sampled per example (Kingma, Salimans &
  Welling 2015); ``local_reparameterization=True``.
- ``per-example weights``: a fresh weight sample for every example of the minibatch, the
  straightforward way to get independent noise per example, written plainly below with
  batched matrix products (in chunks, to bound memory). It has the same distribution of
  pre-activations as local reparameterization, at far higher cost; its gradient
  estimator is a different one (noise per weight rather than per pre-activation).
- ``plain MLP``: the same architecture with point weights (``mlp.PlainMLP``), for scale.

Each step is one Adam update on ``bbb.elbo_objective(n_data=50,000, kl="closed")``
(Gaussian prior, closed-form KL, so that the estimators differ in the likelihood term
only) on a minibatch of 128 MNIST digits. Throughput is examples per second of whole
training steps. The gradient variance is measured for one model state (the posterior
initialised with sigma = 0.05 so that the noise matters) and one minibatch: the variance
over repeated draws of each element of the gradient of the per-example loss with respect
to all means and rho (the free scale parameter), averaged over elements.

    # the full run (a few minutes)
    .venv/bin/python benchmarks/bench_bbb.py
    # a tiny run (H = 100): prints, writes nothing
    .venv/bin/python benchmarks/bench_bbb.py --quick
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

BATCH = 128
N_DATA = 50_000


def per_example_forward(model, x, chunk=16):
    """A fresh weight sample for every example: w_n = mu + sigma * eps_n, h_n = w_n
    x_n."""
    outs = []
    for xc in torch.split(x, chunk):
        h = xc
        for i, layer in enumerate(model.layers):
            c = h.shape[0]
            w = layer.weight_mu + layer.weight_sigma * torch.randn(
                c, *layer.weight_mu.shape, device=h.device
            )
            b = layer.bias_mu + layer.bias_sigma * torch.randn(
                c, *layer.bias_mu.shape, device=h.device
            )
            h = torch.bmm(w, h.unsqueeze(-1)).squeeze(-1) + b
            if i < len(model.layers) - 1:
                h = F.relu(h)
        outs.append(h)
    return torch.cat(outs)


def _setup(method, hidden, seed, device, init_sigma=1e-3):
    from probdl import bbb, data, mlp, priors

    torch.manual_seed(seed)
    x, y = data.load_mnist("train", n=BATCH * 8, device=device)
    sizes = [784, hidden, hidden, 10]
    if method == "plain MLP":
        model = mlp.PlainMLP(sizes).to(device)
        objective = mlp.nll_objective
    else:
        model = bbb.BayesianMLP(
            sizes,
            priors.GaussianPrior(1.0),
            init_sigma=init_sigma,
            local_reparameterization=(method == "local reparameterization"),
        ).to(device)
        elbo = functools.partial(bbb.elbo_objective, n_data=N_DATA, kl="closed")
        if method == "per-example weights":

            def objective(m, xb, yb):
                ll = -F.cross_entropy(
                    per_example_forward(m, xb), yb, reduction="sum"
                ) * (N_DATA / len(xb))
                f = ll - m.kl()
                return {"loss": -f / N_DATA}
        else:
            objective = elbo
    return model, objective, x, y


def run_step(method, hidden=1200, seed=0, device="cpu", min_seconds=3.0):
    model, objective, x, y = _setup(method, hidden, seed, device)
    timing = dict(min_seconds=min_seconds, min_calls=3, warmup=1)
    t = harness.time_objective_steps(
        model, objective, x, y, BATCH, device=device, **timing
    )
    return {
        "steps_timed": t["calls"],
        "seconds_per_step": t["seconds_per_step"],
        "examples_per_s": t["examples_per_s"],
    }


def run_grad_variance(method, hidden=1200, seed=0, device="cpu", draws=20):
    model, objective, x, y = _setup(method, hidden, seed, device, init_sigma=0.05)
    xb, yb = x[:BATCH], y[:BATCH]
    params = list(model.parameters())
    s1 = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    s2 = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    for _ in range(draws):
        grads = torch.autograd.grad(objective(model, xb, yb)["loss"], params)
        for a, b, g in zip(s1, s2, grads):
            a += g.double()
            b += g.double() ** 2
    total = sum(
        ((b / draws - (a / draws) ** 2).clamp_min(0) * draws / (draws - 1)).sum().item()
        for a, b in zip(s1, s2)
    )
    n = sum(p.numel() for p in params)
    return {"grad_var": total / n, "draws": draws}


METHODS = [
    "weight sampling",
    "local reparameterization",
    "per-example weights",
    "plain MLP",
]


def main(argv=None):
    parser = harness.arg_parser(__doc__, "H = 100, short timings, few draws")
    args = parser.parse_args(argv)
    from probdl import config

    device = str(config.device(args.device))
    hidden = 100 if args.quick else 1200
    min_seconds = 0.5 if args.quick else 3.0
    draws = 5 if args.quick else 10
    rows = []
    timing = dict(hidden=hidden, device=device, min_seconds=min_seconds)
    best = harness.fastest_rounds(
        run_step, METHODS, args.repeat, "examples_per_s", **timing
    )
    for method in METHODS:
        row = {"method": method, "device": device, "hidden": hidden, "batch": BATCH}
        row.update(best[method])
        if method != "plain MLP":
            row["grad_var"] = harness.measure(
                run_grad_variance, method, hidden=hidden, device=device, draws=draws
            )["grad_var"]
        rows.append(row)
        print(f"{method}: {row['examples_per_s']:.0f} examples/s", flush=True)
    base = next(r for r in rows if r["method"] == "weight sampling")
    harness.add_ratio(rows, "examples_per_s", base, "ratio")
    harness.add_ratio(rows, "grad_var", base)
    columns = [
        "method",
        "device",
        "hidden",
        "examples_per_s",
        "ratio",
        "peak_rss_mb",
        "grad_var",
        "grad_var_ratio",
    ]
    if device.startswith("cuda"):
        columns.insert(6, "peak_gpu_mb")
    command = (
        "python benchmarks/bench_bbb.py"
        + (" --quick" if args.quick else "")
        + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
    )
    notes = (
        "One Adam step of the 784-H-H-10 Bayes-by-Backprop MLP (Gaussian prior, "
        "closed-form KL) on a "
        f"minibatch of {BATCH} MNIST digits; throughput is the best of {args.repeat} "
        "rounds "
        "over all methods. "
        "ratio: examples per second relative to weight sampling once "
        "per minibatch. grad_var: the variance over repeated draws of the gradient of "
        "the per-example "
        "loss, averaged over all parameters, at one model state (posterior sigma = "
        "0.05) and one "
        "minibatch; grad_var_ratio relative to weight sampling. Local "
        "reparameterization and "
        "per-example weights give the same distribution of pre-activations but "
        "different gradient "
        "estimators: both decorrelate the examples of a minibatch, and local "
        "reparameterization "
        "also draws one noise per pre-activation instead of one per weight (Kingma et "
        "al. 2015)."
    )
    if args.quick:  # a tiny run must not overwrite the committed results
        harness.print_table(rows, columns)
        print(
            "\n--quick: results not written (benchmarks/results/bbb.json keeps the "
            "full run)"
        )
        return
    harness.report("bbb", rows, columns, command=command, notes=notes)


if __name__ == "__main__":
    main()
