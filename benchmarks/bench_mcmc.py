"""Benchmark: gradient evaluations per second of HMC on the 1-50-50-1 regression network of
chapter 08 (500 training points, 2701 weights), three ways at the same step size and trajectory
length:

- ``batched chains``: ``probdl.mcmc.hmc`` with all chains in one batch (flat weight vectors,
  ``torch.baddbmm`` forward passes), the chapter's sampler;
- ``per-chain loop``: the same function called once per chain, one chain at a time;
- ``Pyro HMC``: ``pyro.infer.HMC`` with ``potential_fn`` = the same negative log posterior of one
  flat weight vector, fixed step size, no adaptation, one chain (Pyro runs several chains in
  separate processes, so one chain is its unit of work).

Throughput is leapfrog gradient evaluations of the full-data log posterior per second, summed over
chains; ratio relative to Pyro.

    .venv/bin/python benchmarks/bench_mcmc.py            # the full run (a few minutes)
    .venv/bin/python benchmarks/bench_mcmc.py --quick    # a tiny run; prints, writes nothing
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

STEP_SIZE = 1e-3
SIZES = [1, 50, 50, 1]


def _posterior(n_train, device):
    from probdl import data, mcmc

    x, y = data.regression_data(n_train, noise_var=0.02, seed=0)
    return mcmc.NetworkPosterior(SIZES, x.to(device), y.to(device), noise_std=0.3, prior_sigma=1.0)


def _init(post, chains, device):
    g = torch.Generator().manual_seed(0)
    return (0.3 * torch.randn(chains, post.dim, generator=g)).to(device)


def run(method, chains=8, iterations=20, n_leapfrog=10, n_train=500, device="cpu"):
    from probdl import mcmc

    post = _posterior(n_train, device)
    init = _init(post, chains, device)

    def go(n_iter):
        if method == "batched chains":
            mcmc.hmc(post.log_prob, init, n_iter, 0, step_size=STEP_SIZE, n_leapfrog=n_leapfrog, jitter=0.0)
            return chains * n_iter * n_leapfrog
        if method == "per-chain loop":
            for c in range(chains):
                mcmc.hmc(
                    post.log_prob,
                    init[c : c + 1],
                    n_iter,
                    0,
                    step_size=STEP_SIZE,
                    n_leapfrog=n_leapfrog,
                    jitter=0.0,
                )
            return chains * n_iter * n_leapfrog
        import pyro
        from pyro.infer import HMC, MCMC

        pyro.set_rng_seed(0)
        kernel = HMC(
            potential_fn=lambda p: -post.log_prob(p["theta"].unsqueeze(0))[0],
            step_size=STEP_SIZE,
            num_steps=n_leapfrog,
            adapt_step_size=False,
        )
        MCMC(kernel, n_iter, warmup_steps=0, initial_params={"theta": init[0]}, disable_progbar=True).run()
        return n_iter * n_leapfrog

    go(2)  # warm-up: allocations, Pyro's first trace
    harness.sync(device)
    t0 = time.perf_counter()
    grads = go(iterations)
    harness.sync(device)
    seconds = time.perf_counter() - t0
    return {"grad_evals": grads, "seconds": seconds, "grad_evals_per_s": grads / seconds}


METHODS = ["batched chains", "per-chain loop", "Pyro HMC"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few iterations; prints, writes nothing")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: probdl.config.device())")
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per measurement")
    parser.add_argument(
        "--repeat", type=int, default=3, help="timing rounds over all methods; the best counts"
    )
    args = parser.parse_args(argv)
    from probdl import config

    device = str(config.device(args.device))
    iterations = 3 if args.quick else 20
    timings = {m: [] for m in METHODS}
    for _ in range(args.repeat):  # rounds over all methods; the fastest round counts (others share the CPU)
        for method in METHODS:
            chains = 1 if method == "Pyro HMC" else args.chains
            result = harness.measure(
                run, method, chains=chains, iterations=iterations, device=device, threads=args.threads
            )
            timings[method].append(result)
            print(f"{method}: {result['grad_evals_per_s']:.0f} gradient evaluations/s", flush=True)
    rows = []
    for method in METHODS:
        best = max(timings[method], key=lambda t: t["grad_evals_per_s"])
        chains = 1 if method == "Pyro HMC" else args.chains
        rows.append({"method": method, "device": device, "chains": chains, "threads": args.threads, **best})
        rows[-1]["rounds"] = len(timings[method])
    base = next(r for r in rows if r["method"] == "Pyro HMC")
    for r in rows:
        r["ratio"] = r["grad_evals_per_s"] / base["grad_evals_per_s"]
    columns = ["method", "device", "chains", "threads", "grad_evals_per_s", "ratio", "peak_rss_mb"]
    if args.quick:
        harness.print_table(rows, columns)
        print("\n--quick: nothing written")
        return
    command = (
        "python benchmarks/bench_mcmc.py"
        + (f" --chains {args.chains}" if args.chains != 8 else "")
        + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
    )
    notes = (
        f"HMC on the 1-50-50-1 ReLU regression network (500 points, 2701 weights), step size {STEP_SIZE}, "
        f"10 leapfrog steps per iteration, {iterations} iterations, no adaptation, "
        f"best of {args.repeat} rounds. "
        "grad_evals_per_s: "
        "gradient evaluations of the full-data log posterior per second, summed over chains; ratio relative "
        "to Pyro's HMC on one chain with the same potential."
    )
    harness.report("mcmc", rows, columns, command=command, notes=notes)


if __name__ == "__main__":
    main()
