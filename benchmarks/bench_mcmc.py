"""Benchmark: gradient evaluations per second of HMC on the 1-50-50-1 regression network
of chapter 08 (500 training points, 2701 weights), at the same step size and the same
fixed number of leapfrog steps, no adaptation:

- ``batched chains``: ``probdl.mcmc.hmc(post, ...)`` with all chains in one batch (flat
  weight vectors, ``torch.baddbmm`` forward passes) and
  ``NetworkPosterior.value_and_grad``'s hand-written backward pass, the chapter's
  sampler;
- ``batched chains, autograd``: the same with ``hmc(post.log_prob, ...)``, autograd's
  gradient;
- ``per-chain loop``: ``hmc(post, ...)`` called once per chain, one chain at a time;
- ``Pyro HMC``: ``pyro.infer.HMC`` with ``potential_fn`` = the same negative log
  posterior of one flat weight vector, one chain (Pyro runs several chains in separate
  processes, so one chain is its unit of work);
- ``NumPyro HMC`` (one chain) and ``NumPyro HMC, vectorized`` (all chains under
  ``jax.vmap``): NumPyro's ``HMC`` kernel with ``potential_fn`` = the same negative log
  posterior written in ``jax.numpy`` (checked against ``NetworkPosterior.log_prob`` and
  its gradient to 1e-4 relative before any timing; the run fails if they disagree),
  ``num_steps`` fixed and ``trajectory_length=None``. The kernel's ``sample`` runs in
  one jitted ``lax.scan``, compiled by a first call and timed on the next two calls with
  the same shapes (``MCMC.run`` would compile again on every call); the faster counts,
  and a run fails if the two differ by more than 5x (a recompilation). With ``--threads
  1`` XLA runs on one thread too.

Throughput is leapfrog gradient evaluations of the full-data log posterior per second,
summed over chains; ``ratio`` is relative to the strongest peer in the same run, the
faster NumPyro row, and ``ratio_pyro`` relative to Pyro.

NumPyro and JAX are benchmark-only dependencies; without them the script stops and says
so:

    .venv/bin/pip install -r benchmarks/requirements.txt
    # the full run (a few minutes)
    .venv/bin/python benchmarks/bench_mcmc.py
    # a tiny run; prints, writes nothing
    .venv/bin/python benchmarks/bench_mcmc.py --quick
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

STEP_SIZE = 1e-3
SIZES = [1, 50, 50, 1]
# the JAX potential must match NetworkPosterior.log_prob (and its gradient) this closely
RTOL = 1e-4
REQUIREMENTS = "pip install -r benchmarks/requirements.txt"


def _require_numpyro():
    missing = [m for m in ("jax", "numpyro") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(
            "bench_mcmc.py compares against NumPyro, a benchmark-only dependency; "
            "missing: "
            f"{', '.join(missing)}. Install it with\n    .venv/bin/{REQUIREMENTS}"
        )


def _posterior(n_train, device):
    from probdl import data, mcmc

    x, y = data.regression_data(n_train, noise_var=0.02, seed=0)
    return mcmc.NetworkPosterior(
        SIZES, x.to(device), y.to(device), noise_std=0.3, prior_sigma=1.0
    )


def _init(post, chains, device):
    g = torch.Generator().manual_seed(0)
    return (0.3 * torch.randn(chains, post.dim, generator=g)).to(device)


def _jax_log_prob(post):
    """NetworkPosterior.log_prob of one flat weight vector, in jax.numpy (same layout
    and math)."""
    import jax.numpy as jnp

    x, y = jnp.asarray(post.x.cpu().numpy()), jnp.asarray(post.y.cpu().numpy())
    s, sigma, dim = post.noise_std, post.prior_sigma, post.dim
    const = -y.size * (math.log(s) + 0.5 * math.log(2 * math.pi))
    const -= dim * (math.log(sigma) + 0.5 * math.log(2 * math.pi))

    def log_prob(theta):
        h, i = x, 0
        for layer, (a, b) in enumerate(zip(post.sizes[:-1], post.sizes[1:])):
            w, bias = (
                theta[i : i + a * b].reshape(b, a),
                theta[i + a * b : i + a * b + b],
            )
            i += a * b + b
            h = h @ w.T + bias
            if layer < len(post.sizes) - 2:
                h = jnp.maximum(h, 0.0)
        r = (y - h) / s
        return -0.5 * jnp.sum(r * r) - 0.5 * jnp.sum((theta / sigma) ** 2) + const

    return log_prob


def _check_agreement(post, log_prob, thetas):
    """Fail loudly unless the JAX log posterior and its gradient match probdl's on
    ``thetas``."""
    import jax
    import numpy as np

    from probdl import mcmc

    lp_t, grad_t = mcmc.value_and_grad(post.log_prob, thetas)
    lp_j, grad_j = jax.vmap(jax.value_and_grad(log_prob))(thetas.cpu().numpy())
    lp_t, grad_t = lp_t.detach().cpu().numpy(), grad_t.detach().cpu().numpy()
    lp_err = np.max(np.abs(np.asarray(lp_j) - lp_t) / np.abs(lp_t))
    grad_err = np.max(
        np.linalg.norm(np.asarray(grad_j) - grad_t, axis=1)
        / np.linalg.norm(grad_t, axis=1)
    )
    if not (lp_err <= RTOL and grad_err <= RTOL):
        raise AssertionError(
            "the NumPyro potential disagrees with NetworkPosterior.log_prob: relative "
            "error "
            f"{lp_err:.2e} (log p), {grad_err:.2e} (gradient), tolerance {RTOL}"
        )
    return {
        "check_rel_err_log_prob": float(lp_err),
        "check_rel_err_grad": float(grad_err),
    }


def _set_xla_threads():
    """XLA on as many threads as torch (set before jax is imported, in the measuring
    process)."""
    n = torch.get_num_threads()
    eigen = "false" if n == 1 else "true"
    os.environ["XLA_FLAGS"] = (
        f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={n}"
    )


def run_numpyro(
    method, chains=8, iterations=20, n_leapfrog=10, n_train=500, device="cpu"
):
    """NumPyro's HMC kernel in one jitted scan: compiled once, then timed on two
    calls."""
    _set_xla_threads()
    import jax
    from numpyro.infer import HMC

    post = _posterior(n_train, "cpu")
    init = _init(post, chains, "cpu")
    log_prob = _jax_log_prob(post)
    check = _check_agreement(post, log_prob, init)
    kernel = HMC(
        potential_fn=lambda p: -log_prob(p["theta"]),
        step_size=STEP_SIZE,
        num_steps=n_leapfrog,
        trajectory_length=None,
        adapt_step_size=False,
        adapt_mass_matrix=False,
    )
    keys = jax.random.split(jax.random.PRNGKey(0), chains)
    state = kernel.init(
        keys if chains > 1 else keys[0],
        0,
        {"theta": init.numpy() if chains > 1 else init[0].numpy()},
        (),
        {},
    )
    # with one key per chain, init runs under vmap and the kernel's sample is vmapped
    # too

    def one(s, _):
        s = kernel.sample(s, (), {})
        return s, (
            s.z["theta"],
            s.num_steps,
        )  # keep the draws, as the other samplers do

    sample = jax.jit(lambda s: jax.lax.scan(one, s, None, length=iterations))

    seconds = []
    for _ in range(3):  # the first call compiles; the next two are timed
        t0 = time.perf_counter()
        _, (_, num_steps) = jax.block_until_ready(sample(state))
        seconds.append(time.perf_counter() - t0)
    if not (num_steps == n_leapfrog).all():
        raise AssertionError(
            f"NumPyro took {set(num_steps.ravel().tolist())} leapfrog steps, not "
            f"{n_leapfrog}"
        )
    if max(seconds[1:]) > 5 * min(seconds[1:]):
        raise AssertionError(
            f"timed NumPyro runs differ more than 5x (a recompilation?): {seconds}"
        )
    grads = chains * iterations * n_leapfrog
    best = min(seconds[1:])
    return {
        "grad_evals": grads,
        "seconds": best,
        "grad_evals_per_s": grads / best,
        "compile_and_run_seconds": seconds[0],
        "timed_seconds": seconds[1:],
        **check,
    }


def run(method, chains=8, iterations=20, n_leapfrog=10, n_train=500, device="cpu"):
    if method.startswith("NumPyro"):
        return run_numpyro(method, chains, iterations, n_leapfrog, n_train, device)
    from probdl import mcmc

    post = _posterior(n_train, device)
    init = _init(post, chains, device)

    def go(n_iter):
        if method.startswith("batched chains"):
            density = post.log_prob if method.endswith("autograd") else post
            mcmc.hmc(
                density,
                init,
                n_iter,
                0,
                step_size=STEP_SIZE,
                n_leapfrog=n_leapfrog,
                jitter=0.0,
            )
            return chains * n_iter * n_leapfrog
        if method == "per-chain loop":
            for c in range(chains):
                mcmc.hmc(
                    post,
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
        MCMC(
            kernel,
            n_iter,
            warmup_steps=0,
            initial_params={"theta": init[0]},
            disable_progbar=True,
        ).run()
        return n_iter * n_leapfrog

    go(2)  # warm-up: allocations, Pyro's first trace
    harness.sync(device)
    t0 = time.perf_counter()
    grads = go(iterations)
    harness.sync(device)
    seconds = time.perf_counter() - t0
    return {
        "grad_evals": grads,
        "seconds": seconds,
        "grad_evals_per_s": grads / seconds,
    }


# --- effective samples per second: the chapter's adapted HMC against NumPyro's NUTS ---

ESS_X = (
    0.1,
    0.25,
    0.4,
    0.8,
)  # f(x) at three points inside the data ([0, 0.5]) and one beyond


def _ess_summary(post, theta, seconds, grads):
    """Bulk ESS and rank-normalized R-hat of f(x) at ESS_X from draws (samples, chains,
    dim)."""
    from probdl import diagnostics

    f = post.predict(theta.float(), torch.tensor(ESS_X).unsqueeze(1))[
        ..., 0
    ]  # (S, C, len(ESS_X))
    ess, rhat = diagnostics.ess_bulk(f), diagnostics.rhat(f)
    return {
        "seconds": seconds,
        "grad_evals": grads,
        "min_bulk_ess": ess.min().item(),
        "bulk_ess": [round(e, 1) for e in ess.tolist()],
        "max_rhat": rhat.max().item(),
        "min_ess_per_s": ess.min().item() / seconds,
    }


def _prior_draws(post, chains):
    g = torch.Generator().manual_seed(
        1000
    )  # as the chapter: chains start at prior draws
    return post.prior_sigma * torch.randn(chains, post.dim, generator=g)


def run_ess(
    method,
    chains=4,
    warmup=200,
    samples=200,
    n_leapfrog=50,
    max_tree_depth=10,
    device="cpu",
):
    """One sampler on the chapter's posterior from prior draws: adapted HMC (the
    chapter's settings: diagonal mass matrix, dual averaging to 0.8, ``n_leapfrog``
    steps) or NumPyro's NUTS (vectorized chains, diagonal mass matrix, target 0.8; the
    time includes JAX's compile)."""
    post = _posterior(500, "cpu")
    init = _prior_draws(post, chains)
    if method == "probdl HMC":
        from probdl import mcmc

        t0 = time.perf_counter()
        theta, info = mcmc.hmc(
            post,
            init,
            samples,
            warmup,
            n_leapfrog=n_leapfrog,
            adapt_mass=True,
            generator=torch.Generator().manual_seed(0),
        )
        seconds = time.perf_counter() - t0
        return {
            **_ess_summary(post, theta, seconds, chains * info["n_grad_evals"]),
            "mean_steps": n_leapfrog,
        }
    _set_xla_threads()
    import jax
    import numpy as np
    from numpyro.infer import MCMC, NUTS

    log_prob = _jax_log_prob(post)
    kernel = NUTS(
        potential_fn=lambda p: -log_prob(p["theta"]),
        max_tree_depth=max_tree_depth,
        target_accept_prob=0.8,
    )
    run = MCMC(
        kernel,
        num_warmup=warmup,
        num_samples=samples,
        num_chains=chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    t0 = time.perf_counter()
    fields = ("num_steps",)
    run.warmup(
        jax.random.PRNGKey(0),
        init_params={"theta": init.numpy()},
        extra_fields=fields,
        collect_warmup=True,
    )
    warm_steps = np.asarray(run.get_extra_fields()["num_steps"])
    run.run(run.post_warmup_state.rng_key, extra_fields=fields)
    theta = jax.block_until_ready(run.get_samples(group_by_chain=True)["theta"])
    seconds = time.perf_counter() - t0
    steps = np.asarray(run.get_extra_fields(group_by_chain=True)["num_steps"])
    theta = torch.from_numpy(np.array(theta)).transpose(0, 1)  # (samples, chains, dim)
    out = _ess_summary(post, theta, seconds, int(warm_steps.sum() + steps.sum()))
    return {
        **out,
        "mean_steps": float(steps.mean()),
        "at_max_depth": float((steps >= 2**max_tree_depth - 1).mean()),
    }


ESS_METHODS = ["probdl HMC", "NumPyro NUTS"]


METHODS = [
    "batched chains",
    "batched chains, autograd",
    "per-chain loop",
    "Pyro HMC",
    "NumPyro HMC",
    "NumPyro HMC, vectorized",
]
ONE_CHAIN = {"Pyro HMC", "NumPyro HMC"}


def _rows(timings, device, args):
    """The best round of each method, with ratios to the fastest NumPyro row and to
    Pyro."""
    rows = []
    for method in METHODS:
        best = harness.best_round(timings[method], "grad_evals_per_s")
        chains = 1 if method in ONE_CHAIN else args.chains
        rows.append(
            {
                "method": method,
                "device": device,
                "chains": chains,
                "threads": args.threads,
                **best,
            }
        )
        rows[-1]["rounds"] = len(timings[method])
    peer = max(
        (r for r in rows if r["method"].startswith("NumPyro")),
        key=lambda r: r["grad_evals_per_s"],
    )
    pyro = next(r for r in rows if r["method"] == "Pyro HMC")
    harness.add_ratio(rows, "grad_evals_per_s", peer, "ratio")
    harness.add_ratio(rows, "grad_evals_per_s", pyro, "ratio_pyro")
    return rows, peer["method"]


def main(argv=None):
    parser = harness.arg_parser(
        __doc__, "few iterations; prints, writes nothing", threads=1
    )
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument(
        "--ess-warmup", type=int, default=200, help="warm-up iterations of the ESS runs"
    )
    parser.add_argument(
        "--ess-samples", type=int, default=200, help="draws per chain of the ESS runs"
    )
    args = parser.parse_args(argv)
    _require_numpyro()
    from probdl import config

    device = str(config.device(args.device))
    iterations = 3 if args.quick else 20
    timings = {m: [] for m in METHODS}
    for _ in range(
        args.repeat
    ):  # rounds over all methods; the fastest round counts (others share the CPU)
        for method in METHODS:
            chains = 1 if method in ONE_CHAIN else args.chains
            result = harness.measure(
                run,
                method,
                chains=chains,
                iterations=iterations,
                device=device,
                threads=args.threads,
            )
            timings[method].append(result)
            print(
                f"{method}: {result['grad_evals_per_s']:.0f} gradient evaluations/s",
                flush=True,
            )
    rows, peer = _rows(timings, device, args)
    ess_kw = (
        dict(chains=2, warmup=40, samples=20, n_leapfrog=10, max_tree_depth=4)
        if args.quick
        else dict(
            chains=4, warmup=args.ess_warmup, samples=args.ess_samples, n_leapfrog=50
        )
    )
    ess_rows = []
    for method in ESS_METHODS:
        result = harness.measure(
            run_ess, method, device="cpu", threads=args.threads, **ess_kw
        )
        ess_rows.append(
            {
                "method": method,
                "threads": args.threads,
                **{k: v for k, v in ess_kw.items()},
                **result,
            }
        )
        print(
            f"{method}: min bulk ESS {result['min_bulk_ess']:.0f} in "
            f"{result['seconds']:.0f} s",
            flush=True,
        )
    best = harness.best_round(ess_rows, "min_ess_per_s")
    harness.add_ratio(ess_rows, "min_ess_per_s", best, "ratio")
    ess_columns = [
        "method",
        "chains",
        "warmup",
        "samples",
        "grad_evals",
        "mean_steps",
        "seconds",
    ]
    ess_columns += ["min_bulk_ess", "max_rhat", "min_ess_per_s", "ratio"]
    columns = [
        "method",
        "device",
        "chains",
        "threads",
        "grad_evals_per_s",
        "ratio",
        "ratio_pyro",
        "peak_rss_mb",
    ]
    if args.quick:
        harness.print_table(rows, columns)
        print()
        harness.print_table(ess_rows, ess_columns)
        print("\n--quick: nothing written")
        return
    command = (
        "python benchmarks/bench_mcmc.py"
        + (f" --chains {args.chains}" if args.chains != 8 else "")
        + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
    )
    notes = (
        "HMC on the 1-50-50-1 ReLU regression network (500 points, 2701 weights), "
        f"step size {STEP_SIZE}, "
        f"10 leapfrog steps per iteration, {iterations} iterations, no adaptation, "
        f"best of {args.repeat} rounds. "
        "grad_evals_per_s: "
        "gradient evaluations of the full-data log posterior per second, summed over "
        "chains; ratio relative "
        f"to the strongest peer in the run ({peer}), ratio_pyro to Pyro's HMC on one "
        "chain with the same "
        "potential. NumPyro: HMC kernel with num_steps fixed and "
        "trajectory_length=None in one jitted "
        "lax.scan, JAX compile excluded (timed on two calls after a compiling one), "
        "XLA on the same "
        "thread count; its potential matches NetworkPosterior.log_prob and its "
        f"gradient to {RTOL} relative."
    )
    harness.report("mcmc", rows, columns, command=command, notes=notes)
    print()
    notes = (
        "The chapter's posterior (1-50-50-1 ReLU network, 500 points), "
        f"{ess_kw['chains']} chains "
        "from prior draws, one thread. probdl HMC: the chapter's sampler (diagonal "
        "mass matrix "
        f"adapted in the warm-up, dual averaging to 0.8, {ess_kw['n_leapfrog']} "
        "leapfrog steps, "
        "hand-written gradient). NumPyro NUTS: vectorized chains, diagonal mass "
        "matrix, target 0.8, "
        "maximum tree depth 10 (1023 steps); its seconds include JAX's compile. "
        "min_bulk_ess: the least rank-normalized bulk ESS of f(x) over x in "
        f"{list(ESS_X)} (the last "
        "beyond the data); max_rhat: the largest rank-normalized R-hat there; ratio: "
        "min_ess_per_s "
        "relative to the best row. mean_steps: leapfrog steps per iteration in the "
        "sampling phase."
    )
    harness.report("mcmc_ess", ess_rows, ess_columns, command=command, notes=notes)


if __name__ == "__main__":
    main()
