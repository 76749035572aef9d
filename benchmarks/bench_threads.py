"""Benchmark: torch's intra-op threads for a tiny model, on an idle and on a busy
machine.

The model is chapter 04's regression network, ``PlainMLP([1, 50, 50, 1])`` (2,701
parameters), trained with Adam on minibatches of 100 of 500 points: each matrix product
is far too small to split across threads, so a second thread only adds synchronisation,
and when the other cores are busy (a package installation, another notebook) a thread
that waits for a descheduled partner can make every step many times slower.
``probdl.train.fit`` therefore trains models below ``config.SMALL_MODEL_PARAMETERS`` on
one thread (``config.threads_for``); this script measures what that buys: steps per
second at 1 thread and at torch's default, with nothing else running and with ``--busy``
background processes each spinning one core, and the ratio.

    # writes benchmarks/results/threads.json
    .venv/bin/python benchmarks/bench_threads.py
    # a short run; writes nothing
    .venv/bin/python benchmarks/bench_threads.py --quick
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def train_steps(steps: int, device: str = "cpu") -> dict:
    """``steps`` Adam steps of the 1-50-50-1 network; returns steps per second."""
    from probdl import data, mlp

    torch.manual_seed(0)
    x, y = data.regression_data(500, seed=0)
    model = mlp.PlainMLP([1, 50, 50, 1], likelihood="gaussian", learn_noise=True).to(
        device
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    idx = torch.randperm(500)[:100]
    xb, yb = x[idx].to(device), y[idx].to(device)

    def step():
        loss = -model.log_likelihood(model(xb), yb).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = harness.time_per_call(
        lambda: [step() for _ in range(steps)], device=device, min_seconds=2.0
    )
    return {
        "steps_per_s": steps / t["seconds_median"],
        "n_params": sum(p.numel() for p in model.parameters()),
    }


def _spin(stop):
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while not stop.is_set():
        a = torch.tanh(a @ a)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short run that writes no results"
    )
    parser.add_argument(
        "--busy",
        type=int,
        default=1,
        help="background processes spinning one core each",
    )
    parser.add_argument(
        "--device", default=None, help="cpu (the point of this benchmark) or cuda"
    )
    args = parser.parse_args(argv)
    from probdl import config

    device = str(config.device(args.device or "cpu"))
    steps = 20 if args.quick else 100
    default = torch.get_num_threads()
    rows = []
    for load in ("idle", "busy"):
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        spinners = [
            ctx.Process(target=_spin, args=(stop,))
            for _ in range(args.busy if load == "busy" else 0)
        ]
        for p in spinners:
            p.start()
        try:
            res = {
                t: harness.measure(train_steps, steps, device=device, threads=t)
                for t in sorted({1, default})
            }
        finally:
            stop.set()
            for p in spinners:
                p.join()
        for t, r in res.items():
            rows.append(
                {
                    "machine load": load
                    if load == "idle"
                    else f"{args.busy} core(s) busy",
                    "threads": t,
                    "steps_per_s": r["steps_per_s"],
                    "ratio": r["steps_per_s"] / res[default]["steps_per_s"],
                }
            )
    notes = (
        "Adam steps of the 1-50-50-1 regression network (2,701 parameters), "
        f"batch 100, on {device}; ratio: steps per second relative to torch's default "
        f"of {default} threads "
        "under the same load. 'busy': background processes each spin one core with "
        "small matrix products."
    )
    command = "python benchmarks/bench_threads.py" + (
        f" --busy {args.busy}" if args.busy != 1 else ""
    )
    if args.quick:
        harness.print_table(rows, ["machine load", "threads", "steps_per_s", "ratio"])
        print("\n--quick: nothing written")
        return
    harness.report(
        "threads",
        rows,
        ["machine load", "threads", "steps_per_s", "ratio"],
        command=command,
        notes=notes,
    )


if __name__ == "__main__":
    main()
