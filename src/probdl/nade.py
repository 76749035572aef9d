"""The Neural Autoregressive Distribution Estimator (Larochelle & Murray, AISTATS 2011).

NADE writes the distribution of a binary vector x in {0,1}^D with the chain rule,

    p(x) = prod_d p(x_d | x_<d),
    h_d  = sigmoid(c + W[:, <d] x_<d)                       (H hidden units, shared W)
    p(x_d = 1 | x_<d) = sigmoid(b_d + V[d] . h_d),

so log p(x) is exact and tractable. Because every h_d uses the same W, the pre-activations obey
a_1 = c, a_{d+1} = a_d + W[:, d] x_d: all D hidden vectors cost O(DH) per example, not O(D^2 H)
(Algorithm 1 of the paper).

The fast path here is a hand-written forward *and* backward sweep of Algorithm 1
(:class:`NADELogProb`, a ``torch.autograd.Function``). It walks over the D positions in blocks
of ``block`` positions; inside a block the running pre-activation is one small matrix product
and everything else works on a (block, batch, H) tile that fits in the CPU cache, so no
(batch, D, H) tensor is ever built, stored for autograd, or read back. The backward pass is the
paper's: with delta_d = x_d - p_d (times the incoming gradient),

    dV[d]  = sum_b delta_d h_d,          db_d = sum_b delta_d,
    dA_d   = delta_d V[d] * h_d (1 - h_d),
    dW[:,k] = sum_b x_k sum_{d>k} dA_d,  dc = sum_b sum_d dA_d,

accumulating sum_{d>k} dA_d from the last position backwards. When gradients are needed the
forward sweep computes them at once for the gradient of the *sum* (or mean) of the
log-likelihoods, the case of every training loss; an incoming gradient that weighs the examples
differently triggers a second, exact sweep with those weights.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn
from torch.nn import functional as F

from . import config
from .data import check_binary
from .train import evaluating

__all__ = [
    "NADE",
    "LeakyNADE",
    "NADELogProb",
    "log_prob_reference",
    "nade_sweep",
    "nade_objective",
    "evaluate_nll",
    "check_binary",
]


def _block_size(d: int, target: int) -> int:
    """The largest divisor of ``d`` that is at most ``target`` (784 -> 16 for target 16)."""
    for k in range(min(target, d), 0, -1):
        if d % k == 0:
            return k
    return 1


def log_prob_reference(model: "NADE", x: torch.Tensor) -> torch.Tensor:
    """log p(x) in nats, shape (batch,), by Algorithm 1 of Larochelle & Murray (2011)
    written plainly: one pixel at a time, with the running pre-activation a, batched
    over examples. Autograd differentiates it. This is the reference the fast blocked
    sweep (:class:`NADELogProb`) is checked against in the tests, the chapter and the
    benchmark."""
    x = check_binary(x, model.n_visible, "NADE").to(model.W.dtype)
    W, c, V, b = model.W, model.c, model.V, model.b
    # exercise nade-ex-algorithm: log p(x) by Algorithm 1, one pixel at a time
    ### BEGIN SOLUTION
    a = c.expand(x.shape[0], -1)  # a_1 = c
    logp = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for d in range(x.shape[1]):
        h = torch.sigmoid(a)  # h_d = sigmoid(a_d)
        logit = h @ V[d] + b[d]  # p(x_d = 1 | x_<d) = sigmoid(logit)
        logp = logp - F.binary_cross_entropy_with_logits(logit, x[:, d], reduction="none")
        a = a + x[:, d : d + 1] * W[:, d]  # a_{d+1} = a_d + W[:, d] x_d
    return logp
    ### END SOLUTION


_MAX_PART = 128  # examples per sweep: larger tiles fall out of the cache (1000 at once is ~4x slower)

# --- The CPU thread pool ------------------------------------------------------------------------
# On a CPU, nade_sweep splits the batch into parts and sweeps them at the same time, one part per
# worker thread and each part on one intra-op thread: one synchronisation per sweep, instead of one
# per small tensor operation (about 400 per sweep) when torch's own threads share every operation.
# Measured on a 2-core machine shared with other processes (the sweep of one training step,
# H = 500, batch 100, median of 23 interleaved repetitions): 125 ms with two workers, 196 ms with
# one sweep on torch's two intra-op threads, 199 ms on one thread. So the pool stays.
# Worker threads read torch's process-wide intra-op thread count; the calling thread sets it to 1
# while the parts run (config.torch_threads, restored afterwards), so that each worker runs its
# part single-threaded; the workers themselves never change it.
_POOL_LOCK = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool of worker threads, grown (replaced) when more workers are asked for."""
    global _pool, _pool_size
    with _POOL_LOCK:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nade")
            _pool_size = workers
        return _pool


def _sweep_parallel(args: list[tuple], workers: int) -> list:
    """Sweep the parts ``args`` on ``workers`` threads, each single-threaded (see above)."""
    with config.torch_threads(1):
        futures = [_executor(workers).submit(_sweep, *a) for a in args]
        return [f.result() for f in futures]


@torch.no_grad()
def nade_sweep(
    x: torch.Tensor,
    W: torch.Tensor,
    c: torch.Tensor,
    V: torch.Tensor,
    b: torch.Tensor,
    weights: torch.Tensor | None = None,
    block: int = 16,
    probs: bool = False,
    workers: int | None = None,
    leak: bool = False,
):
    """Algorithm 1 in blocks of positions: the log-likelihoods and, given ``weights`` (batch,),
    the gradients of ``sum_b weights_b log p(x_b)`` with respect to (W, c, V, b).

    x: (B, D) float 0/1; W: (H, D); c: (H,); V: (D, H); b: (D,).
    Returns ``(logp, grads)`` with grads ``(dW, dc, dV, db)`` or None, or with ``probs=True``
    the conditionals p(x_d = 1 | x_<d) of shape (B, D) instead of log p.

    On a CPU with several threads the batch is split into ``workers`` parts (default: torch's
    thread count) swept in parallel, one single-threaded sweep per part (the thread pool above:
    one synchronisation per sweep instead of one per small operation). Large batches are swept
    in parts of at most 128 examples, whose (block, part, H) tiles stay in the cache. The
    gradients of the parts add up.
    """
    Bn = x.shape[0]
    if workers is None:
        workers = torch.get_num_threads() if x.device.type == "cpu" else 1
    workers = max(1, min(int(workers), Bn // 8))
    n_parts = max(workers, math.ceil(Bn / _MAX_PART))
    if n_parts == 1:
        return _sweep(x, W, c, V, b, weights, block, probs, leak)
    parts = torch.arange(Bn, device=x.device).tensor_split(n_parts)
    args = [(x[i], W, c, V, b, None if weights is None else weights[i], block, probs, leak) for i in parts]
    results = [_sweep(*a) for a in args] if workers == 1 else _sweep_parallel(args, workers)
    out = torch.cat([r[0] for r in results])
    if weights is None:
        return out, None
    grads = tuple(sum(gs) for gs in zip(*(r[1] for r in results)))
    return out, grads


@torch.no_grad()
def _sweep(x, W, c, V, b, weights, block, probs, leak=False):
    """One sweep over the whole batch in the calling thread (see :func:`nade_sweep`)."""
    Bn, Dn = x.shape
    Hn = W.shape[0]
    K = _block_size(Dn, block)
    J = Dn // K
    dtype = W.dtype
    x = x.to(dtype)
    xt = x.t()  # (D, B)
    xb = xt.reshape(J, K, Bn)  # positions in blocks
    Wt = W.t()  # (D, H); row d = W[:, d]
    Wtb = Wt.reshape(J, K, Hn)
    # Pre-activation at the start of every block: c + sum over earlier blocks of W x.
    Z = torch.bmm(xb.transpose(1, 2), Wtb)  # (J, B, H): each block's contribution
    earlier = torch.tril(torch.ones(J, J, dtype=dtype, device=x.device), -1)
    S = torch.mm(earlier, Z.view(J, Bn * Hn)).view(J, Bn, Hn).add_(c)  # exclusive prefix sum
    del Z
    # x_k for k < i within a block (with leak, k <= i: h_i then sees x_i, the wrong model LeakyNADE)
    mask = torch.tril(torch.ones(K, K, dtype=dtype, device=x.device), 0 if leak else -1).view(K, 1, K)
    Vb = V.reshape(J, K, 1, Hn)
    bb = b.reshape(J, K, 1)
    logits = torch.empty(J, K, Bn, dtype=dtype, device=x.device)
    grad = weights is not None
    if grad:
        wts = weights.to(dtype).view(1, Bn)
        dWt = torch.empty(J, K, Hn, dtype=dtype, device=x.device)
        dV = torch.empty(J, K, 1, Hn, dtype=dtype, device=x.device)
        r = torch.zeros(Bn, Hn, dtype=dtype, device=x.device)  # sum of dA over later positions
    for j in reversed(range(J)):
        xj = xb[j]  # (K, B)
        Xm = (mask * xj.t()).contiguous()  # (K, B, K): x_k for k < i
        # a_i = S_j + sum_{k < i in block} W[:, k] x_k, for the K positions i at once
        h = torch.baddbmm(S[j], Xm, Wtb[j].expand(K, K, Hn)).sigmoid_()  # (K, B, H)
        lj = torch.sum(h * Vb[j], -1, out=logits[j]).add_(bb[j])  # (K, B)
        if grad:
            delta = (xj - torch.sigmoid(lj)).mul_(wts)  # (K, B)
            torch.bmm(delta.unsqueeze(1), h, out=dV[j])  # dV[d] = sum_b delta h
            dA = torch.addcmul(h, h, h, value=-1.0)  # h (1 - h)
            dA.mul_(Vb[j]).mul_(delta.unsqueeze(-1))  # dA_d
            # dW[:, k] = sum_b x_k (r + sum_{i > k in block} dA_i)
            torch.mm(xj, r, out=dWt[j])
            dWt[j].addmm_(Xm.view(K * Bn, K).t(), dA.view(K * Bn, Hn))
            r += dA.sum(0)
            del dA
        del h
    logits = logits.view(Dn, Bn)
    if probs:
        out = torch.sigmoid(logits).t()
    else:
        out = -F.binary_cross_entropy_with_logits(logits, xt, reduction="none").sum(0)
    if not grad:
        return out, None
    delta_all = (xt - torch.sigmoid(logits)).mul_(wts)
    grads = (dWt.view(Dn, Hn).t(), r.sum(0), dV.view(Dn, Hn), delta_all.sum(1))
    return out, grads


class NADELogProb(torch.autograd.Function):
    """log p(x) of a NADE with the hand-written backward pass of Algorithm 1.

    ``NADELogProb.apply(x, W, c, V, b, block)`` -> (batch,) log-likelihoods in nats. The forward
    sweep also computes the gradients for uniform weights (every training loss is a sum or a
    mean over examples); the backward uses them when the incoming gradient is the same for all
    examples and runs a second, exact sweep otherwise. ``x`` gets no gradient (it is data)."""

    @staticmethod
    def forward(ctx, x, W, c, V, b, block=16, leak=False):
        ones = torch.ones(x.shape[0], dtype=W.dtype, device=W.device)
        logp, grads = nade_sweep(x, W, c, V, b, weights=ones, block=block, leak=leak)
        ctx.save_for_backward(x, W, c, V, b, *grads)
        ctx.block, ctx.leak = block, leak
        return logp

    @staticmethod
    def backward(ctx, g):
        x, W, c, V, b, dW, dc, dV, db = ctx.saved_tensors
        g = g.contiguous()
        if bool((g == g[0]).all()):
            s = g[0]
            grads = (dW * s, dc * s, dV * s, db * s)
        else:
            _, grads = nade_sweep(x, W, c, V, b, weights=g, block=ctx.block, leak=ctx.leak)
        return (None, *grads, None, None)


class NADE(nn.Module):
    """NADE for binary vectors of length ``n_visible`` with ``n_hidden`` shared hidden units.

    Parameters as in the paper: ``W`` (H, D), ``c`` (H,), ``V`` (D, H), ``b`` (D,).
    ``block`` is the number of positions the fast sweep handles at once (a speed knob only;
    the results do not depend on it beyond float rounding).
    """

    _leak = False  # True only in LeakyNADE, the deliberately wrong model

    def __init__(self, n_visible: int, n_hidden: int, block: int = 16, init_std: float = 0.05):
        super().__init__()
        if n_visible < 1 or n_hidden < 1:
            raise ValueError(f"NADE needs n_visible >= 1 and n_hidden >= 1, got {n_visible}, {n_hidden}")
        self.n_visible, self.n_hidden, self.block = int(n_visible), int(n_hidden), int(block)
        self.W = nn.Parameter(torch.randn(n_hidden, n_visible) * init_std)
        self.c = nn.Parameter(torch.zeros(n_hidden))
        self.V = nn.Parameter(torch.randn(n_visible, n_hidden) * init_std)
        self.b = nn.Parameter(torch.zeros(n_visible))

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}"

    @torch.no_grad()
    def init_bias(self, x: torch.Tensor, eps: float = 1e-2) -> "NADE":
        """Set ``b`` to the logits of the pixel means of ``x`` (training starts at the
        independent-Bernoulli fit instead of at log 2 nats per pixel)."""
        x = check_binary(x, self.n_visible, "NADE")
        m = x.mean(0).clamp(eps, 1 - eps)
        self.b.copy_(torch.log(m) - torch.log1p(-m))
        return self

    def _params(self):
        return self.W, self.c, self.V, self.b

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats, shape (batch,), through the fast sweep (differentiable)."""
        x = check_binary(x, self.n_visible, "NADE")
        x = x.to(self.W.dtype)
        if torch.is_grad_enabled() and any(p.requires_grad for p in self._params()):
            return NADELogProb.apply(x, *self._params(), self.block, self._leak)
        return nade_sweep(x, *self._params(), block=self.block, leak=self._leak)[0]

    @torch.no_grad()
    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        """p(x_d = 1 | x_<d) for every d, shape (batch, D): how probable each pixel is given
        the pixels before it in the example itself."""
        x = check_binary(x, self.n_visible, "NADE").to(self.W.dtype)
        return nade_sweep(x, *self._params(), block=self.block, probs=True, leak=self._leak)[0]

    @torch.no_grad()
    def sample(
        self,
        n: int | None = None,
        generator: torch.Generator | None = None,
        given: torch.Tensor | None = None,
        return_probs: bool = False,
    ):
        """Ancestral samples, shape (n, D): x_1 ~ p(x_1), x_2 ~ p(x_2 | x_1), ... with
        the running pre-activation of Algorithm 1 (O(DH) per sample).

        given:        (n, k) 0/1 values for the first k pixels; the rest is sampled from
                      p(x_>k | x_<=k) (e.g. digits completed from their top half).
        return_probs: also return the (n, D) probabilities p(x_d = 1 | x_<d) used at
                      each step (the "mean" images of the samples).
        """
        W, c, V, b = self._params()
        if given is not None:
            if not torch.is_tensor(given) or given.dim() != 2:
                raise ValueError("given must be a (n, k) tensor of 0/1 values for the first k pixels")
            k = given.shape[1]
            if k > self.n_visible:
                raise ValueError(f"given has {k} pixels but the model has only {self.n_visible}")
            if given.numel() and not bool(((given == 0) | (given == 1)).all()):
                raise ValueError("given must hold only 0/1 values")
            if n is not None and n != given.shape[0]:
                raise ValueError(f"n={n} disagrees with given.shape[0]={given.shape[0]}")
            n = given.shape[0]
        else:
            k = 0
        if n is None or n < 1:
            raise ValueError(f"the number of samples n must be a positive int, got {n}")
        dev, dtype = W.device, W.dtype
        x = torch.zeros(n, self.n_visible, dtype=dtype, device=dev)
        probs = torch.zeros(n, self.n_visible, dtype=dtype, device=dev)
        a = c.expand(n, -1).clone()
        if k:
            given = given.to(device=dev, dtype=dtype)
            x[:, :k] = given
            probs[:, :k] = self.conditionals(x)[:, :k]  # depends on x_<d only
            a += given @ W[:, :k].t()
        for d in range(k, self.n_visible):
            h = torch.sigmoid(a)
            p = torch.sigmoid(h @ V[d] + b[d])
            probs[:, d] = p
            xd = torch.bernoulli(p, generator=generator)
            x[:, d] = xd
            a.addr_(xd, W[:, d])
        return (x, probs) if return_probs else x


def nade_objective(model: NADE, x: torch.Tensor, *_):
    """The training objective for :func:`probdl.train.fit`: the mean negative log-likelihood
    (nats per example) as ``loss`` and as ``nll``."""
    nll = -model.log_prob(x).mean()
    return {"loss": nll, "nll": nll.detach()}


def evaluate_nll(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> float:
    """The exact average negative log-likelihood in nats of ``model`` over all of ``x``
    (any model with ``log_prob``), computed in batches in eval mode without gradients; the
    model's train/eval mode is restored afterwards, also when evaluation raises."""
    total = 0.0
    with evaluating(model):
        for i in range(0, len(x), batch_size):
            total += -model.log_prob(x[i : i + batch_size]).double().sum().item()
    return total / len(x)


class LeakyNADE(NADE):
    """A deliberately *wrong* NADE, kept to show what the chapter's checks catch: its hidden
    vector h_d = sigmoid(c + W[:, <=d] x_<=d) also sees the pixel x_d it predicts (the fast
    sweep with the diagonal of its within-block mask switched on). Its numbers are not
    probabilities (they do not sum to one over {0,1}^D), and trained, it reports a test NLL far
    below any honest model's."""

    _leak = True

    def sample(self, *args, **kwargs):
        raise NotImplementedError("LeakyNADE is not a distribution: p(x_d | ...) depends on x_d itself")
