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
    "elbo": {"smoke": {}, "book": {}, "paper": {}},
    "gradients": {"smoke": {}, "book": {}, "paper": {}},
    "nade": {"smoke": {}, "book": {}, "paper": {}},
    "bbb_regression": {"smoke": {}, "book": {}, "paper": {}},
    "bbb_mnist": {"smoke": {}, "book": {}, "paper": {}},
    "vae": {"smoke": {}, "book": {}, "paper": {}},
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
