"""Deep latent Gaussian models with mixture posteriors (Nalisnick, Hertel & Smyth 2016; Nalisnick &
Smyth 2017): a VAE whose approximate posterior is q(z|x) = sum_k pi_k N(z; mu_k, diag sigma_k^2).

The weights come either from a softmax (``MixtureVAE``, K fixed) or from stick breaking,
pi_1 = gamma_1, pi_k = gamma_k prod_{j<k} (1 - gamma_j), with the gamma_k and the components
produced step by step by a recurrent (LSTM) inference network that halts when the remaining stick
falls below a threshold (``MixtureVAE(adaptive=True)``): the recurrence stops for that example, so
it costs as many LSTM steps and decoder passes as it has components.

The ELBO with a mixture q is sum_k pi_k E_{q_k}[log p(x, z)] + H[q]. It is estimated by one
reparameterized draw per component, z_k = mu_k + sigma_k eps_k, weighted by pi_k: unbiased, and
the weights get an unbiased pathwise gradient through the factor pi_k (a draw of the component
index would not be differentiable). H[q] is estimated with the same draws (log q(z_k) of the whole
mixture), or bounded from below by Jensen's inequality (:func:`mixture_entropy_lower_bound`).

Public API
----------
stick_breaking(gamma) -> (weights, remaining)
categorical_entropy(log_weights)
mixture_log_prob(z, log_weights, means, log_sigmas)
mixture_entropy_lower_bound(log_weights, means, log_sigmas)
MixtureVAE(n_visible, n_hidden, n_latent, n_components, adaptive=False, threshold=1e-2)
    .q_params(x) -> (log_weights, means, log_sigmas, active), .terms(x), .elbo(x),
    .log_marginal(x, k), .sample(n)
mixture_vae_objective(model, x, *rest, entropy="mc", weight_entropy=0.0)
iwae_objective(model, x, *rest, k)        the importance-weighted bound, for a one-component model
For a 2-D latent space, by quadrature: grid_log_marginal(model, x) -> (log p(x), log p(z|x) on the
grid), grid_elbo(model, x, q) -> (ELBO of q, q's mass on the grid), grid_basins(log_density) ->
(modes, their basins' masses), grid_modes(...); fit_q(model, x, K) a directly fitted mixture.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .data import check_binary
from .mlp import sequential
from .vi import LOG_2PI, log_mean_exp


def stick_breaking(gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """pi_k = gamma_k prod_{j<k} (1 - gamma_j) for ``gamma`` in (0, 1) of shape (...,
    K); returns (weights, remaining), remaining_k = prod_{j<=k} (1 - gamma_j) the stick
    left after k breaks, so that sum_{j<=k} pi_j + remaining_k = 1. Computed as sums of
    logs (log pi_k = log gamma_k + sum_{j<k} log(1 - gamma_j)); ``gamma_K = 1`` closes
    the stick."""
    if ((gamma < 0) | (gamma > 1)).any():
        raise ValueError("stick_breaking needs gamma in [0, 1]")
    # exercise mix-ex-stick: the weights and the stick left, as sums of logs
    ### BEGIN SOLUTION
    # log remaining_k
    log_left = torch.cumsum(torch.log1p(-gamma.clamp(max=1.0)), dim=-1)
    before = F.pad(log_left[..., :-1], (1, 0))  # log prod_{j<k} (1 - gamma_j)
    return gamma * before.exp(), log_left.exp()
    ### END SOLUTION


def categorical_entropy(log_weights: torch.Tensor) -> torch.Tensor:
    """H(pi) = -sum_k pi_k log pi_k over the last dimension (terms with pi_k = 0 count 0)."""
    w = log_weights.exp()
    return -(w * torch.where(w > 0, log_weights, torch.zeros_like(log_weights))).sum(-1)


def _diag_normal_log_prob(z, mean, var):
    """log N(z; mean, diag(var)) summed over the last dimension."""
    return -0.5 * (((z - mean) ** 2) / var + var.log() + LOG_2PI).sum(-1)


def mixture_log_prob(z: torch.Tensor, log_weights, means, log_sigmas) -> torch.Tensor:
    """log q(z) = logsumexp_k [log pi_k + log N(z; mu_k, diag sigma_k^2)] for z of shape (..., L)
    and the mixture's parameters of shapes (..., K), (..., K, L), (..., K, L)."""
    comp = _diag_normal_log_prob(z.unsqueeze(-2), means, torch.exp(2 * log_sigmas))
    return torch.logsumexp(log_weights + comp, dim=-1)


def mixture_entropy_lower_bound(log_weights, means, log_sigmas) -> torch.Tensor:
    """Jensen's bound on a Gaussian mixture's entropy: H[q] >= -sum_k pi_k log sum_j
    pi_j N(mu_k; mu_j, diag(sigma_k^2 + sigma_j^2)), from E_{q_k}[q(z)] = sum_j pi_j
    (N_k * N_j)(0), the convolution of two Gaussians. Shapes (..., K), (..., K, L),
    (..., K, L) -> (...)."""
    var = torch.exp(2 * log_sigmas)
    pair = _diag_normal_log_prob(
        means.unsqueeze(-2), means.unsqueeze(-3), var.unsqueeze(-2) + var.unsqueeze(-3)
    )
    # [k] log sum_j pi_j N(mu_k; ...)
    inner = torch.logsumexp(log_weights.unsqueeze(-2) + pair, dim=-1)
    return -(log_weights.exp() * inner).sum(-1)


class MixtureVAE(nn.Module):
    """A VAE with a K-component Gaussian mixture posterior. Encoder trunk 784-H-H (ReLU), decoder
    L-H-H-784 with Bernoulli logits, prior N(0, I). ``adaptive=False``: one linear head gives all
    K components and softmax weights. ``adaptive=True``: an LSTM cell run for up to K steps on the
    trunk's features gives component k and gamma_k at step k; the weights are
    :func:`stick_breaking` of the gammas, and an example halts (its stick is closed, gamma = 1) at
    the first step whose remaining stick is below ``threshold``, so later components get weight 0
    and are never decoded."""

    def __init__(
        self, n_visible=784, n_hidden=200, n_latent=50, n_components=2, *, adaptive=False, threshold=1e-2
    ):
        super().__init__()
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self.n_visible, self.n_latent, self.n_components = n_visible, n_latent, n_components
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}")
        self.adaptive, self.threshold = adaptive, float(threshold)
        self.trunk = nn.Sequential(sequential([n_visible, n_hidden, n_hidden]), nn.ReLU())
        if adaptive:
            self.cell = nn.LSTMCell(n_hidden, n_hidden)
            self.head = nn.Linear(n_hidden, 2 * n_latent + 1)
        else:
            self.head = nn.Linear(n_hidden, n_components * (2 * n_latent + 1))
        self.decoder = sequential([n_latent, n_hidden, n_hidden, n_visible])

    def q_params(self, x: torch.Tensor):
        """(log_weights (B, K), means (B, K, L), log_sigmas (B, K, L), active (B, K) bool)."""
        h = self.trunk(x)
        b, k, l = x.shape[0], self.n_components, self.n_latent
        if not self.adaptive:
            out = self.head(h).view(b, k, 2 * l + 1)
            log_w = F.log_softmax(out[..., -1], dim=-1)
            return (
                log_w,
                out[..., :l],
                out[..., l : 2 * l],
                torch.ones(b, k, dtype=torch.bool, device=x.device),
            )
        # the recurrence runs only for the examples still going: an example whose remaining stick
        # falls below the threshold at step k is dropped from the batch after step k (its stick is
        # closed there, gamma_k = 1), so it costs k + 1 LSTM steps and k + 1 decoder passes
        out = h.new_zeros(b, k, 2 * l + 1)
        rows, state = torch.arange(b, device=x.device), None
        log_left = h.new_zeros(b)  # log of the stick left, for the halting decision only
        first = torch.full((b,), k - 1, dtype=torch.long, device=x.device)  # the halting step
        for step in range(k):
            state = self.cell(h[rows], state)
            o = self.head(state[0])
            out = out.index_put((rows, torch.full_like(rows, step)), o)
            log_left[rows] += torch.log1p(-torch.sigmoid(o[:, -1].detach()))
            if step == k - 1:
                break
            done = log_left[rows] < (math.log(self.threshold) if self.threshold > 0 else -math.inf)
            first[rows[done]] = step
            rows, state = rows[~done], (state[0][~done], state[1][~done])
            if len(rows) == 0:
                break
        steps = torch.arange(k, device=x.device)
        gamma = torch.where(
            steps[None] == first[:, None], torch.ones_like(out[..., -1]), torch.sigmoid(out[..., -1])
        )
        active = steps[None] <= first[:, None]
        weights, _ = stick_breaking(gamma)
        log_w = torch.where(active, weights.clamp_min(1e-30).log(), torch.full_like(weights, -math.inf))
        return log_w, out[..., :l], out[..., l : 2 * l], active

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) + log p(z) for z of shape (..., B, L) and x (B, D)."""
        logits, x = torch.broadcast_tensors(self.decoder(z), x)
        rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        return rec + _diag_normal_log_prob(z, torch.zeros_like(z), torch.ones_like(z))

    def terms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-example terms of the one-draw-per-component ELBO estimate: ``joint`` =
        sum_k pi_k log p(x, z_k), ``entropy_mc`` = -sum_k pi_k log q(z_k),
        ``entropy_bound`` (Jensen), ``weight_entropy`` H(pi), ``components`` (active per
        example)."""
        x = check_binary(x, self.n_visible, "MixtureVAE")
        log_w, mu, log_s, active = self.q_params(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + log_s.exp() * eps  # (B, K, L)
        w = log_w.exp()
        idx = active.nonzero(as_tuple=True)  # decode only the active components
        joint = torch.zeros_like(w)
        joint[idx] = self.log_joint(x[idx[0]], z[idx])
        log_q = mixture_log_prob(z, log_w.unsqueeze(1), mu.unsqueeze(1), log_s.unsqueeze(1))
        return {
            "joint": (w * joint).sum(-1),
            "entropy_mc": -(w * torch.where(active, log_q, torch.zeros_like(log_q))).sum(-1),
            "entropy_bound": mixture_entropy_lower_bound(log_w, mu, log_s),
            "weight_entropy": categorical_entropy(log_w),
            "components": active.sum(-1).float(),
        }

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        t = self.terms(x, generator)
        return t["joint"] + t["entropy_mc"]

    def sample_q(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None):
        """``k`` draws z ~ q(z|x) per example, (k, B, L), and their log q(z|x), (k, B)."""
        log_w, mu, log_s, _ = self.q_params(x)
        comp = torch.multinomial(log_w.exp(), k, replacement=True, generator=generator).T  # (k, B)
        b = torch.arange(x.shape[0], device=x.device)
        eps = torch.randn((k, *mu.shape[::2]), generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu[b, comp] + log_s[b, comp].exp() * eps
        return z, mixture_log_prob(z, log_w, mu, log_s)

    @torch.no_grad()
    def log_marginal(
        self, x: torch.Tensor, k: int = 1000, batch_size: int = 100, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Importance-sampled log p(x) with the mixture q as proposal, ``k`` samples: (B,)."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        x = check_binary(x, self.n_visible, "MixtureVAE")
        out = []
        for xb in torch.split(x, batch_size):
            z, log_q = self.sample_q(xb, k, generator)
            out.append(log_mean_exp(self.log_joint(xb, z) - log_q, dim=0))
        return torch.cat(out)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel probabilities of ``n`` images decoded from prior draws z ~ N(0, I)."""
        p = next(self.parameters())
        z = torch.randn(n, self.n_latent, generator=generator, device=p.device, dtype=p.dtype)
        return torch.sigmoid(self.decoder(z))


def mixture_vae_objective(
    model: MixtureVAE, x: torch.Tensor, *rest, entropy: str = "mc", weight_entropy: float = 0.0
) -> dict[str, torch.Tensor]:
    """Negative ELBO per example for ``probdl.train.fit``. ``entropy``: ``"mc"`` (unbiased) or
    ``"bound"`` (Jensen's lower bound: a lower bound on the ELBO); ``weight_entropy`` > 0 adds
    -lambda H(pi), the penalty that favours few components."""
    if entropy not in ("mc", "bound"):
        raise ValueError(f"entropy must be 'mc' or 'bound', got {entropy!r}")
    t = model.terms(x)
    elbo = t["joint"] + t["entropy_mc" if entropy == "mc" else "entropy_bound"]
    loss = -(elbo - weight_entropy * t["weight_entropy"]).mean()
    return {"loss": loss, "elbo": elbo.mean().detach(), "components": t["components"].mean()}


def iwae_objective(model: MixtureVAE, x: torch.Tensor, *rest, k: int) -> dict[str, torch.Tensor]:
    """Negative importance-weighted bound per example (Burda et al. 2016), log (1/k) sum_i p(x,
    z_i) / q(z_i | x) with z_i ~ q, for ``probdl.train.fit`` (bind ``k``). One component only: a
    drawn component index has no pathwise gradient. k = 1 is the ELBO; the bound rises with k."""
    if model.n_components != 1 or model.adaptive:
        raise ValueError("iwae_objective needs MixtureVAE(..., n_components=1) (not adaptive)")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    x = check_binary(x, model.n_visible, "MixtureVAE")
    z, log_q = model.sample_q(x, k)
    bound = log_mean_exp(model.log_joint(x, z) - log_q, dim=0)
    return {"loss": -bound.mean(), "bound": bound.mean().detach()}


def _grid(model: MixtureVAE, lim: float, n: int):
    if model.n_latent != 2:
        raise ValueError(f"the grid needs a 2-D latent space, the model has {model.n_latent}")
    g = torch.linspace(-lim, lim, n, dtype=next(model.parameters()).dtype)
    zz = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 1, 2)  # (n*n, 1, 2)
    return zz, 2 * math.log(g[1] - g[0])


def grid_log_marginal(model: MixtureVAE, x: torch.Tensor, lim: float = 4.0, n: int = 201):
    """For a 2-D latent space: log p(x) by quadrature on an n x n grid over [-lim, lim]^2, and the
    log posterior density log p(z|x) on the grid, (B,) and (B, n, n)."""
    zz, log_cell = _grid(model, lim, n)
    with torch.no_grad():
        lj = torch.cat([model.log_joint(x, c) for c in torch.split(zz, 4096)])  # (n*n, B)
    log_px = torch.logsumexp(lj, 0) + log_cell
    return log_px, (lj - log_px).T.reshape(-1, n, n)


@torch.no_grad()
def grid_elbo(model: MixtureVAE, x: torch.Tensor, q, lim: float = 4.0, n: int = 201):
    """For a 2-D latent space: the ELBO of the mixture ``q`` = (log_weights (B, K), means (B, K, 2),
    log_sigmas (B, K, 2)) by quadrature, sum_grid q(z) [log p(x, z) - log q(z)] dz, with no Monte
    Carlo noise, and the mass of q on the grid (1 when the grid covers q), both (B,)."""
    zz, log_cell = _grid(model, lim, n)
    lj = torch.cat([model.log_joint(x, c) for c in torch.split(zz, 4096)])  # (n*n, B)
    log_q = mixture_log_prob(zz, *q)  # (n*n, B)
    mass = log_q.exp() * math.exp(log_cell)
    terms = torch.where(mass > 0, mass * (lj - log_q), torch.zeros_like(mass))
    return terms.sum(0), mass.sum(0)


def grid_basins(log_density: torch.Tensor, window: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """The modes of a density on an n x n grid and the probability mass of each one's basin of
    attraction: every cell climbs to the highest cell of its ``window`` x ``window`` neighbourhood
    until it reaches a maximum of its own neighbourhood (as in :func:`grid_modes`: ripples closer
    than the window count as one mode). Returns (flat indices of the modes, their masses), the
    masses in decreasing order and summing to one."""
    n = log_density.shape[-1]
    _, up = F.max_pool2d(log_density[None, None], window, stride=1, padding=window // 2, return_indices=True)
    ptr = up.flatten()
    for _ in range(int(math.log2(n * n)) + 2):  # pointer jumping: each pass doubles the climb
        ptr = ptr[ptr]
    p = torch.softmax(log_density.flatten().double(), 0)
    mass = torch.zeros_like(p).index_add_(0, ptr, p)
    peaks = (mass > 0).nonzero().flatten()
    order = mass[peaks].argsort(descending=True)
    return peaks[order], mass[peaks][order]


def fit_q(
    model: MixtureVAE,
    x: torch.Tensor,
    n_components: int,
    steps: int = 500,
    lr: float = 0.05,
    generator: torch.Generator | None = None,
    n_draws: int = 16,
    init_means: torch.Tensor | None = None,
    init_log_weights: torch.Tensor | None = None,
):
    """A mixture q(z) for one image ``x`` (1, D) fitted directly (not amortized) by maximizing the
    ELBO with the decoder fixed: the best q of its family. The means start at ``init_means``
    (K, L), for example the posterior's modes (:func:`grid_modes`), else at N(0, I) draws; the
    weights at ``init_log_weights`` (K,), for example the modes' masses, else equal.
    Returns (log_weights, means, log_sigmas) and its ELBO, with ``n_draws`` draws per component."""
    g = generator or torch.Generator().manual_seed(0)
    logits = torch.zeros(n_components)
    if init_log_weights is not None:
        if init_log_weights.shape != (n_components,):
            raise ValueError(
                f"init_log_weights must be ({n_components},); got {tuple(init_log_weights.shape)}"
            )
        logits = init_log_weights.detach().clone().float()
    logits.requires_grad_(True)
    if init_means is None:
        init_means = torch.randn(n_components, model.n_latent, generator=g)
    if init_means.shape != (n_components, model.n_latent):
        raise ValueError(
            f"init_means must be ({n_components}, {model.n_latent}); got {tuple(init_means.shape)}"
        )
    mu = init_means.detach().clone().float().requires_grad_(True)
    log_s = torch.full((n_components, model.n_latent), -1.0, requires_grad=True)
    opt = torch.optim.Adam([logits, mu, log_s], lr=lr)
    # the step size falls linearly to zero, so that q settles at the end instead of wandering with
    # the noise of the sampled gradient (with a constant rate the fitted gap moved by tenths of a nat)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / steps)

    def elbo(draws):
        log_w = F.log_softmax(logits, -1)
        z = mu + log_s.exp() * torch.randn((draws, *mu.shape), generator=g)  # (draws, K, L)
        lj = model.log_joint(x.expand(n_components, -1), z)  # (draws, K)
        log_q = mixture_log_prob(z, log_w, mu, log_s)
        return (log_w.exp() * (lj - log_q)).sum(-1).mean()

    for _ in range(steps):
        opt.zero_grad()
        (-elbo(n_draws)).backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        value = elbo(4000).item()
    return (F.log_softmax(logits, -1).detach(), mu.detach(), log_s.detach()), value


def grid_modes(
    log_density: torch.Tensor,
    grid: torch.Tensor,
    k: int,
    window: int = 9,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The ``k`` highest local maxima of a density on the n x n grid of :func:`grid_log_marginal`
    (``log_density`` (n, n), ``grid`` (n,)), as points (k, 2); a maximum is the largest value in
    its ``window`` x ``window`` neighbourhood. With fewer than ``k`` maxima the highest ones repeat,
    or, given a ``generator``, the rest are draws from the (normalized) density on the grid: starts
    for a mixture's components that are apart, where identical starts would move together."""
    lp = log_density[None, None]
    peak = (lp == F.max_pool2d(lp, window, stride=1, padding=window // 2))[0, 0]
    values = torch.where(peak, log_density, torch.full_like(log_density, -math.inf)).flatten()
    n_peaks = int(peak.sum())
    idx = values.topk(min(k, n_peaks)).indices
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1).reshape(-1, 2)
    if len(idx) < k and generator is not None:
        probs = torch.softmax(log_density.flatten().double(), 0)
        extra = torch.multinomial(probs, k - len(idx), replacement=True, generator=generator)
        return torch.cat([zz[idx], zz[extra]])
    return zz[idx[torch.arange(k) % len(idx)]]


def basin_starts(
    log_density: torch.Tensor, grid: torch.Tensor, k: int, generator: torch.Generator | None = None
):
    """Starts for a ``k``-component fit on the 2-D grid: the ``k`` modes with the heaviest basins
    (:func:`grid_basins`) as means and their masses, renormalized, as weights; with fewer modes, the
    rest are draws from the density (as in :func:`grid_modes`) with a small weight (1 %).
    Returns (means (k, 2), log_weights (k,))."""
    peaks, masses = grid_basins(log_density)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1).reshape(-1, 2)
    means, w = zz[peaks[:k]], masses[:k].float()
    if len(means) < k:
        extra = grid_modes(log_density, grid, k, generator=generator)[len(means) :]
        means, w = torch.cat([means, extra]), torch.cat([w, torch.full((k - len(w),), 0.01)])
    return means, (w / w.sum()).log()
