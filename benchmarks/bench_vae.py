"""Benchmark: one training epoch of a VAE, the widely used PyTorch example against
probdl.

Baseline: the 784-400-20 VAE of the PyTorch examples repository (examples/vae/main.py),
written out plainly below: a DataLoader over ``torchvision.datasets.MNIST`` with a
per-item ``ToTensor`` transform, batches of 128, Adam(1e-3), the loss BCE(sum) + KL. One
change, so that both sides optimise the same objective on the same data: the per-item
transform also binarizes the image dynamically (a Bernoulli draw per pixel), because a
Bernoulli likelihood is only a likelihood for binary pixels; ``probdl`` does the same
per minibatch (``transform=binarize_dynamic``).

probdl: the same architecture, ``vae.VAE(784, 400, 20, n_layers=1)``, with the whole
training set as one tensor on the device and ``probdl.train.fit``, once with fit's
default optimizer (Adam, PyTorch's default multi-tensor implementation) and once with
``Adam(fused=True)`` as the chapter uses it (one fused kernel per step instead of a
dozen; the same algorithm). Both are measured at 1 and at 2 torch threads
(``--threads``).

Both report the seconds of one epoch over the 60,000 training images (data-set
construction excluded on both sides) and the test ELBO per image after that epoch on one
fixed dynamic binarization of the test set. Then the 784-200-200-50 model of the
chapter: its epoch on the static binarized MNIST (50,000 images, batches of 100) and the
time of the K = 1000 importance-sampled evaluation.

    .venv/bin/python benchmarks/bench_vae.py            # the full run (a few minutes)
    .venv/bin/python benchmarks/bench_vae.py --quick    # a tiny run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

BATCH = 128


def _test_set(n_test, device):
    from probdl import data

    x, _ = data.load_mnist("test", n=n_test, device=device)
    return data.binarize_dynamic(
        x, generator=torch.Generator(device=device).manual_seed(1234)
    )


# --- the baseline: the PyTorch example, written plainly -------------------------------


class ExampleVAE(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 400)
        self.fc21 = torch.nn.Linear(400, 20)
        self.fc22 = torch.nn.Linear(400, 20)
        self.fc3 = torch.nn.Linear(20, 400)
        self.fc4 = torch.nn.Linear(400, 784)

    def encode(self, x):
        h1 = torch.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = torch.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def example_loss(recon_x, x, mu, logvar):
    bce = torch.nn.functional.binary_cross_entropy(
        recon_x, x.view(-1, 784), reduction="sum"
    )
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def example_elbo(model, x):
    """Per-image ELBO (one sample, closed-form KL), the same estimator as probdl's."""
    with torch.no_grad():
        recon, mu, logvar = model(x)
        bce = torch.nn.functional.binary_cross_entropy(recon, x, reduction="none").sum(
            -1
        )
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)
        return float((-bce - kld).mean())


def run_example(n_train=None, n_test=10000, seed=0, device="cpu"):
    from torchvision import datasets, transforms

    from probdl import config, data

    data.load_mnist(
        "test", n=1
    )  # verifies and extracts the files; torchvision then reads them offline
    torch.manual_seed(seed)
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Lambda(torch.bernoulli)]
    )
    dataset = datasets.MNIST(
        root=str(config.data_dir()), train=True, download=True, transform=transform
    )
    if n_train is not None:
        dataset = torch.utils.data.Subset(dataset, range(n_train))
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
    model = ExampleVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_test = _test_set(n_test, device)
    start = time.perf_counter()
    model.train()
    for x, _ in loader:
        x = x.to(device)
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        loss = example_loss(recon, x, mu, logvar)
        loss.backward()
        optimizer.step()
    harness.sync(device)
    seconds = time.perf_counter() - start
    model.eval()
    return {
        "epoch_s": seconds,
        "examples_per_s": len(dataset) / seconds,
        "test_elbo": example_elbo(model, x_test),
    }


# --- probdl ---------------------------------------------------------------------------


def run_probdl(n_train=None, n_test=10000, seed=0, fused=False, device="cpu"):
    from probdl import data, vae
    from probdl.train import fit

    torch.manual_seed(seed)
    x_train, _ = data.load_mnist("train_full", n=n_train, device=device)
    x_test = _test_set(n_test, device)
    model = vae.VAE(784, 400, 20, n_layers=1).to(device)
    optimizer = (
        torch.optim.Adam(model.parameters(), lr=1e-3, fused=True) if fused else None
    )  # None: fit's Adam
    hist = fit(
        model,
        vae.elbo_objective,
        x_train,
        epochs=1,
        batch_size=BATCH,
        lr=1e-3,
        optimizer=optimizer,
        transform=data.binarize_dynamic,
        progress=False,
    )
    return {
        "epoch_s": hist.seconds,
        "examples_per_s": len(x_train) / hist.seconds,
        "test_elbo": vae.evaluate(model, x_test),
    }


def run_chapter_model(n_train=None, n_eval=1000, k=1000, seed=0, device="cpu"):
    from probdl import data, vae
    from probdl.train import fit

    torch.manual_seed(seed)
    x_train = data.load_binarized_mnist("train", n=n_train, device=device)
    x_test = data.load_binarized_mnist("test", n=n_eval, device=device)
    model = vae.VAE(784, 200, 50).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=1e-3, fused=True
    )  # as the chapter trains it
    hist = fit(
        model,
        vae.elbo_objective,
        x_train,
        epochs=1,
        batch_size=100,
        optimizer=optimizer,
        progress=False,
    )
    start = time.perf_counter()
    ll = model.log_marginal(x_test, k, batch_size=500)
    harness.sync(device)
    eval_s = time.perf_counter() - start
    return {
        "epoch_s": hist.seconds,
        "examples_per_s": len(x_train) / hist.seconds,
        "test_elbo": vae.evaluate(model, x_test),
        "eval_s": eval_s,
        "eval_images": n_eval,
        "k": k,
        "test_ll": float(ll.mean()),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run (subsets, K = 100)"
    )
    parser.add_argument(
        "--device", default=None, help="cpu or cuda (default: probdl.config.device())"
    )
    parser.add_argument(
        "--seeds", type=int, default=2, help="repetitions of the epoch comparison"
    )
    parser.add_argument(
        "--threads",
        default="1,2",
        help="comma-separated torch thread counts, each measured in turn (default 1,2)",
    )
    args = parser.parse_args(argv)
    from probdl import config

    device = str(config.device(args.device))
    n_train = 3000 if args.quick else None
    n_test = 1000 if args.quick else 10000
    seeds = 1 if args.quick else args.seeds
    k, n_eval = (100, 200) if args.quick else (1000, 1000)
    thread_counts = [int(t) for t in str(args.threads).split(",")]
    labels = {
        "baseline": "PyTorch example 784-400-20 (DataLoader, per-item ToTensor)",
        "probdl": "probdl 784-400-20 (tensors on device, fit, its default Adam)",
        "probdl_fused": "probdl 784-400-20 (tensors on device, fit, Adam fused=True)",
    }

    rows, speedups, summary = [], {}, []
    for threads in thread_counts:
        results = {"baseline": [], "probdl": [], "probdl_fused": []}
        for seed in range(seeds):
            for name, fn, kw in (
                ("baseline", run_example, {}),
                ("probdl", run_probdl, {}),
                ("probdl_fused", run_probdl, {"fused": True}),
            ):
                results[name].append(
                    harness.measure(
                        fn,
                        n_train=n_train,
                        n_test=n_test,
                        seed=seed,
                        device=device,
                        threads=threads,
                        **kw,
                    )
                )
        base_eps = sum(r["examples_per_s"] for r in results["baseline"]) / seeds
        for name, runs in results.items():
            for seed, r in enumerate(runs):
                rows.append(
                    {
                        "method": labels[name],
                        "threads": threads,
                        "seed": seed,
                        "epoch_s": r["epoch_s"],
                        "examples_per_s": r["examples_per_s"],
                        "ratio": r["examples_per_s"] / base_eps,
                        "test_elbo": r["test_elbo"],
                        "peak_rss_mb": r["peak_rss_mb"],
                    }
                )
        chap = harness.measure(
            run_chapter_model,
            n_train=n_train,
            n_eval=n_eval,
            k=k,
            device=device,
            threads=threads,
        )
        rows.append(
            {
                "method": "probdl 784-200-200-50, static binarized (batch 100)",
                "threads": threads,
                "seed": 0,
                "epoch_s": chap["epoch_s"],
                "examples_per_s": chap["examples_per_s"],
                "ratio": chap["examples_per_s"] / base_eps,
                "test_elbo": chap["test_elbo"],
                "peak_rss_mb": chap["peak_rss_mb"],
            }
        )
        rows.append(
            {
                "method": f"784-200-200-50 evaluation, K = {k} (images/s)",
                "threads": threads,
                "seed": 0,
                "epoch_s": chap["eval_s"],
                "examples_per_s": chap["eval_images"] / chap["eval_s"],
                "ratio": "-",
                "test_elbo": chap["test_ll"],
                "peak_rss_mb": chap["peak_rss_mb"],
            }
        )
        speed = {
            name: (sum(r["examples_per_s"] for r in results[name]) / seeds) / base_eps
            for name in ("probdl", "probdl_fused")
        }
        speedups[threads] = speed
        elbo = {
            name: sum(r["test_elbo"] for r in runs) / seeds
            for name, runs in results.items()
        }
        summary.append(
            f"{threads} thread(s): probdl {speed['probdl']:.2f}x (fit's default Adam) "
            "and "
            f"{speed['probdl_fused']:.2f}x (fused Adam) the baseline's examples per "
            "second, "
            f"mean test ELBO {elbo['probdl']:.2f} and {elbo['probdl_fused']:.2f} "
            "(probdl) vs "
            f"{elbo['baseline']:.2f} (baseline); "
            f"K = {k} evaluation {chap['eval_s'] / n_eval * 10000:.0f} s per 10,000 "
            "test images"
        )

    import os

    notes = (
        f"One epoch over {'3,000' if args.quick else '60,000'} dynamically binarized "
        "MNIST training images, "
        f"batches of {BATCH}, Adam(1e-3); test ELBO per image (nats) on {n_test} test "
        "images, one fixed "
        "dynamic binarization; ratio = examples per second over the baseline's at the "
        "same thread count. "
        + "; ".join(summary)
        + ". The evaluation rows: the K-sample importance-sampled estimate on "
        f"{n_eval} static binarized test images after one epoch (test_elbo holds that "
        "estimate, epoch_s "
        "the evaluation's seconds). Load average at the end: "
        + ", ".join(f"{v:.1f}" for v in os.getloadavg())
        + "."
    )
    command = (
        "python benchmarks/bench_vae.py"
        + (" --quick" if args.quick else "")
        + (f" --threads {args.threads}" if str(args.threads) != "1,2" else "")
    )
    columns = [
        "method",
        "threads",
        "seed",
        "epoch_s",
        "examples_per_s",
        "ratio",
        "test_elbo",
        "peak_rss_mb",
    ]
    if (
        args.quick
    ):  # a smoke test of the script: print, do not overwrite the committed results
        harness.print_table(rows, columns)
    else:
        harness.report(
            "vae",
            rows,
            columns,
            command=command,
            notes=notes,
            extra={"speedup": {str(t): v for t, v in speedups.items()}},
        )
    print(notes)


if __name__ == "__main__":
    main()
