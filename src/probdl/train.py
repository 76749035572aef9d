"""The one training loop every chapter uses.

``fit(model, objective, data, ...)`` draws shuffled minibatches from tensors that already sit on
the device (no DataLoader, no per-item transforms), calls ``objective(model, *batch)``, which
returns a dict of named scalar terms with ``"loss"`` the one to minimise, takes an optimizer
step, and records every term per step in a :class:`History`. Optional: an evaluation callback
every k steps (with early stopping on one of its terms), a learning-rate scheduler stepped per
epoch, a per-batch transform (dynamic binarization), checkpoints, a progress bar and a live plot.
"""
from __future__ import annotations

import copy
import math
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from . import config


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, an objective without a loss)."""


class History:
    """What a run recorded: ``steps`` (one dict of floats per optimizer step, with ``step`` and
    ``epoch``) and ``evals`` (one dict per evaluation, with ``step``)."""

    def __init__(self):
        self.steps: list[dict] = []
        self.evals: list[dict] = []
        self.seconds: float = 0.0
        self.best: dict | None = None
        self.stopped_early: bool = False

    def __len__(self) -> int:
        return len(self.steps)

    def names(self) -> list[str]:
        return [k for k in (self.steps[0] if self.steps else {}) if k not in ("step", "epoch")]

    def values(self, name: str, evals: bool = False) -> torch.Tensor:
        """The recorded values of one term, as a float64 tensor (steps, or evaluations)."""
        rows = self.evals if evals else self.steps
        if rows and name not in rows[-1]:
            where = "evaluations" if evals else "steps"
            raise KeyError(f"no term {name!r} in the {where}; recorded: {', '.join(rows[-1])}")
        return torch.tensor([r[name] for r in rows if name in r], dtype=torch.float64)

    def mean(self, name: str, last: int | None = None) -> float:
        """The mean of a step term over the last ``last`` steps (all steps if None)."""
        v = self.values(name)
        if last is not None:
            v = v[-last:]
        return float(v.mean())

    def __repr__(self) -> str:
        return f"History({len(self.steps)} steps, {len(self.evals)} evaluations, {self.seconds:.1f} s)"


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    **extra) -> Path:
    """Save ``state_dict`` s (and plain extras: numbers, strings) with :func:`torch.save`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), **extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    torch.save(state, path)
    return path


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    map_location=None) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: tensors and
    plain values only, no pickled code). Returns the extras."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(state.pop("model"))
    opt_state = state.pop("optimizer", None)
    if optimizer is not None and opt_state is not None:
        optimizer.load_state_dict(opt_state)
    return state


def _scalar(value) -> float:
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise TrainingError(f"terms must be scalars; got a tensor of shape {tuple(value.shape)} (take its mean)")
        return value.detach().item()
    return float(value)


def _as_tuple(data) -> tuple[torch.Tensor, ...]:
    if torch.is_tensor(data):
        data = (data,)
    data = tuple(data)
    if not data or not all(torch.is_tensor(t) for t in data):
        raise TypeError("data must be a tensor or a tuple of tensors (e.g. (x, y))")
    n = len(data[0])
    for t in data:
        if len(t) != n:
            raise ValueError(f"all data tensors need the same first dimension; got {[len(t) for t in data]}")
    if n == 0:
        raise ValueError("data is empty")
    return data


def _progress_bar(total: int, desc: str | None, enabled: bool):
    from tqdm.std import tqdm  # plain text: renders in a terminal, a notebook and static HTML

    return tqdm(total=total, desc=desc, disable=not enabled, mininterval=1.0, file=sys.stderr,
                dynamic_ncols=True, leave=True)


def fit(model: torch.nn.Module,
        objective: Callable[..., Mapping[str, torch.Tensor]],
        data,
        *,
        epochs: float | None = None,
        steps: int | None = None,
        batch_size: int = 100,
        optimizer: torch.optim.Optimizer | None = None,
        lr: float = 1e-3,
        scheduler=None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        eval_fn: Callable[[torch.nn.Module], Mapping[str, float]] | None = None,
        eval_every: int | None = None,
        early_stopping: tuple[str, int] | None = None,
        clip_grad_norm: float | None = None,
        max_seconds: float | None = None,
        checkpoint: str | Path | None = None,
        plot: Sequence[str] | None = None,
        plot_every_s: float = 3.0,
        progress: bool | None = None,
        desc: str | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None) -> History:
    """Train ``model`` by minimising ``objective(model, *batch)["loss"]``.

    data:       a tensor or tuple of tensors with a common first dimension; moved to ``device``
                (default: the model's device) once, then indexed per minibatch.
    epochs / steps: how long (one of them; ``epochs`` may be fractional).
    optimizer:  any ``torch.optim`` optimizer; default Adam(lr).
    scheduler:  a ``torch.optim.lr_scheduler`` object, stepped after every epoch.
    transform:  applied to the first tensor of each minibatch (e.g. ``binarize_dynamic``).
    eval_fn:    called as ``eval_fn(model)`` under ``torch.no_grad()`` and ``model.eval()`` every
                ``eval_every`` steps (default: once per epoch) and at the end; returns a dict of
                floats recorded in ``history.evals``.
    early_stopping: ``(term, patience)``: stop after ``patience`` evaluations without a new
                minimum of ``eval_fn``'s ``term``, and restore the parameters of the best one.
    max_seconds: stop after this much wall time (a safety limit; say so when it triggers).
    checkpoint: a path; the model and optimizer state are saved there at every evaluation and
                at the end (load with :func:`load_checkpoint`).
    plot:       names of terms to draw; live while training in an interactive notebook, and the
                final figure at the end (see :class:`probdl.plotting.LiveCurves`).
    progress:   show a progress bar (default: not on CI or in the smoke profile).
    generator:  a ``torch.Generator`` for the minibatch order (default: the global one).
    """
    data = _as_tuple(data)
    n = len(data[0])
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs= or steps=")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = min(batch_size, n)
    steps_per_epoch = math.ceil(n / batch_size)
    total = int(steps) if steps is not None else max(1, round(epochs * steps_per_epoch))
    if eval_every is None:
        eval_every = steps_per_epoch
    if early_stopping is not None and eval_fn is None:
        raise ValueError("early_stopping needs an eval_fn that returns the term it watches")

    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    data = tuple(t.to(device) for t in data)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if progress is None:
        progress = not config.quiet()

    live = None
    if plot:
        from .plotting import LiveCurves

        live = LiveCurves(plot, every_s=plot_every_s, live=not config.quiet())

    history = History()
    best_value, best_state, since_best = math.inf, None, 0
    start = time.perf_counter()
    bar = _progress_bar(total, desc, progress)
    perm_device = data[0].device

    def evaluate(step: int) -> bool:
        """Run eval_fn; return True when early stopping says stop."""
        nonlocal best_value, best_state, since_best
        model.eval()
        with torch.no_grad():
            result = {k: _scalar(v) for k, v in eval_fn(model).items()}
        model.train()
        result["step"] = step
        history.evals.append(result)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, step=step)
        if early_stopping is not None:
            term, patience = early_stopping
            if term not in result:
                raise KeyError(f"early_stopping watches {term!r}, which eval_fn does not return ({', '.join(result)})")
            if result[term] < best_value:
                best_value, since_best = result[term], 0
                best_state = copy.deepcopy(model.state_dict())
                history.best = dict(result)
            else:
                since_best += 1
                if since_best >= patience:
                    return True
        return False

    model.train()
    step, epoch, stop = 0, 0, False
    try:
        while step < total and not stop:
            order = torch.randperm(n, generator=generator).to(perm_device)
            for i in range(steps_per_epoch):
                if step >= total:
                    break
                idx = order[i * batch_size:(i + 1) * batch_size]
                batch = [t[idx] for t in data]
                if transform is not None:
                    batch[0] = transform(batch[0])
                terms = objective(model, *batch)
                if "loss" not in terms:
                    raise TrainingError(f"the objective must return a dict with 'loss'; it returned {', '.join(terms)}")
                loss = terms["loss"]
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"the loss is {loss.item()} at step {step} (epoch {epoch}); lower the learning "
                        "rate, check the data (binary where a Bernoulli likelihood is used), or clip gradients")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
                step += 1
                row = {"step": step, "epoch": epoch}
                row.update({k: _scalar(v) for k, v in terms.items()})
                history.steps.append(row)
                bar.update(1)
                if progress and step % 10 == 0:
                    bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
                if live is not None:
                    live.update(history)
                if eval_fn is not None and step % eval_every == 0 and step < total:
                    if evaluate(step):
                        stop = True
                        history.stopped_early = True
                        break
                if max_seconds is not None and time.perf_counter() - start > max_seconds:
                    stop = True
                    break
            epoch += 1
            if scheduler is not None:
                scheduler.step()
        if eval_fn is not None and not history.stopped_early:
            evaluate(step)
    finally:
        bar.close()
        history.seconds = time.perf_counter() - start
        if live is not None:
            live.close(history)
    if max_seconds is not None and step < total and not history.stopped_early:
        print(f"fit: stopped at the time limit of {max_seconds:.0f} s after {step} of {total} steps",
              file=sys.stderr)
    if best_state is not None:
        model.load_state_dict(best_state)
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, optimizer, step=step)
    return history
