"""The one training loop every chapter uses.

``fit(model, objective, data, ...)`` draws shuffled minibatches (:func:`minibatches`) from
tensors that already sit on the device (no DataLoader, no per-item transforms), calls
``objective(model, *batch)``, which returns a dict of named scalar terms with ``"loss"`` the one
to minimise, takes an optimizer step, and records every term per step in a :class:`History`.

Options of :func:`fit`, in four groups (keyword-only):

- ``data``: a tensor or tuple of tensors with a common first dimension; moved to ``device``
  (default: the model's device) once, then indexed per minibatch.

How long, and one step:

- ``epochs`` / ``steps``: how long (exactly one; ``epochs`` may be fractional); ``batch_size``.
- ``optimizer``: any ``torch.optim`` optimizer (default Adam(lr)); ``scheduler``: a
  ``torch.optim.lr_scheduler`` stepped after every epoch; ``clip_grad_norm``.
- ``transform``: applied to the first tensor of each minibatch (e.g. ``binarize_dynamic``).

Evaluation, early stopping, checkpoints:

- ``eval_fn``: called as ``eval_fn(model)`` under :func:`evaluating` every ``eval_every`` steps
  (default: once per epoch) and at the end; its dict of floats goes to ``history.evals``.
- ``early_stopping``: ``(term, patience)``: stop after ``patience`` evaluations without a new
  minimum of ``eval_fn``'s ``term`` and restore the best parameters (:class:`EarlyStopping`).
- ``checkpoint``: a path; model and optimizer state are saved at every evaluation and at the end
  (:func:`load_checkpoint`).

What the reader sees:

- ``progress``: a text progress bar (default: not on CI or in the smoke profile); ``desc``: its
  label; ``plot``: names of terms to draw, live in an interactive notebook, the final figure at
  the end (:class:`probdl.plotting.LiveCurves`), redrawn every ``plot_every_s`` seconds.
- ``max_seconds``: how long the run is expected to take at most; past it, ``fit`` warns once and
  goes on. It never stops training: the profiles stop by epochs, so a slow or busy machine gives
  the same numbers, later.

Where it runs, and its randomness:

- ``device``; ``threads``: torch's intra-op threads while training (default
  :func:`probdl.config.threads_for`: one thread for small models).
- ``generator``: a ``torch.Generator`` for the minibatch order (default: the global one).
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
import warnings
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
        self.steps_per_epoch: int | None = None  # set by fit

    @property
    def epochs_run(self) -> float:
        """The epochs trained: optimizer steps over steps per epoch (a fraction for a part)."""
        if not self.steps_per_epoch:
            raise ValueError("epochs_run needs a History that fit recorded (steps_per_epoch)")
        return len(self.steps) / self.steps_per_epoch

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


def save_checkpoint(
    path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, **extra
) -> Path:
    """Save ``state_dict`` s (and plain extras: numbers, strings) with :func:`torch.save`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), **extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    torch.save(state, path)
    return path


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location=None,
) -> dict:
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
            raise TrainingError(
                f"terms must be scalars; got a tensor of shape {tuple(value.shape)} (take its mean)"
            )
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


def progress_bar(total: int, desc: str | None, enabled: bool):
    """The text progress bar of every training loop in the package (``fit``, ``gan.train_gan``):
    ``total`` steps, shown on stderr unless ``enabled`` is false."""
    from tqdm.std import tqdm  # plain text: renders in a terminal, a notebook and static HTML

    return tqdm(
        total=total,
        desc=desc,
        disable=not enabled,
        mininterval=1.0,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=True,
    )


@contextlib.contextmanager
def evaluating(model: torch.nn.Module):
    """Evaluate ``model`` in eval mode without gradients; its train/eval mode is restored on
    leaving, also after an error."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def minibatches(
    data: tuple[torch.Tensor, ...],
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
):
    """One epoch of shuffled minibatches: yields lists of tensors indexed by a random
    permutation (drawn from ``generator``), ``transform`` applied to the first tensor."""
    n = len(data[0])
    order = torch.randperm(n, generator=generator).to(data[0].device)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        batch = [t[idx] for t in data]
        if transform is not None:
            batch[0] = transform(batch[0])
        yield batch


class EarlyStopping:
    """Stop after ``patience`` evaluations without a new minimum of the term ``name``; keeps a
    copy of the parameters at the best evaluation, for :meth:`restore`."""

    def __init__(self, name: str, patience: int):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.name, self.patience = name, patience
        self.best_value, self.best_state, self.best, self.since_best = math.inf, None, None, 0

    def update(self, model: torch.nn.Module, result: dict) -> bool:
        """Record one evaluation; True when training should stop."""
        if self.name not in result:
            raise KeyError(
                f"early_stopping watches {self.name!r}, which eval_fn does not return ({', '.join(result)})"
            )
        if result[self.name] < self.best_value:
            self.best_value, self.since_best, self.best = result[self.name], 0, dict(result)
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.since_best += 1
        return self.since_best >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


def _step(model, objective, batch, optimizer, clip_grad_norm, step, epoch) -> dict:
    """One optimizer step on one minibatch; returns the objective's terms as floats."""
    terms = objective(model, *batch)
    if "loss" not in terms:
        raise TrainingError(f"the objective must return a dict with 'loss'; it returned {', '.join(terms)}")
    loss = terms["loss"]
    if not torch.isfinite(loss):
        raise TrainingError(
            f"the loss is {loss.item()} at step {step} (epoch {epoch}); lower the learning "
            "rate, check the data (binary where a Bernoulli likelihood is used), or clip gradients"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    optimizer.step()
    return {k: _scalar(v) for k, v in terms.items()}


def _live_curves(plot, every_s):
    if not plot:
        return None
    from .plotting import LiveCurves

    return LiveCurves(plot, every_s=every_s, live=not config.quiet())


class _Run:
    """The state of one :func:`fit` call: evaluation, checkpoints, early stopping, the clock."""

    def __init__(self, model, optimizer, eval_fn, early_stopping, checkpoint, max_seconds):
        self.model, self.optimizer, self.eval_fn, self.checkpoint = model, optimizer, eval_fn, checkpoint
        self.stopper = EarlyStopping(*early_stopping) if early_stopping is not None else None
        self.max_seconds, self.start, self.warned = max_seconds, time.perf_counter(), False
        self.history = History()

    def evaluate(self, step: int) -> bool:
        """Run eval_fn, record it, checkpoint; True when early stopping says stop."""
        with evaluating(self.model):
            result = {k: _scalar(v) for k, v in self.eval_fn(self.model).items()}
        result["step"] = step
        self.history.evals.append(result)
        if self.checkpoint is not None:
            save_checkpoint(self.checkpoint, self.model, self.optimizer, step=step)
        stop = self.stopper is not None and self.stopper.update(self.model, result)
        self.history.stopped_early |= stop
        return stop

    def check_clock(self, step: int, total: int) -> None:
        """Warn once when the run passes ``max_seconds``; training goes on to ``total`` steps."""
        if self.warned or self.max_seconds is None:
            return
        elapsed = time.perf_counter() - self.start
        if elapsed > self.max_seconds:
            self.warned = True
            warnings.warn(
                f"fit passed its expected {self.max_seconds:.0f} s after {step} of {total} steps "
                f"({elapsed:.0f} s): this machine is slower or busier than expected; training goes on "
                "to the last step, so the numbers stay the profile's",
                RuntimeWarning,
                stacklevel=4,
            )

    def finish(self, step: int, total: int) -> History:
        if self.stopper is not None:
            self.history.best = self.stopper.best
            self.stopper.restore(self.model)
        if self.checkpoint is not None:
            save_checkpoint(self.checkpoint, self.model, self.optimizer, step=step)
        return self.history


def _check_options(epochs, steps, batch_size, early_stopping, eval_fn) -> None:
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs= or steps=")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if early_stopping is not None and eval_fn is None:
        raise ValueError("early_stopping needs an eval_fn that returns the term it watches")


def fit(
    model: torch.nn.Module,
    objective: Callable[..., Mapping[str, torch.Tensor]],
    data,
    *,
    # how long, and one step
    epochs: float | None = None,
    steps: int | None = None,
    batch_size: int = 100,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    clip_grad_norm: float | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    # evaluation, early stopping, checkpoints
    eval_fn: Callable[[torch.nn.Module], Mapping[str, float]] | None = None,
    eval_every: int | None = None,
    early_stopping: tuple[str, int] | None = None,
    checkpoint: str | Path | None = None,
    # what the reader sees
    progress: bool | None = None,
    desc: str | None = None,
    plot: Sequence[str] | None = None,
    plot_every_s: float = 3.0,
    max_seconds: float | None = None,
    # where it runs, and its randomness
    device: torch.device | str | None = None,
    threads: int | None = None,
    generator: torch.Generator | None = None,
) -> History:
    """Train ``model`` by minimising ``objective(model, *batch)["loss"]`` over shuffled minibatches
    of ``data`` for ``epochs`` (or ``steps``); returns the :class:`History`. The options come
    in four groups, described in this module's docstring."""
    data = _as_tuple(data)
    _check_options(epochs, steps, batch_size, early_stopping, eval_fn)
    batch_size = min(batch_size, len(data[0]))
    steps_per_epoch = math.ceil(len(data[0]) / batch_size)
    total = int(steps) if steps is not None else max(1, round(epochs * steps_per_epoch))
    eval_every = eval_every or steps_per_epoch
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    data = tuple(t.to(device) for t in data)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    progress = not config.quiet() if progress is None else progress
    run = _Run(model, optimizer, eval_fn, early_stopping, checkpoint, max_seconds)
    history, step, epoch = run.history, 0, 0
    history.steps_per_epoch = steps_per_epoch
    live = _live_curves(plot, plot_every_s)
    bar = progress_bar(total, desc, progress)
    model.train()
    try:
        with config.torch_threads(threads or config.threads_for(model)):
            while step < total and not history.stopped_early:
                for batch in minibatches(data, batch_size, generator=generator, transform=transform):
                    row = _step(model, objective, batch, optimizer, clip_grad_norm, step, epoch)
                    step += 1
                    history.steps.append({"step": step, "epoch": epoch, **row})
                    bar.update(1)
                    if progress and step % 10 == 0:
                        bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
                    if live is not None:
                        live.update(history)
                    if eval_fn is not None and step % eval_every == 0 and step < total and run.evaluate(step):
                        break
                    run.check_clock(step, total)
                    if step >= total:
                        break
                epoch += 1
                if scheduler is not None:
                    scheduler.step()
            if eval_fn is not None and not history.stopped_early:
                run.evaluate(step)
    finally:
        bar.close()
        history.seconds = time.perf_counter() - run.start
        if live is not None:
            live.close(history)
    return run.finish(step, total)
