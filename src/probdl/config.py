"""Run profiles, device choice, seeding and the data directory.

One environment variable, ``PROBDL_PROFILE``, sizes every chapter:

=========  =====================================  ==========================================
profile    who runs it                            purpose
=========  =====================================  ==========================================
``smoke``  CI and nbval (the default when ``CI``  every cell runs in seconds; shapes, signs,
           is set and no profile is given)        training moves the objective
``book``   ``jupyter-book build .`` (the default) the figures and numbers of the rendered book,
                                                  minutes per chapter on a 2-core CPU
``paper``  a user with a GPU, or a patient one    the published architecture and training length
=========  =====================================  ==========================================

Chapters read their sizes from :data:`SIZES` through :func:`sizes` and print them, so a
reader always knows what was run.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

PROFILES = ("smoke", "book", "paper")
DEFAULT_PROFILE = "book"

#: The one table of sizes: chapter -> profile -> sizes. Each chapter owns its row.
#: Keys are the chapter's own (subset sizes, epochs, hidden units, Monte Carlo samples ...).
SIZES: dict[str, dict[str, dict]] = {
    "setup": {
        "smoke": {"n_show": 8, "n_train": 2_000, "epochs": 1, "max_test_error": 0.3, "n_regression": 100},
        "book": {"n_show": 12, "n_train": 50_000, "epochs": 3, "max_test_error": 0.1, "n_regression": 100},
        "paper": {"n_show": 12, "n_train": 50_000, "epochs": 3, "max_test_error": 0.1, "n_regression": 100},
    },
    # Each chapter fills in its own row (the keys are the chapter's own).
    "elbo": {"smoke": {"n_data": 20, "n_q": 200, "grid": 41, "mc_n": [10, 100, 1000], "n_mnist": 500, "n_valid": 200, "latent_dim": 4, "steps": 40, "n_evals": 1, "batch_size": 100, "lr": 3e-3},
             "book": {"n_data": 20, "n_q": 5000, "grid": 201, "mc_n": [10, 100, 1000, 10000, 100000], "n_mnist": 5000, "n_valid": 1000, "latent_dim": 16, "steps": 1500, "n_evals": 10, "batch_size": 100, "lr": 3e-3},
             "paper": {"n_data": 20, "n_q": 5000, "grid": 201, "mc_n": [10, 100, 1000, 10000, 100000], "n_mnist": 50000, "n_valid": 10000, "latent_dim": 16, "steps": 20000, "n_evals": 20, "batch_size": 100, "lr": 3e-3}},
    "gradients": {"smoke": {"n_data": 100, "n_grad": 20000, "var_S": [1, 4, 16, 64], "var_reps": 300, "n_sigmas": 6, "n_var": 5000, "vae_images": 50, "vae_reps": 40, "minibatch_reps": 1000, "batch_size": 10, "sga_steps": 2000, "rho0": 0.002, "t0": 250},
                  "book": {"n_data": 100, "n_grad": 200000, "var_S": [1, 4, 16, 64, 256], "var_reps": 2000, "n_sigmas": 15, "n_var": 50000, "vae_images": 100, "vae_reps": 400, "minibatch_reps": 20000, "batch_size": 10, "sga_steps": 10000, "rho0": 0.002, "t0": 250},
                  "paper": {"n_data": 100, "n_grad": 200000, "var_S": [1, 4, 16, 64, 256], "var_reps": 2000, "n_sigmas": 15, "n_var": 50000, "vae_images": 100, "vae_reps": 400, "minibatch_reps": 20000, "batch_size": 10, "sga_steps": 10000, "rho0": 0.002, "t0": 250}},
    "nade": {
        "smoke": {"n_train": 400, "n_valid": 200, "n_test": 300, "n_valid_eval": 200, "hidden": 16,
                  "batch_size": 50, "lr": 1e-2, "epochs": 6, "max_seconds": 15, "max_seconds_threshold": 10,
                  "eval_every": 4, "patience": 0, "mob_components": 5, "em_iterations": 5,
                  "fvsbn_epochs": 2, "fvsbn_lr": 1e-2, "fvsbn_l2": 1e-4, "fvsbn_batch": 50, "fvsbn_seconds": 10, "n_samples": 16},
        "book": {"n_train": None, "n_valid": None, "n_test": None, "n_valid_eval": 2000, "hidden": 500,
                 "batch_size": 100, "lr": 2e-3, "epochs": 20, "max_seconds": 390, "max_seconds_threshold": 180,
                 "eval_every": 500, "patience": 0, "mob_components": 100, "em_iterations": 20,
                 "fvsbn_epochs": 10, "fvsbn_lr": 1e-2, "fvsbn_l2": 1e-5, "fvsbn_batch": 500, "fvsbn_seconds": 60, "n_samples": 64},
        "paper": {"n_train": None, "n_valid": None, "n_test": None, "n_valid_eval": None, "hidden": 500,
                  "batch_size": 100, "lr": 1e-3, "epochs": 500, "max_seconds": None, "max_seconds_threshold": None,
                  "eval_every": 500, "patience": 10, "mob_components": 500, "em_iterations": 100,
                  "fvsbn_epochs": 200, "fvsbn_lr": 1e-3, "fvsbn_l2": 1e-5, "fvsbn_batch": 100, "fvsbn_seconds": None, "n_samples": 64},
    },
    "bbb_regression": {
        "smoke": {"n_train": 60, "hidden": 50, "epochs": 20, "batch_size": 30, "lr": 1e-2, "prior_sigma": 1.0,
                  "init_sigma": 1e-2, "init_noise": 0.15, "snapshots": 2, "snapshot_samples": 20,
                  "n_pred_samples": 50},
        "book": {"n_train": 500, "hidden": 50, "epochs": 400, "batch_size": 100, "lr": 1e-2, "prior_sigma": 1.0,
                 "init_sigma": 1e-2, "init_noise": 0.15, "snapshots": 4, "snapshot_samples": 100,
                 "n_pred_samples": 1000},
        "paper": {"n_train": 1000, "hidden": 50, "epochs": 1000, "batch_size": 100, "lr": 1e-2, "prior_sigma": 1.0,
                  "init_sigma": 1e-2, "init_noise": 0.15, "snapshots": 4, "snapshot_samples": 100,
                  "n_pred_samples": 1000},
    },
    "bbb_mnist": {
        "smoke": {"n_train": 1000, "n_valid": 500, "n_test": 1000, "hidden": 50, "batch_size": 100, "lr": 1e-3,
                  "epochs": {"plain": 1, "dropout": 1, "gaussian": 1, "mixture": 1},
                  "max_seconds": {"plain": 30, "dropout": 30, "gaussian": 30, "mixture": 30},
                  "gaussian_sigma": 1.0, "init_sigma": 1e-3, "mixture_grid": [(0.5, 0, 6)], "n_pred_samples": 5,
                  "n_uncertainty": 200, "prune_fractions": [0.0, 0.5, 0.95], "patience": None},
        "book": {"n_train": None, "n_valid": None, "n_test": None, "hidden": 400, "batch_size": 128, "lr": 1e-3,
                 "epochs": {"plain": 20, "dropout": 30, "gaussian": 25, "mixture": 27},
                 "max_seconds": {"plain": 90, "dropout": 130, "gaussian": 220, "mixture": 440},
                 "gaussian_sigma": 1.0, "init_sigma": 1e-3, "mixture_grid": [(0.5, 0, 6)], "n_pred_samples": 10,
                 "n_uncertainty": 1000, "prune_fractions": [0.0, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99], "patience": None},
        "paper": {"n_train": None, "n_valid": None, "n_test": None, "hidden": 1200, "batch_size": 128, "lr": 1e-3,
                  "epochs": {"plain": 300, "dropout": 300, "gaussian": 300, "mixture": 300},
                  "max_seconds": {"plain": None, "dropout": None, "gaussian": None, "mixture": None},
                  "gaussian_sigma": 1.0, "init_sigma": 1e-3,
                  "mixture_grid": [(pi, a, b) for pi in (0.25, 0.5, 0.75) for a in (0, 1, 2) for b in (6, 7, 8)],
                  "n_pred_samples": 100, "n_uncertainty": 10000,
                  "prune_fractions": [0.0, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99], "patience": 20},
    },
    "vae": {
        "smoke": {"binarization": "static", "n_train": 1000, "n_valid": 200, "n_test": 200, "n_hidden": 200,
                  "n_latent": 50, "batch_size": 100, "lr": 1e-3, "adam_eps": 1e-8, "schedule": "exp",
                  "epochs": 3, "max_seconds": 60, "k_eval": 100, "ks": [1, 10, 100], "eval_batch": 200,
                  "n_train_2d": 1000, "n_test_2d": 500, "epochs_2d": 3, "max_seconds_2d": 60,
                  "target_nats": 300.0, "min_gain": 5.0, "min_iw_gain": 0.1, "min_knn_acc": 0.15},
        "book": {"binarization": "static", "n_train": 50000, "n_valid": 2000, "n_test": 10000, "n_hidden": 200,
                 "n_latent": 50, "batch_size": 100, "lr": 1e-3, "adam_eps": 1e-8, "schedule": "exp",
                 "epochs": 150, "max_seconds": 580, "k_eval": 1000, "ks": [1, 10, 100, 1000], "eval_batch": 500,
                 "n_train_2d": 50000, "n_test_2d": 10000, "epochs_2d": 30, "max_seconds_2d": 150,
                 "target_nats": 95.0, "min_gain": 50.0, "min_iw_gain": 2.0, "min_knn_acc": 0.6},
        "paper": {"binarization": "dynamic", "n_train": 60000, "n_valid": 2000, "n_test": 10000, "n_hidden": 200,
                  "n_latent": 50, "batch_size": 20, "lr": 1e-3, "adam_eps": 1e-4, "schedule": "iwae",
                  "epochs": 3280, "max_seconds": None, "k_eval": 5000, "ks": [1, 10, 100, 1000, 5000],
                  "eval_batch": 100, "n_train_2d": 50000, "n_test_2d": 10000, "epochs_2d": 100,
                  "max_seconds_2d": None, "target_nats": 86.76, "min_gain": 50.0, "min_iw_gain": 2.0,
                  "min_knn_acc": 0.6},
    },
}


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def on_ci() -> bool:
    """True when the environment variable ``CI`` is set to something other than false/0."""
    return _truthy(os.environ.get("CI"))


def profile(name: str | None = None) -> str:
    """The active run profile: ``name`` if given, else ``PROBDL_PROFILE``, else ``smoke`` on CI
    and ``book`` otherwise. An unknown name raises a ValueError that lists the valid ones."""
    source = "argument"
    if name is None:
        name = os.environ.get("PROBDL_PROFILE")
        source = "PROBDL_PROFILE"
        if name is None or not name.strip():
            return "smoke" if on_ci() else DEFAULT_PROFILE
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} (from {source}); valid profiles are "
            f"{', '.join(PROFILES)}. Set it with e.g. PROBDL_PROFILE=smoke."
        )
    return key


def sizes(chapter: str, profile_name: str | None = None) -> dict:
    """The sizes of ``chapter`` in the active (or given) profile, as a fresh dict."""
    prof = profile(profile_name)
    if chapter not in SIZES:
        raise KeyError(f"no sizes for chapter {chapter!r}; known chapters: {', '.join(sorted(SIZES))}")
    return dict(SIZES[chapter][prof])


def quiet() -> bool:
    """Whether progress bars and live plots stay quiet: on CI, in the smoke profile, or when
    ``PROBDL_PROGRESS=0``."""
    env = os.environ.get("PROBDL_PROGRESS")
    if env is not None and env.strip():
        return not _truthy(env)
    return on_ci() or profile() == "smoke"


def device(name: str | None = None) -> torch.device:
    """The device to compute on: ``name``, else ``PROBDL_DEVICE``, else ``cuda`` when available,
    else ``cpu``. Asking for an unavailable CUDA device is an error, not a silent fallback."""
    name = name or os.environ.get("PROBDL_DEVICE") or None
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name.strip())
    except RuntimeError as exc:
        raise ValueError(
            f"PROBDL_DEVICE={name!r} is not a device torch knows (try cpu, cuda, cuda:1 or mps)"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but torch sees no CUDA GPU; unset PROBDL_DEVICE or use cpu")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r} was asked for but MPS is not available; unset PROBDL_DEVICE or use cpu")
    return dev


def seed_everything(seed: int = 0) -> int:
    """Seed Python's, NumPy's and torch's generators (all devices). Returns the seed."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Where the datasets live: ``PROBDL_DATA`` if set, else the repository's ``data/``."""
    env = os.environ.get("PROBDL_DATA")
    if env and env.strip():
        return Path(env).expanduser().resolve()
    return REPO_ROOT / "data"


def describe(chapter: str | None = None, seed: int | None = None) -> dict:
    """Print (and return) what this run is: profile, device, seed, torch version and, given a
    chapter, its sizes. Chapters call this in their first cell."""
    info = {"profile": profile(), "device": str(device()), "torch": torch.__version__,
            "threads": torch.get_num_threads()}
    if seed is not None:
        info["seed"] = seed
    if chapter is not None:
        info["sizes"] = sizes(chapter)
    for key, value in info.items():
        print(f"{key:>8}: {value}")
    return info
