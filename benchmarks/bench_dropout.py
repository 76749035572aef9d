"""Benchmark: a training step of sparse variational dropout on LeNet-300-100
(784-300-100-10).

- ``plain MLP``: the same architecture with point weights (``mlp.PlainMLP``,
  cross-entropy), the baseline of the ratio column.
- ``Bernoulli dropout``: the plain network with dropout 0.5 on its hidden units, for
  scale.
- ``VD, local reparameterization``: ``dropout.VariationalDropoutMLP`` (additive
  parameterization, pre-activations sampled per example; Kingma, Salimans & Welling
  2015; Molchanov et al. 2017).
- ``VD, weight noise``: the same network sampling one weight matrix per minibatch.
- ``VD, multiplicative noise``: weight noise with free (theta, log alpha), w = theta (1
  + sqrt(alpha) e).

Each step is one Adam update of ``dropout.sgvlb_objective`` (N = 50,000, KL weight 1) or
of the plain cross-entropy on a minibatch of 100 MNIST digits. The gradient variance
(``dropout.gradient_variance``) is measured at one state: the same theta for every
estimator and every log alpha set to 0 (alpha = 1, the noise of dropout at p = 0.5).

    # the full run (a minute or two)
    .venv/bin/python benchmarks/bench_dropout.py
    # a short run; prints, writes nothing
    .venv/bin/python benchmarks/bench_dropout.py --quick
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

BATCH = 100
N_DATA = 50_000
SIZES = [784, 300, 100, 10]
METHODS = {
    "plain MLP": None,
    "Bernoulli dropout": None,
    "VD, local reparameterization": ("additive", True),
    "VD, weight noise": ("additive", False),
    "VD, multiplicative noise": ("multiplicative", False),
}


def _setup(method, seed, device):
    from probdl import data, dropout, mlp

    torch.manual_seed(seed)
    x, y = data.load_mnist("train", n=BATCH * 8, device=device)
    if METHODS[method] is None:
        model = mlp.PlainMLP(
            SIZES, dropout=0.5 if method == "Bernoulli dropout" else 0.0
        ).to(device)
        return model, mlp.nll_objective, x, y
    param, local = METHODS[method]
    model = dropout.VariationalDropoutMLP(
        SIZES, parameterization=param, local_reparameterization=local
    )
    return (
        model.to(device),
        functools.partial(dropout.sgvlb_objective, n_data=N_DATA),
        x,
        y,
    )


def run_step(method, seed=0, device="cpu", min_seconds=3.0):
    model, objective, x, y = _setup(method, seed, device)
    timing = dict(min_seconds=min_seconds, min_calls=5, warmup=2)
    t = harness.time_objective_steps(
        model, objective, x, y, BATCH, device=device, **timing
    )
    return {k: t[k] for k in ("ms_per_step", "examples_per_s")}


def run_grad_variance(method, seed=0, device="cpu", repeats=50):
    from probdl import dropout

    model, _, x, y = _setup(method, seed, device)
    for layer in model.layers:
        layer.set_log_alpha(0.0)
    return dropout.gradient_variance(model, x[:BATCH], y[:BATCH], repeats)


def main(argv=None):
    parser = harness.arg_parser(__doc__, "short timings; print only", threads=1)
    args = parser.parse_args(argv)
    from probdl import config

    device = str(config.device(args.device))
    min_seconds = 0.5 if args.quick else 3.0
    rounds = 1 if args.quick else args.repeat
    timing = dict(device=device, min_seconds=min_seconds, threads=args.threads)
    best = harness.fastest_rounds(run_step, METHODS, rounds, "examples_per_s", **timing)
    rows = []
    for method in METHODS:
        row = {"method": method, "device": device, "threads": args.threads}
        row.update(best[method])
        if METHODS[method] is not None:
            gv = harness.measure(
                run_grad_variance,
                method,
                device=device,
                repeats=10 if args.quick else 50,
            )
            row["grad_var"] = gv["variance"]
        rows.append(row)
        print(f"{method}: {row['ms_per_step']:.2f} ms per step", flush=True)
    local = next(r for r in rows if r["method"] == "VD, local reparameterization")
    harness.add_ratio(rows, "ms_per_step", rows[0], "step_time_ratio")
    harness.add_ratio(rows, "grad_var", local)
    columns = [
        "method",
        "device",
        "ms_per_step",
        "examples_per_s",
        "step_time_ratio",
        "peak_rss_mb",
    ]
    columns += ["grad_var", "grad_var_ratio"]
    notes = (
        f"One Adam step on a minibatch of {BATCH} MNIST digits, LeNet-300-100, "
        f"{args.threads} torch "
        f"thread(s); the best of {rounds} rounds over all methods. step_time_ratio: "
        "time per step "
        "relative to the plain MLP (target: <= 2 for local reparameterization). "
        "grad_var: the variance "
        "over noise draws of the gradient of the minibatch's mean log-likelihood in "
        "theta, averaged "
        "over weights, at alpha = 1; grad_var_ratio relative to local "
        "reparameterization. Load average "
        "during the run: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()) + "."
    )
    command = "python benchmarks/bench_dropout.py" + (" --quick" if args.quick else "")
    if (
        args.quick
    ):  # a smoke test of the script: print, do not overwrite the committed results
        harness.print_table(rows, columns)
    else:
        harness.report("dropout", rows, columns, command=command, notes=notes)
    print(notes)


if __name__ == "__main__":
    main()
