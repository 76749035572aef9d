"""Plots the chapters share: training curves (live while training), image grids, predictive bands.

Every function draws with matplotlib and returns the figure; nothing here picks a backend, so the
same code runs in a notebook, in the book build and headless (``MPLBACKEND=Agg``) in tests.
"""

from __future__ import annotations

import math
import time
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _np(x) -> np.ndarray:
    if torch.is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def smooth(values, window: int) -> np.ndarray:
    """A trailing moving average (the first points average what there is)."""
    v = _np(values).astype(float)
    if window <= 1 or len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_curves(
    history,
    names: Sequence[str],
    *,
    evals: Sequence[str] = (),
    smooth_window: int | None = None,
    axes=None,
    title: str | None = None,
    xlabel: str = "step",
):
    """One panel per name: the step term of that name (raw, and smoothed over ``smooth_window``
    steps) and/or the evaluation term of that name (markers). Names in ``evals`` that are not in
    ``names`` get panels of their own. A name that is neither recorded is a KeyError."""
    panels = list(names) + [e for e in evals if e not in names]
    if not panels:
        raise ValueError("plot_curves needs at least one term name")
    step_names = set(history.steps[-1]) if history.steps else set()
    eval_names = set().union(*history.evals) if history.evals else set()
    missing = [p for p in panels if p not in step_names and p not in eval_names]
    if missing:
        raise KeyError(
            f"cannot plot {missing}: recorded step terms {sorted(step_names - {'step', 'epoch'})}, "
            f"evaluation terms {sorted(eval_names - {'step'})}"
        )
    if axes is None:
        ncol = min(len(panels), 4)
        nrow = math.ceil(len(panels) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.8 * nrow), squeeze=False)
        axes = axes.ravel()
    else:
        axes = np.ravel(axes)
        fig = axes[0].figure
    steps = _np(history.values("step")) if history.steps else np.zeros(0)
    window = smooth_window or max(1, len(steps) // 50)
    for ax, name in zip(axes, panels):
        ax.clear()
        both = name in step_names and name in eval_names
        if name in step_names:
            v = _np(history.values(name))
            ax.plot(steps, v, color="C0", alpha=0.25, lw=0.8)
            ax.plot(steps, smooth(v, window), color="C0", lw=1.5, label="training steps" if both else None)
        if name in eval_names:
            ev = [r for r in history.evals if name in r]
            ax.plot(
                [r["step"] for r in ev],
                [r[name] for r in ev],
                "o-",
                color="C3",
                ms=3,
                label="evaluation" if both else None,
            )
        if both:
            ax.legend(fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:
        return False


class LiveCurves:
    """Training curves that redraw in place every ``every_s`` seconds in a notebook (through an
    IPython display handle) and leave one final figure behind: live in an interactive session,
    a single figure in an executed book. Outside a notebook it only keeps ``self.fig``."""

    def __init__(
        self, names: Sequence[str], *, evals: Sequence[str] = (), every_s: float = 3.0, live: bool = True
    ):
        self.names = list(names)
        self.evals = list(evals)
        self.every_s = every_s
        self.live = live and _in_notebook()
        self.fig = None
        self.handle = None
        self._last = 0.0

    def _draw(self, history):
        if self.fig is None:
            self.fig = plot_curves(history, self.names, evals=self.evals)
        else:
            plot_curves(history, self.names, evals=self.evals, axes=self.fig.axes)

    def update(self, history) -> None:
        if not self.live or not history.steps:
            return
        recorded = set(history.steps[-1]).union(*history.evals) if history.evals else set(history.steps[-1])
        if any(n not in recorded for n in self.names):
            return  # e.g. an evaluation term before the first evaluation
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        self._draw(history)
        from IPython.display import display

        if self.handle is None:
            self.handle = display(self.fig, display_id=True)
        else:
            self.handle.update(self.fig)

    def close(self, history) -> None:
        if not history.steps:
            return
        self._draw(history)
        if _in_notebook():
            from IPython.display import display

            if self.handle is None:
                display(self.fig)
            else:
                self.handle.update(self.fig)
            plt.close(self.fig)  # shown once through the handle, not again by the inline backend


def image_grid(
    images,
    nrow: int | None = None,
    *,
    shape: tuple[int, int] = (28, 28),
    ax=None,
    title: str | None = None,
    cmap: str = "gray",
    pad: int = 1,
):
    """Draw a batch of images (N, H*W) or (N, H, W) as one grid; returns the figure."""
    x = _np(images).astype(float)
    if x.ndim == 2:
        if x.shape[1] != shape[0] * shape[1]:
            raise ValueError(f"images of {x.shape[1]} pixels do not reshape to {shape}; pass shape=")
        x = x.reshape(-1, *shape)
    if x.ndim != 3:
        raise ValueError(f"image_grid expects (N, H*W) or (N, H, W), got shape {tuple(_np(images).shape)}")
    n, h, w = x.shape
    ncol = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / ncol))
    canvas = np.ones((rows * (h + pad) + pad, ncol * (w + pad) + pad))
    for i in range(n):
        r, c = divmod(i, ncol)
        canvas[
            pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w
        ] = x[i]
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(2.0, 0.45 * ncol), max(2.0, 0.45 * rows)))
    else:
        fig = ax.figure
    ax.imshow(canvas, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def image_rows(rows: Mapping[str, object], *, shape: tuple[int, int] = (28, 28), title: str | None = None):
    """Several labelled rows of images, e.g. ``{"grey": x, "threshold": xt, ...}``, one row each,
    for side-by-side comparisons (originals and reconstructions, binarizations)."""
    if not rows:
        raise ValueError("image_rows needs at least one row")
    n = max(len(_np(v)) for v in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(max(4.0, 0.6 * n), 0.75 * len(rows) + 0.3), squeeze=False)
    for ax, (label, imgs) in zip(axes[:, 0], rows.items()):
        image_grid(imgs, nrow=n, shape=shape, ax=ax)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def predictive_band(
    x,
    mean,
    std,
    *,
    ax=None,
    x_train=None,
    y_train=None,
    truth=None,
    ks=(1, 2),
    label: str = "predictive mean",
    color: str = "C0",
    title: str | None = None,
):
    """A predictive mean with shaded bands of ``k`` standard deviations for each k in ``ks``,
    the training points and the true curve (a callable or an array) when given."""
    x, mean, std = (_np(v).reshape(-1) for v in (x, mean, std))
    if not (len(x) == len(mean) == len(std)):
        raise ValueError(f"x, mean and std need the same length; got {len(x)}, {len(mean)}, {len(std)}")
    order = np.argsort(x)
    x, mean, std = x[order], mean[order], std[order]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
    else:
        fig = ax.figure
    for k in sorted(ks, reverse=True):
        ax.fill_between(
            x, mean - k * std, mean + k * std, color=color, alpha=0.15 + 0.1 / k, lw=0, label=f"$\\pm{k}$ sd"
        )
    ax.plot(x, mean, color=color, lw=1.8, label=label)
    if truth is not None:
        t = _np(truth(torch.as_tensor(x))).reshape(-1) if callable(truth) else _np(truth).reshape(-1)[order]
        ax.plot(x, t, "k--", lw=1, label="true curve")
    if x_train is not None and y_train is not None:
        ax.plot(
            _np(x_train).reshape(-1),
            _np(y_train).reshape(-1),
            ".",
            color="k",
            ms=3,
            alpha=0.6,
            label="training data",
        )
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def reliability_diagram(probs: Mapping[str, torch.Tensor], y: torch.Tensor, *, n_bins: int = 15, ax=None):
    """Accuracy against confidence for one or more models' class probabilities (name -> (N, C)),
    binned as in :func:`probdl.metrics.reliability`; the diagonal is perfect calibration, and each
    label carries the model's expected calibration error."""
    from .metrics import ece, reliability

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="calibrated")
    for name, p in probs.items():
        r = reliability(p, y, n_bins)
        used = _np(r["count"] > 0)
        ax.plot(
            _np(r["confidence"])[used],
            _np(r["accuracy"])[used],
            "o-",
            ms=3,
            label=f"{name} (ECE {100 * ece(p, y, n_bins):.2f} %)",
        )
    ax.set(xlabel="confidence (top probability)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8, loc="upper left")
    return ax.figure
