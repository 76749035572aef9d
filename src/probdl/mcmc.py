"""Markov chain Monte Carlo for network posteriors: Hamiltonian Monte Carlo (Duane et al. 1987;
Neal 2011) with dual-averaging step sizes (Hoffman & Gelman 2014), stochastic gradient Langevin
dynamics (Welling & Teh 2011); the diagnostics live in :mod:`probdl.diagnostics` (re-exported).

Every sampler runs several chains as one batch: ``log_prob`` maps a ``(chains, dim)`` tensor to
``(chains,)``, samples come back as ``(n_samples, chains, dim)``. :class:`NetworkPosterior` is a
ReLU network's log posterior in one flat weight vector per chain (batched ``torch.baddbmm``)."""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import torch
from torch import nn

from .diagnostics import ess, ess_bulk, ess_tail, rhat, split_rhat  # noqa: F401  (re-exported)

LogProb = Callable[[torch.Tensor], torch.Tensor]


def value_and_grad(log_prob: LogProb, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log_prob(q)`` (chains,) and its gradient with respect to ``q`` (chains, dim): by
    ``log_prob.value_and_grad`` where it has one (a :class:`NetworkPosterior`), else autograd."""
    own = getattr(log_prob, "value_and_grad", None)
    if own is not None:
        return own(q.detach())
    with torch.enable_grad():
        q = q.detach().requires_grad_(True)
        lp = log_prob(q)
        if lp.shape != q.shape[:1]:
            raise ValueError(
                f"log_prob must map a (chains, dim) tensor to (chains,); got {tuple(lp.shape)} "
                f"for input {tuple(q.shape)}"
            )
        (grad,) = torch.autograd.grad(lp.sum(), q)
    return lp.detach(), grad


def kinetic(p: torch.Tensor, inv_mass: torch.Tensor | None = None) -> torch.Tensor:
    """The kinetic energy p^T M^-1 p / 2 per chain, for a diagonal mass matrix M (None: M = I)."""
    return 0.5 * (p * p if inv_mass is None else p * p * inv_mass).sum(-1)


def leapfrog(log_prob: LogProb, q, p, step_size, n_steps: int, grad=None, inv_mass=None):
    """``n_steps`` leapfrog steps for H(q, p) = -log_prob(q) + p^T M^-1 p / 2: half a
    momentum step, alternating full position and momentum steps, half a momentum step.
    ``step_size``: a number or a (chains,) tensor; ``inv_mass``: the diagonal of M^-1,
    (dim,) or (chains, dim), None for M = I. Returns (q, p, log_prob(q), grad at q)."""
    eps = torch.as_tensor(step_size, dtype=q.dtype, device=q.device).reshape(-1, 1)
    if grad is None:
        _, grad = value_and_grad(log_prob, q)
    # exercise menu-ex-hmc-step: the leapfrog steps (value_and_grad: log p, gradient)
    ### BEGIN SOLUTION
    p = p + 0.5 * eps * grad
    for i in range(n_steps):
        q = q + eps * (p if inv_mass is None else inv_mass * p)
        lp, grad = value_and_grad(log_prob, q)
        if i < n_steps - 1:
            p = p + eps * grad
    p = p + 0.5 * eps * grad
    return q, p, lp, grad
    ### END SOLUTION


def _check_init(init: torch.Tensor, n_samples: int, n_warmup: int) -> torch.Tensor:
    if not torch.is_tensor(init) or init.dim() != 2:
        shape = tuple(init.shape) if torch.is_tensor(init) else type(init).__name__
        raise ValueError(f"init must be (chains, dim) (x.unsqueeze(0) for one chain); got {shape}")
    if n_samples < 1 or n_warmup < 0:
        raise ValueError(f"need n_samples >= 1 and n_warmup >= 0; got {n_samples} and {n_warmup}")
    return init.detach().clone()


def accept_prob(h0: torch.Tensor, h1: torch.Tensor) -> torch.Tensor:
    """min(1, exp(H0 - H1)), 0 where the new energy is not finite (a divergent trajectory)."""
    # exercise menu-ex-hmc-step: the Metropolis acceptance probability of a trajectory
    ### BEGIN SOLUTION
    a = torch.exp(torch.clamp(h0 - h1, max=0.0))
    return torch.where(torch.isfinite(h1), a, torch.zeros_like(a))
    ### END SOLUTION


def _momentum(q: torch.Tensor, inv_mass, generator) -> torch.Tensor:
    """p ~ N(0, M), one row per chain."""
    p = torch.randn(q.shape, generator=generator, dtype=q.dtype, device=q.device)
    return p if inv_mass is None else p * inv_mass.rsqrt()


def initial_step_size(
    log_prob: LogProb, q, *, inv_mass=None, generator=None, max_doublings: int = 40
) -> torch.Tensor:
    """Hoffman & Gelman's (2014, Algorithm 4) heuristic, per chain: double or halve a step size
    from 0.1 until one leapfrog step's acceptance probability crosses 1/2."""
    lp, grad = value_and_grad(log_prob, q)
    eps = torch.full((q.shape[0],), 0.1, dtype=q.dtype, device=q.device)
    direction = None
    for _ in range(max_doublings):
        p = _momentum(q, inv_mass, generator)
        _, p1, lp1, _ = leapfrog(log_prob, q, p, eps, 1, grad, inv_mass)
        a = accept_prob(-lp + kinetic(p, inv_mass), -lp1 + kinetic(p1, inv_mass))
        up = a > 0.5
        direction = up if direction is None else direction
        move = up == direction
        if not move.any():
            break
        eps = torch.where(move, eps * torch.where(direction, 2.0, 0.5), eps)
    return eps


class DualAveraging:
    """Nesterov's dual averaging of log step sizes (Hoffman & Gelman 2014, section 3.2), one per
    chain: pushes the mean acceptance probability towards ``target``."""

    def __init__(self, step_size: torch.Tensor, target: float = 0.8, gamma=0.05, t0=10.0, kappa=0.75):
        self.mu = torch.log(10 * step_size)
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.h_bar = torch.zeros_like(step_size)
        self.log_eps_bar = torch.zeros_like(step_size)
        self.t = 0

    def update(self, accept: torch.Tensor) -> torch.Tensor:
        """One warm-up step; returns the next step size to try."""
        self.t += 1
        w = 1.0 / (self.t + self.t0)
        self.h_bar = (1 - w) * self.h_bar + w * (self.target - accept)
        log_eps = self.mu - math.sqrt(self.t) / self.gamma * self.h_bar
        eta = self.t**-self.kappa
        self.log_eps_bar = eta * log_eps + (1 - eta) * self.log_eps_bar
        return log_eps.exp()

    def final(self) -> torch.Tensor:
        """The averaged step size, used after warm-up."""
        return self.log_eps_bar.exp()


class MassAdaptation:
    """A diagonal inverse mass matrix per chain, estimated in warm-up windows as in Stan: the
    middle of the warm-up (15 % to 85 % of it) is cut into three windows of lengths 1 : 2 : 4,
    and at the end of each the inverse mass matrix becomes the variance of the chain's states in
    that window (Welford's running moments), shrunk towards 1e-3. Each window explores with the
    metric of the one before, so wide directions that the identity hardly moves along are
    measured by the later ones."""

    def __init__(self, n_warmup: int):
        if n_warmup < 30:
            raise ValueError(
                f"adapt_mass needs n_warmup >= 30 (windows of states to estimate it); got {n_warmup}"
            )
        self.ends = [round((0.15 + 0.7 * f) * n_warmup) for f in (0, 1 / 7, 3 / 7, 1)]
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, it: int, q: torch.Tensor) -> torch.Tensor | None:
        """Record the state after warm-up iteration ``it``; at a window's end, return the new
        inverse mass matrix (chains, dim), else None."""
        if not self.ends[0] <= it < self.ends[-1]:
            return None
        self.n += 1
        delta = q.double() - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 = self.m2 + delta * (q.double() - self.mean)
        if it + 1 not in self.ends[1:]:
            return None
        n, var = self.n, self.m2 / (self.n - 1)
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        return ((n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))).to(q.dtype)


def hmc(
    log_prob: LogProb,
    init: torch.Tensor,
    n_samples: int,
    n_warmup: int,
    step_size: float | torch.Tensor | None = None,
    n_leapfrog: int = 20,
    *,
    target_accept: float = 0.8,
    adapt_step_size: bool | None = None,
    adapt_mass: bool = False,
    jitter: float = 0.1,
    generator: torch.Generator | None = None,
    callback: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, dict]:
    """Hamiltonian Monte Carlo, all chains in one batch.

    ``log_prob`` maps (chains, dim) to (chains,); ``init`` is (chains, dim). Each
    iteration draws p ~ N(0, M), runs ``n_leapfrog`` leapfrog steps and accepts with
    probability min(1, exp(-dH)) (Metropolis). During the ``n_warmup`` iterations each
    chain's step size is adapted by dual averaging towards ``target_accept`` (by default
    when ``step_size`` is None, from :func:`initial_step_size`); then it stays fixed.
    Each trajectory scales the step by a uniform factor in [1 - jitter, 1 + jitter],
    which breaks periodic trajectories (Neal 2011, section 5.4.2.2). The mass matrix M
    is the identity, or with ``adapt_mass`` a diagonal one per chain adapted during the
    warm-up (:class:`MassAdaptation`), the step size found and adapted anew after each.

    Returns ``(samples, info)``: samples (n_samples, chains, dim) and a dict with
    ``accept_rate`` (chains,) over the sampling phase, ``step_size`` (chains,),
    ``log_prob`` (n_samples, chains), ``warmup_log_prob`` (n_warmup, chains) (after
    each warm-up iteration), ``energy_error`` (n_samples, chains) (dH of each proposal),
    ``divergences``, ``n_grad_evals`` (per chain) and ``inv_mass`` (chains, dim; None
    for the identity)."""
    q = _check_init(init, n_samples, n_warmup)
    chains, dim = q.shape
    adapt = (step_size is None) if adapt_step_size is None else adapt_step_size
    if step_size is None:
        eps = initial_step_size(log_prob, q, generator=generator)
    else:
        eps = torch.as_tensor(step_size, dtype=q.dtype, device=q.device).expand(chains).clone()
    tuner = DualAveraging(eps, target_accept) if adapt and n_warmup > 0 else None
    inv_mass, mass = None, MassAdaptation(n_warmup) if adapt_mass else None
    lp, grad = value_and_grad(log_prob, q)
    samples = q.new_empty(n_samples, chains, dim)
    trace_lp, trace_dh = q.new_empty(n_samples, chains), q.new_empty(n_samples, chains)
    warm_lp = q.new_empty(n_warmup, chains)
    accepted = torch.zeros(chains, dtype=q.dtype, device=q.device)
    divergences = 0
    uniform = functools.partial(torch.rand, chains, generator=generator, dtype=q.dtype, device=q.device)
    for it in range(n_warmup + n_samples):
        p = _momentum(q, inv_mass, generator)
        h0 = -lp + kinetic(p, inv_mass)
        wobble = 1 + jitter * (2 * uniform() - 1)
        q1, p1, lp1, grad1 = leapfrog(log_prob, q, p, eps * wobble, n_leapfrog, grad, inv_mass)
        h1 = -lp1 + kinetic(p1, inv_mass)
        a = accept_prob(h0, h1)
        take = uniform() < a
        q = torch.where(take[:, None], q1, q)
        lp = torch.where(take, lp1, lp)
        grad = torch.where(take[:, None], grad1, grad)
        metric = mass.update(it, q) if mass is not None else None
        if metric is not None:  # a window ended: its metric, then a fresh step size
            inv_mass = metric
            if adapt:
                eps = initial_step_size(log_prob, q, inv_mass=inv_mass, generator=generator)
                tuner = DualAveraging(eps, target_accept)
        elif it < n_warmup and tuner is not None:
            eps = tuner.update(a) if it < n_warmup - 1 else tuner.final()
        if it < n_warmup:
            warm_lp[it] = lp
        else:
            k = it - n_warmup
            samples[k], trace_lp[k], trace_dh[k] = q, lp, h1 - h0
            accepted += take.to(q.dtype)
            divergences += int((~torch.isfinite(h1) | (h1 - h0 > 1000)).sum())
        if callback is not None:
            callback(it)
    info = dict(accept_rate=accepted / n_samples, step_size=eps.clone(), log_prob=trace_lp)
    info.update(energy_error=trace_dh, divergences=divergences, inv_mass=inv_mass, warmup_log_prob=warm_lp)
    return samples, {**info, "n_grad_evals": (n_warmup + n_samples) * n_leapfrog}


def sgld(
    log_prob: Callable[..., torch.Tensor],
    init: torch.Tensor,
    data: Sequence[torch.Tensor],
    n_samples: int,
    n_warmup: int,
    step_size: float,
    *,
    batch_size: int,
    thin: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict]:
    """Stochastic gradient Langevin dynamics (Welling & Teh 2011), all chains in one batch.

    ``log_prob(theta, *batch)`` maps (chains, dim) and a minibatch of ``data`` to (chains,): an
    unbiased estimate of the log posterior, log p(theta) + N/B sum_batch log p(y | x, theta).
    Each step is theta <- theta + step_size/2 * grad + N(0, step_size I), one minibatch per step
    (reshuffled every epoch), with no Metropolis correction. After ``n_warmup`` steps every
    ``thin``-th state is kept. Returns (samples (n_samples, chains, dim), info)."""
    q = _check_init(init, n_samples, n_warmup)
    if not step_size > 0 or thin < 1 or batch_size < 1:
        raise ValueError(
            f"need step_size > 0, thin >= 1, batch_size >= 1; got {step_size}, {thin}, {batch_size}"
        )
    from .train import minibatches

    samples = q.new_empty(n_samples, *q.shape)
    total, step, kept = n_warmup + n_samples * thin, 0, 0
    noise_scale = math.sqrt(step_size)
    while step < total:
        for batch in minibatches(tuple(data), batch_size, generator=generator):
            _, grad = value_and_grad(lambda t: log_prob(t, *batch), q)
            noise = torch.randn(q.shape, generator=generator, dtype=q.dtype, device=q.device)
            q = q + 0.5 * step_size * grad + noise_scale * noise
            step += 1
            if step > n_warmup and (step - n_warmup) % thin == 0:
                samples[kept] = q
                kept += 1
            if step >= total:
                break
    return samples, {"step_size": step_size, "n_grad_evals": total}


# --- a network's posterior as a function of its flat weights --------------------------------


def flatten(model: nn.Module) -> torch.Tensor:
    """The weights of a ``PlainMLP`` (its ``layers``: W1, b1, W2, b2, ...) as one flat vector,
    in the layout :class:`NetworkPosterior` reads."""
    return nn.utils.parameters_to_vector(model.layers.parameters()).detach().clone()


class NetworkPosterior:
    """The posterior of a fully connected ReLU network with a Gaussian likelihood of fixed noise
    scale ``noise_std`` and the prior N(0, prior_sigma^2 I) on every weight and bias, as a
    function of flat weight vectors theta (chains, dim) laid out like :func:`flatten`."""

    def __init__(self, sizes, x, y, *, noise_std: float, prior_sigma: float = 1.0, activation=torch.relu):
        from .mlp import check_sizes

        self.sizes = check_sizes(sizes)
        if x.dim() != 2 or x.shape[1] != self.sizes[0] or y.shape != (x.shape[0], self.sizes[-1]):
            raise ValueError(
                f"need x (N, {self.sizes[0]}) and y (N, {self.sizes[-1]}); "
                f"got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        self.x, self.y, self.activation = x, y, activation
        self.noise_std, self.prior_sigma = float(noise_std), float(prior_sigma)
        self.dim = sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The outputs f(x; theta) of every chain's network, (chains, N, out)."""
        if theta.dim() != 2 or theta.shape[1] != self.dim:
            raise ValueError(f"theta must be (chains, {self.dim}); got {tuple(theta.shape)}")
        c, i, h = theta.shape[0], 0, x.expand(theta.shape[0], *x.shape)
        last = len(self.sizes) - 2
        for layer, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            w = theta[:, i : i + a * b].reshape(c, b, a)
            bias = theta[:, i + a * b : i + a * b + b]
            i += a * b + b
            h = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
            if layer < last:
                h = self.activation(h)
        return h

    def log_likelihood(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """sum_n log N(y_n; f(x_n; theta), noise_std^2) per chain, (chains,)."""
        r = (y - self.forward(theta, x)) / self.noise_std
        return -0.5 * (r * r).sum((1, 2)) - y.numel() * (
            math.log(self.noise_std) + 0.5 * math.log(2 * math.pi)
        )

    def log_prior(self, theta: torch.Tensor) -> torch.Tensor:
        z = theta / self.prior_sigma
        return -0.5 * (z * z).sum(-1) - self.dim * (math.log(self.prior_sigma) + 0.5 * math.log(2 * math.pi))

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """The unnormalised log posterior log p(y | x, theta) + log p(theta), (chains,)."""
        return self.log_likelihood(theta, self.x, self.y) + self.log_prior(theta)

    __call__ = log_prob  # a NetworkPosterior is a log density: hmc(post, ...) uses its gradient

    @torch.no_grad()
    def value_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`log_prob` and its gradient by a written-out backward pass (ReLU; other
        activations use autograd): with g the gradient in a layer's output and h its input, W's
        gradient is g^T h, b's the sum of g, and g passes back as (g W) * [h > 0]."""
        if self.activation is not torch.relu:
            return value_and_grad(self.log_prob, theta)
        hs, i, c, out = [self.x.expand(theta.shape[0], *self.x.shape)], 0, theta.shape[0], None
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        for layer, (a, b) in enumerate(pairs):
            w, bias = theta[:, i : i + a * b].reshape(c, b, a), theta[:, i + a * b : i + a * b + b]
            i += a * b + b
            wt, bias = w.transpose(1, 2), bias.unsqueeze(1)  # (c, a, b), (c, 1, b)
            out = torch.addcmul(bias, hs[-1], wt) if a == 1 else torch.baddbmm(bias, hs[-1], wt)
            hs.append(out.clamp_min_(0) if layer < len(pairs) - 1 else out)
        g = (self.y - out) / self.noise_std**2  # d log-likelihood / d output
        lp = -0.5 * self.noise_std**2 * (g * g).sum((1, 2)) - self.y.numel() * (
            math.log(self.noise_std) + 0.5 * math.log(2 * math.pi)
        )
        grad = theta / -(self.prior_sigma**2)
        for layer in range(len(pairs) - 1, -1, -1):
            a, b = pairs[layer]
            i -= a * b + b
            h = hs[layer]  # (c, N, a); a width or a fan-in of 1 is a broadcast, not a matmul
            gw = (g * h).sum(1) if a == 1 else torch.bmm(g.transpose(1, 2), h).reshape(c, -1)
            grad[:, i : i + a * b] += gw
            grad[:, i + a * b : i + a * b + b] += g.sum(1)
            if layer > 0:
                w = theta[:, i : i + a * b].reshape(c, b, a)
                g = g * w if b == 1 else torch.bmm(g, w)
                g.mul_(h.sign())  # h is a ReLU output: its sign is [h > 0]
        return lp + self.log_prior(theta), grad

    def minibatch_log_prob(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The unbiased minibatch estimate log p(theta) + N/B sum_batch log p(y | x, theta) of
        :meth:`log_prob`, for :func:`sgld`."""
        return self.log_prior(theta) + self.log_likelihood(theta, x, y) * (len(self.x) / len(x))

    @torch.no_grad()
    def predict(self, samples: torch.Tensor, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """f(x; theta) for weight samples (..., dim): outputs (..., N, out)."""
        flat = samples.reshape(-1, self.dim)
        out = torch.cat([self.forward(t, x) for t in torch.split(flat, chunk)])
        return out.reshape(*samples.shape[:-1], *out.shape[1:])
