"""Benchmark: one NADE training step (D = 784, H = 500, batch 100, float32), three ways.

- ``hand-written (probdl.nade)``: ``NADE.log_prob``, the blocked forward and backward
  sweep of Algorithm 1 as a ``torch.autograd.Function`` (no (batch, D, H) tensor).
- ``autograd through cumsum`` (baseline a): the pre-activations of all D conditionals as
  a cumulative sum over a (batch, D, H) tensor, differentiated by autograd.
- ``autograd through a loop over d`` (baseline b): ``probdl.nade.log_prob_reference``,
  Algorithm 1 written plainly as a Python loop over the 784 pixels with the running
  pre-activation a <- a + W[:, d] x_d, differentiated by autograd (the reference the
  tests check the fast pass against).

A step is the loss (mean negative log-likelihood of a minibatch of binary images), its
gradient with respect to all parameters, and one Adam update. Each method runs in a
fresh process (so its peak memory is its own) with the machine's torch threads. Targets:
>= 10x baseline (a) and >= 2x baseline (b) in examples per second.

    # the full run (about two minutes)
    .venv/bin/python benchmarks/bench_nade.py
    # a tiny run (H = 100, batch 20): prints the table, leaves results/nade.json alone
    .venv/bin/python benchmarks/bench_nade.py --quick
    # default: probdl.config.device()
    .venv/bin/python benchmarks/bench_nade.py --device cuda
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from probdl import config  # noqa: E402
from probdl.nade import log_prob_reference  # noqa: E402


def cumsum_log_prob(model, x):
    """Baseline (a): autograd through a cumulative sum over a (batch, D, H) tensor."""
    xw = x[:, :, None] * model.W.t()[None]  # (B, D, H): W[:, d] x_d
    h = torch.sigmoid(
        model.c + torch.cumsum(xw, 1) - xw
    )  # a_d = c + sum_{k<d} W[:, k] x_k
    logits = (h * model.V).sum(-1) + model.b
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


METHODS = {
    "hand-written (probdl.nade)": lambda model, x: model.log_prob(x),
    "autograd through cumsum": cumsum_log_prob,
    "autograd through a loop over d": log_prob_reference,
}


def run(method, hidden, batch, min_seconds, device="cpu"):
    from probdl.nade import NADE

    torch.manual_seed(0)
    # binary images with MNIST's density of on-pixels (the cost does not depend on the
    # values; synthetic data keeps the dataset out of the peak-memory column)
    x = torch.bernoulli(torch.full((batch, 784), 0.13)).to(device)
    model = NADE(784, hidden).to(device).init_bias(x)
    log_prob = METHODS[method]

    def loss(xb):
        return -log_prob(model, xb).mean()

    t = harness.time_adam_steps(
        model,
        loss,
        [(x,)],
        device=device,
        warmup=1,
        min_seconds=min_seconds,
        min_calls=3,
    )
    return {
        "method": method,
        "ms_per_step": 1e3 * t["seconds_median"],
        "steps_timed": t["calls"],
        "examples_per_s": batch / t["seconds_median"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny run: H = 100, batch 20, 1 s per method",
    )
    parser.add_argument(
        "--device", default=None, help="cpu or cuda (default: probdl.config.device())"
    )
    args = parser.parse_args()
    device = str(config.device(args.device))
    hidden, batch, min_seconds = (100, 20, 1.0) if args.quick else (500, 100, 5.0)
    rows = []
    for method in METHODS:
        print(f"measuring {method} ...", flush=True)
        rows.append(
            harness.measure(run, method, hidden, batch, min_seconds, device=device)
        )
    by = {r["method"]: r["examples_per_s"] for r in rows}
    for r in rows:
        r["x_cumsum"] = r["examples_per_s"] / by["autograd through cumsum"]
        r["x_loop"] = r["examples_per_s"] / by["autograd through a loop over d"]
    fast = rows[0]
    columns = [
        "method",
        "examples_per_s",
        "x_cumsum",
        "x_loop",
        "ms_per_step",
        "peak_rss_mb",
    ]
    if device.startswith("cuda"):
        columns.append("peak_gpu_mb")
    notes = (
        "One training step (loss, gradient, Adam update) of a NADE with D = 784, H = "
        f"{hidden}, "
        f"batch {batch}, "
        f"float32, on {device}. x_cumsum and x_loop: examples per second relative to "
        "baseline (a), "
        "autograd through a cumulative sum over a (batch, D, H) tensor, and baseline "
        "(b), autograd through "
        "a Python loop over d. Targets: >= 10x (a) and >= 2x (b); measured "
        f"{fast['x_cumsum']:.1f}x and "
        f"{fast['x_loop']:.1f}x. peak_rss_mb: growth of the resident set of the "
        "process that ran the method. "
        "The machine may have been shared with other processes while this ran; the "
        "ratios come from one run."
    )
    if (
        args.quick
    ):  # a check that the script runs: never overwrite the committed results
        harness.print_table(rows, columns)
        print("\n--quick: benchmarks/results/nade.json left unchanged")
        return
    cmd = ".venv/bin/python benchmarks/bench_nade.py" + (
        f" --device {args.device}" if args.device else ""
    )
    harness.report(
        "nade",
        rows,
        columns,
        command=cmd,
        notes=notes,
        extra={"hidden": hidden, "batch": batch, "visible": 784},
    )


if __name__ == "__main__":
    main()
