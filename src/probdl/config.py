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

Each chapter's sizes and pass/fail targets live in ``probdl/sizes/<chapter>.py`` (``BOOK`` in
full, ``SMOKE`` and ``PAPER`` as overrides); chapters read them through :func:`sizes` and print
them with :func:`describe`, so a reader always knows what was run. This module holds only the
mechanism: the profile, the device, seeds, torch's thread count and the data directory.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import random
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

PROFILES = ("smoke", "book", "paper")
DEFAULT_PROFILE = "book"


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


CHAPTERS = (
    "setup",
    "elbo",
    "gradients",
    "nade",
    "bbb_regression",
    "bbb_mnist",
    "vae",
    "laplace",
    "inference_menu",
    "dropout",
    "gan",
    "mixture_posteriors",
)


def sizes(chapter: str, profile_name: str | None = None) -> dict:
    """The sizes of ``chapter`` in the active (or given) profile, as a fresh dict: the chapter's
    ``BOOK`` sizes with its ``SMOKE`` or ``PAPER`` overrides applied. An override of a key that
    ``BOOK`` does not have is an error (a typo would otherwise be ignored), and so is one of
    another type (a string for a number, a float where BOOK counts with an int)."""
    prof = profile(profile_name)
    try:
        module = importlib.import_module(f"probdl.sizes.{chapter}")
    except ModuleNotFoundError as exc:
        if exc.name != f"probdl.sizes.{chapter}":
            raise
        known = [c for c in CHAPTERS if importlib.util.find_spec(f"probdl.sizes.{c}") is not None]
        raise KeyError(f"no sizes for chapter {chapter!r}; known chapters: {', '.join(known)}") from None
    out = dict(module.BOOK)
    if prof != "book":
        overrides = getattr(module, prof.upper(), {})
        unknown = sorted(set(overrides) - set(out))
        if unknown:
            raise KeyError(
                f"probdl/sizes/{chapter}.py: {prof.upper()} overrides {unknown}, which BOOK does not define"
            )
        for key, value in overrides.items():
            if not _same_kind(out[key], value):
                raise TypeError(
                    f"probdl/sizes/{chapter}.py: {prof.upper()}[{key!r}] is "
                    f"{type(value).__name__} {value!r}, but BOOK's is {type(out[key]).__name__}"
                )
        out.update(overrides)
    return out


def _same_kind(book, override) -> bool:
    """An override has the type of the BOOK value it replaces (an int may stand for a float,
    a tuple for a list; a bool is not a number here)."""
    if book is None or override is None:  # a check switched off in one profile
        return True
    if isinstance(book, bool) or isinstance(override, bool):
        return isinstance(book, bool) and isinstance(override, bool)
    if isinstance(book, float):
        return isinstance(override, (int, float))
    if isinstance(book, (list, tuple)):
        return isinstance(override, (list, tuple))
    return isinstance(override, type(book))


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
        raise ValueError(
            f"device {name!r} was asked for but torch sees no CUDA GPU; unset PROBDL_DEVICE or use cpu"
        )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(
            f"device {name!r} was asked for but MPS is not available; unset PROBDL_DEVICE or use cpu"
        )
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


#: Models with fewer parameters than this train on one intra-op thread: their matrix products
#: are too small to split, and two threads on a busy 2-core machine make them many times slower
#: (``benchmarks/bench_threads.py`` measures it).
SMALL_MODEL_PARAMETERS = 100_000


def threads_for(model: torch.nn.Module) -> int:
    """The intra-op thread count to train ``model`` with: 1 for small models (fewer than
    :data:`SMALL_MODEL_PARAMETERS` parameters), else torch's current setting. ``PROBDL_THREADS``
    overrides both."""
    env = os.environ.get("PROBDL_THREADS")
    if env and env.strip():
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"PROBDL_THREADS={env!r} must be a positive int") from None
        if n < 1:
            raise ValueError(f"PROBDL_THREADS={env!r} must be a positive int")
        return n
    n_params = sum(p.numel() for p in model.parameters())
    return 1 if n_params < SMALL_MODEL_PARAMETERS else torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with ``n`` intra-op threads, restoring the previous count afterwards."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"thread count must be a positive int, got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


class timer:
    """``with config.timer() as t: ...`` then ``t.seconds`` is the block's wall-clock time
    (``time.perf_counter``); the chapters report such times as ratios, never assert them."""

    def __enter__(self) -> "timer":
        self.seconds, self._start = None, time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start


REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Where the datasets live: ``PROBDL_DATA`` if set, else the repository's ``data/``."""
    env = os.environ.get("PROBDL_DATA")
    if env and env.strip():
        return Path(env).expanduser().resolve()
    return REPO_ROOT / "data"


def describe(chapter: str | None = None, seed: int | None = None) -> dict:
    """Print (and return) what this run is: profile, device, seed, torch version and threads and,
    given a chapter, its sizes as a short table. Chapters call this in their first cell."""
    info = {
        "profile": profile(),
        "device": str(device()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if seed is not None:
        info["seed"] = seed
    print("  ".join(f"{key}: {value}" for key, value in info.items()))
    if chapter is not None:
        info["sizes"] = sizes(chapter)
        print(format_table(info["sizes"]))
    return info


def format_table(values: dict, columns: int = 3, width: int = 88) -> str:
    """``key  value`` pairs laid out in up to ``columns`` aligned columns no wider than ``width``
    characters in all (the book's column shows 88); a long value gets a row of its own, wrapped
    under itself within ``width``."""
    cells = [(str(k), repr(v) if not isinstance(v, float) else f"{v:g}") for k, v in values.items()]
    short = [c for c in cells if len(c[0]) + len(c[1]) + 2 <= width // columns - 2]
    long = [c for c in cells if c not in short]
    kw = max((len(k) for k, _ in short), default=0)
    vw = max((len(v) for _, v in short), default=0)
    ncol = max(1, min(columns, width // (kw + vw + 4)))
    rows = [short[i : i + ncol] for i in range(0, len(short), ncol)]
    lines = ["    ".join(f"{k:<{kw}}  {v:<{vw}}" for k, v in row).rstrip() for row in rows]
    for k, v in long:
        pad = max(kw, len(k)) + 2
        lines += textwrap.wrap(v, width, initial_indent=f"{k:<{pad}}", subsequent_indent=" " * pad)
    return "\n".join(lines)
