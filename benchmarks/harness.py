"""Shared plumbing of the benchmarks: timing, peak memory, a printed table and a JSON
file.

Each benchmark script measures its methods with :func:`measure`, which runs one method
in a fresh process (so its peak memory is its own), then calls :func:`report` to print a
table and write ``benchmarks/results/<name>.json``. The book's appendix reads those
files.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def arg_parser(
    doc: str, quick: str, *, repeat: bool = True, threads: int | None = None
):
    """The options every benchmark shares: ``--quick`` (``quick`` says what it
    shortens), ``--device``, ``--repeat`` (timing rounds over all methods; the best
    counts) and, when ``threads`` is given, ``--threads`` with that default. Add a
    script's own options to it."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument(
        "--device", default=None, help="cpu or cuda (default: probdl.config.device())"
    )
    if repeat:
        parser.add_argument(
            "--repeat",
            type=int,
            default=3,
            help="timing rounds over all methods; the best counts",
        )
    if threads is not None:
        parser.add_argument(
            "--threads", type=int, default=threads, help="torch threads per measurement"
        )
    return parser


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_per_call(
    fn,
    *,
    device="cpu",
    warmup: int = 2,
    min_seconds: float = 3.0,
    min_calls: int = 5,
    max_calls: int = 10_000,
) -> dict:
    """Call ``fn()`` ``warmup`` times, then repeatedly for at least ``min_seconds`` and
    ``min_calls`` calls; return the median and the spread of seconds per call."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    start = time.perf_counter()
    while (len(times) < min_calls or time.perf_counter() - start < min_seconds) and len(
        times
    ) < max_calls:
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return {
        "seconds_median": statistics.median(times),
        "seconds_min": min(times),
        "seconds_max": max(times),
        "calls": len(times),
    }


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _child(queue, target, args, kwargs, device):
    try:
        torch.set_num_threads(kwargs.pop("_threads"))
        base = _rss_mb()
        if torch.device(device).type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        result = dict(target(*args, device=device, **kwargs))
        result["peak_rss_mb"] = _rss_mb() - base if base else _rss_mb()
        if torch.device(device).type == "cuda":
            result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        queue.put(("ok", result))
    except BaseException as exc:  # report, never hang the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def measure(target, *args, device="cpu", threads: int | None = None, **kwargs) -> dict:
    """Run ``target(*args, device=device, **kwargs)`` (a module-level function returning
    a dict) in a fresh process; add its peak memory: the growth of the resident set over
    the process's state after imports on CPU (``peak_rss_mb``), and
    ``torch.cuda.max_memory_allocated`` on a GPU (``peak_gpu_mb``)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    kwargs["_threads"] = threads or torch.get_num_threads()
    proc = ctx.Process(target=_child, args=(queue, target, args, kwargs, str(device)))
    proc.start()
    status, result = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{getattr(target, '__name__', target)} failed: {result}")
    return result


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print ``rows`` as aligned text through :func:`probdl.report.table`, the book's
    one table helper (a column a row lacks, such as GPU memory on a CPU, stays
    blank)."""
    from probdl import report

    print(report.table([{c: r.get(c) for c in columns} for r in rows], columns))


def best_round(rounds: list[dict], key: str) -> dict:
    """Of several timing rounds of one method, the one with the largest ``key`` (the
    round least disturbed by other work on the machine)."""
    return max(rounds, key=lambda r: r[key])


def add_ratio(rows: list[dict], key: str, base: dict, name: str | None = None) -> None:
    """Set ``row[name] = row[key] / base[key]`` (``name``: ``key + "_ratio"``) in every
    row that has ``key``: the comparison with the peer of the same run."""
    for r in rows:
        if key in r:
            r[name or f"{key}_ratio"] = r[key] / base[key]


def fastest_rounds(target, methods, n_rounds: int, key: str, **kwargs) -> dict:
    """``measure(target, method, **kwargs)`` for every method, ``n_rounds`` times, a
    round going over all methods (so that a busy spell of the machine hits each alike);
    per method the :func:`best_round` by ``key``, with the number of rounds."""
    timings = {m: [] for m in methods}
    for _ in range(n_rounds):
        for m in methods:
            timings[m].append(measure(target, m, **kwargs))
    return {m: {**best_round(t, key), "rounds": len(t)} for m, t in timings.items()}


def time_objective_steps(model, objective, x, y, batch: int, *, device="cpu", **timing):
    """:func:`time_adam_steps` of ``objective(model, xb, yb)["loss"]`` (an objective of
    ``probdl.train.fit``'s form) over the first eight minibatches of ``batch``
    examples; with the median step as ``seconds_per_step``, ``ms_per_step`` and
    ``examples_per_s``."""
    batches = [
        (x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch])
        for i in range(8)
    ]

    def loss(xb, yb):
        return objective(model, xb, yb)["loss"]

    t = time_adam_steps(model, loss, batches, device=device, **timing)
    s = t["seconds_median"]
    return {
        **t,
        "seconds_per_step": s,
        "ms_per_step": 1e3 * s,
        "examples_per_s": batch / s,
    }


def time_adam_steps(
    model, loss_fn, batches, *, device="cpu", lr=1e-3, **timing
) -> dict:
    """Time one Adam step of ``model``: ``loss_fn(*batch)`` on the next of ``batches``
    (a list, cycled), its gradient and the update; :func:`time_per_call` with ``timing``
    (``warmup``, ``min_seconds``, ``min_calls``). Every benchmark that times a training
    step uses this."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    state = {"i": 0}

    def step():
        batch = batches[state["i"] % len(batches)]
        state["i"] += 1
        loss = loss_fn(*batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return time_per_call(step, device=device, **timing)


def report(
    name: str,
    rows: list[dict],
    columns: list[str],
    *,
    command: str,
    notes: str = "",
    extra: dict | None = None,
) -> Path:
    """Print the table and write ``benchmarks/results/<name>.json``."""
    print_table(rows, columns)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "columns": columns,
        "rows": rows,
        "notes": notes,
    }
    if extra:
        payload.update(extra)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(
        "\nwrote "
        f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
    )
    return path
