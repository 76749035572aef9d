"""Benchmark: fitting a Laplace approximation with probdl.laplace and with
laplace-torch.

One fit is the curvature on the data plus the log marginal likelihood (which needs the
log determinant of the posterior precision), for the same model in the same run:

- the 1-50-50-1 regression network of the 1-D chapters (2,701 weights) on 500 points:
  full GGN, KFAC and last-layer GGN;
- the 784-400-400-10 MNIST network's last layer (4,010 weights) on ``--mnist-n``
  training digits: KFAC, and full GGN on at most 1,000 of them.

Weights are the random initialisation (the cost does not depend on them).
``probdl.laplace`` eigendecomposes the curvature once in ``fit`` (so that the evidence
under another prior precision or noise scale costs O(P) afterwards); laplace-torch
(backend CurvlinopsGGN, its default) takes a Cholesky factor of the posterior precision
per evaluation. Peak memory is the resident-set growth of a fresh process.

    # the full run
    .venv/bin/python benchmarks/bench_laplace.py
    # a tiny run (results not written)
    .venv/bin/python benchmarks/bench_laplace.py --quick
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

CASES = {
    "1-D net, full GGN": dict(problem="regression", hessian="full", subset="all"),
    "1-D net, KFAC": dict(problem="regression", hessian="kron", subset="all"),
    "1-D net, last layer GGN": dict(
        problem="regression", hessian="full", subset="last_layer"
    ),
    "MNIST last layer, KFAC": dict(
        problem="mnist", hessian="kron", subset="last_layer"
    ),
    "MNIST last layer, full GGN": dict(
        problem="mnist", hessian="full", subset="last_layer", cap=1000
    ),
}


def _problem(problem: str, mnist_n: int):
    from probdl import data, mlp

    torch.manual_seed(0)
    if problem == "regression":
        x, y = data.regression_data(500, noise_var=0.02)
        return mlp.PlainMLP([1, 50, 50, 1], likelihood="gaussian"), x, y, "regression"
    x, y = data.load_mnist("train", n=mnist_n)
    return mlp.PlainMLP([784, 400, 400, 10]), x, y, "classification"


def run_fit(
    library: str,
    problem: str,
    hessian: str,
    subset: str,
    *,
    mnist_n: int,
    min_seconds: float,
    device,
    cap=None,
):
    model, x, y, likelihood = _problem(problem, min(mnist_n, cap or mnist_n))
    kw = dict(prior_precision=1.0) | (
        dict(sigma_noise=0.1) if likelihood == "regression" else {}
    )
    if library == "probdl":
        from probdl import laplace

        ours = "ggn" if hessian == "full" else hessian

        def fit():
            la = laplace.Laplace(
                model, likelihood, hessian=ours, subset=subset, **kw
            ).fit(x, y, batch_size=1000)
            return la.log_marginal_likelihood()
    else:
        from laplace import Laplace
        from torch.utils.data import DataLoader, TensorDataset

        loader = DataLoader(TensorDataset(x, y), batch_size=1000)

        def fit():
            la = Laplace(
                model,
                likelihood,
                subset_of_weights=subset,
                hessian_structure=hessian,
                **kw,
            )
            la.fit(loader, progress_bar=False)
            return la.log_marginal_likelihood()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = harness.time_per_call(
            fit, device=device, warmup=1, min_seconds=min_seconds, min_calls=2
        )
    return {"seconds": t["seconds_median"], "calls": t["calls"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few MNIST digits, short timings, no JSON written",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="only cpu is measured (default: probdl.config.device())",
    )
    parser.add_argument(
        "--mnist-n",
        type=int,
        default=5000,
        help="MNIST training digits for the last layer",
    )
    args = parser.parse_args(argv)
    from probdl import config

    device = str(config.device(args.device))
    if device != "cpu":
        print(f"note: both libraries run on the CPU here (asked for {device})")
    mnist_n = 200 if args.quick else args.mnist_n
    min_seconds = 0.2 if args.quick else 2.0
    rows = []
    for case, spec in CASES.items():
        times = {}
        for library in ("probdl", "laplace-torch"):
            r = harness.measure(
                run_fit,
                library,
                **spec,
                mnist_n=mnist_n,
                min_seconds=min_seconds,
                device="cpu",
                threads=1,
            )
            times[library] = r
            n = (
                min(mnist_n, spec.get("cap") or mnist_n)
                if spec["problem"] == "mnist"
                else 500
            )
            rows.append({"case": case, "library": library, "n_data": n, **r})
            print(f"{case}, {library}: {r['seconds']:.3f} s per fit", flush=True)
        rows[-2]["ratio"] = (
            times["laplace-torch"]["seconds"] / times["probdl"]["seconds"]
        )
        rows[-1]["ratio"] = 1.0
    columns = ["case", "library", "n_data", "seconds", "ratio", "peak_rss_mb", "calls"]
    command = "python benchmarks/bench_laplace.py" + (" --quick" if args.quick else "")
    notes = (
        "ratio: laplace-torch's seconds per fit / this library's (above 1: probdl is "
        "faster); one thread; "
        "a fit is the curvature plus the log marginal likelihood."
    )
    if args.quick:
        harness.print_table(rows, columns)
        print("\n--quick: results not written")
        return
    harness.report("laplace", rows, columns, command=command, notes=notes)


if __name__ == "__main__":
    main()
