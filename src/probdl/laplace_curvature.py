"""Curvature of a network's negative log-likelihood for the Laplace approximation: Jacobians of
the outputs with respect to the parameters (``torch.func``), the exact Hessian, the generalized
Gauss-Newton matrix (GGN), its diagonal and its Kronecker factors (KFAC) with the algebra of the
Kronecker-factored posterior (covariance, variances, draws, functional variance), and helpers for
one-off Laplace fits of an explicit log density (:func:`find_mode`, :func:`laplace_log_marginal`).

Everything is float64. For regression the curvature is computed at unit noise (``sigma_noise =
1``): the Hessian and the GGN of ``sum (y - f)^2 / (2 s^2)`` are that matrix divided by ``s^2``,
so :class:`probdl.laplace.Laplace` can rescale it when it changes ``sigma_noise``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, jvp, vmap

from .vi import LOG_2PI


def output_sqrt(out: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Square-root factors of the Hessian of the negative log-likelihood with respect to the
    outputs, Lambda_n = sum_c v_nc v_nc^T, as v of shape (N, C, C) (row c is v_nc): the identity
    for regression (at unit noise), sqrt(p_c) (e_c - p) for a softmax, since
    sum_c p_c (e_c - p)(e_c - p)^T = diag(p) - p p^T."""
    n, c = out.shape
    if likelihood == "regression":
        return torch.eye(c, dtype=out.dtype).expand(n, c, c)
    p = torch.softmax(out, -1)
    return p.sqrt().unsqueeze(-1) * (torch.eye(c, dtype=out.dtype) - p.unsqueeze(1))


def nll_sum(out: torch.Tensor, y: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Summed negative log-likelihood up to its constant: ``sum (y - f)^2 / 2`` (regression at unit
    noise) or the summed cross-entropy (classification)."""
    if likelihood == "regression":
        return 0.5 * ((y - out) ** 2).sum()
    return nn.functional.cross_entropy(out, y, reduction="sum")


class Network:
    """A network as a function f(theta, x) of a flat float64 parameter vector, through
    :func:`torch.func.functional_call` on a float64 copy of the model. ``names`` are the
    parameters that ``theta`` holds (all the model's weights, or those of its last layer)."""

    def __init__(self, model: nn.Module, names: list[str], last_layer: nn.Linear | None = None):
        self.model, self.names, self.last_layer = model, names, last_layer
        params = dict(model.named_parameters())
        self.shapes = [params[n].shape for n in names]
        self.sizes = [params[n].numel() for n in names]
        self.theta = torch.cat([params[n].detach().reshape(-1) for n in names])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(theta, self.sizes)
        return {n: p.reshape(s) for n, p, s in zip(self.names, parts, self.shapes)}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the last layer (last-layer Laplace), or ``x`` itself (all weights)."""
        if self.last_layer is None:
            return x
        seen = []
        handle = self.last_layer.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
        try:
            with torch.no_grad():
                self.model(x)
        finally:
            handle.remove()
        return seen[0]

    def __call__(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """f(theta, phi) with phi from :meth:`features`."""
        if self.last_layer is None:
            return functional_call(self.model, self.unflatten(theta), (phi,))
        w, b = theta[: self.sizes[0]].reshape(self.shapes[0]), None
        if len(self.sizes) > 1:
            b = theta[self.sizes[0] :]
        return nn.functional.linear(phi, w, b)

    def jacobian(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (N, C) and their Jacobians (N, C, P): in closed form for the last layer
        (:meth:`vjac` of the identity), else one example at a time (vmap of jacrev)."""
        if self.last_layer is not None:
            out = self(self.theta, phi)
            n, c = out.shape
            return out, self.vjac(torch.eye(c, dtype=out.dtype).expand(n, c, c), phi)

        def single(theta, p):
            out = self(theta, p.unsqueeze(0))[0]
            return out, out

        jac, out = vmap(jacrev(single, has_aux=True), in_dims=(None, 0))(self.theta, phi)
        return out, jac

    def vjac(self, v: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """The products v_n J_n (N, K, P) of row vectors v (N, K, C) with the Jacobians. For the
        last layer f = W phi + b they need no Jacobian: df_c/dW_c'f = [c = c'] phi_f and
        df_c/db_c' = [c = c'], so v J = (v kron phi, v), with W flattened row by row."""
        if self.last_layer is None:
            return torch.einsum("nkc,ncp->nkp", v, self.jacobian(phi)[1])
        n, k, _ = v.shape
        vj = (v.unsqueeze(-1) * phi[:, None, None, :]).reshape(n, k, -1)
        return torch.cat([vj, v], -1) if len(self.sizes) > 1 else vj


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int | None):
    step = len(x) if batch_size is None else batch_size
    for i in range(0, len(x), step):
        yield x[i : i + step], y[i : i + step]


def last_layer_ggn(net: Network, v: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """sum_n J_n^T Lambda_n J_n for the last layer, Lambda_n = v_n^T v_n, without the Jacobians:
    with phi~ = (phi, 1) (the 1 for the bias), the block of output rows c, c' is
    sum_n Lambda_n[c, c'] phi~_n phi~_n^T. That is C^2 F^2 N products, where J^T Lambda J from the
    (N C, C F) rows of v J costs C^3 F^2 N: ten times fewer for ten classes."""
    lam = torch.einsum("nkc,nkd->ncd", v, v)  # (N, C, C)
    n, c, _ = lam.shape
    bias = len(net.sizes) > 1
    pt = torch.cat([phi, torch.ones(n, 1, dtype=phi.dtype)], -1) if bias else phi  # (N, F~)
    f = pt.shape[1]
    weighted = (lam.reshape(n, c * c, 1) * pt.unsqueeze(1)).reshape(n, -1)  # (N, C C F~)
    blocks = (weighted.T @ pt).reshape(c, c, f, f).permute(0, 2, 1, 3).reshape(c * f, c * f)
    # rows and columns in (c, f~) order -> the weight row by row, then the bias
    order = torch.arange(c * f).reshape(c, f)
    perm = torch.cat([order[:, : f - 1].reshape(-1), order[:, f - 1]]) if bias else order.reshape(-1)
    return blocks[perm][:, perm]


def ggn(net: Network, x, y, likelihood: str, batch_size=None, diagonal=False) -> tuple[torch.Tensor, float]:
    """The GGN sum_n J_n^T Lambda_n J_n (P, P), or only its diagonal (P,), and the
    summed NLL (:func:`nll_sum`) at the network's parameters."""
    p = net.theta.numel()
    h = torch.zeros(p, dtype=torch.float64) if diagonal else torch.zeros(p, p, dtype=torch.float64)
    loss = 0.0
    for xb, yb in batches(x, y, batch_size):
        phi = net.features(xb)
        out = net(net.theta, phi)
        v = output_sqrt(out, likelihood)
        if net.last_layer is not None and not diagonal:
            h += last_layer_ggn(net, v, phi)
        else:
            vj = net.vjac(v, phi).reshape(-1, p)
            h += (vj**2).sum(0) if diagonal else vj.T @ vj
        loss += nll_sum(out, yb, likelihood).item()
    return h, loss


def hessian(
    net: Network, x, y, likelihood: str, batch_size=None, chunk: int = 256
) -> tuple[torch.Tensor, float]:
    """The exact Hessian of the summed NLL with respect to the parameters (P, P), as
    Hessian-vector products (forward over reverse mode) with ``chunk`` unit vectors at a time."""
    p = net.theta.numel()
    h = torch.zeros(p, p, dtype=torch.float64)
    loss = 0.0
    for xb, yb in batches(x, y, batch_size):
        phi = net.features(xb)

        def f(theta):
            return nll_sum(net(theta, phi), yb, likelihood)

        def hvp(v):
            return jvp(grad(f), (net.theta,), (v,))[1]

        eye = torch.eye(p, dtype=torch.float64)
        for i in range(0, p, chunk):
            h[i : i + chunk] += vmap(hvp)(eye[i : i + chunk])
        loss += f(net.theta).item()
    return 0.5 * (h + h.T), loss


def linear_layers(net: Network) -> list[nn.Linear]:
    """The linear layers whose weights ``net`` holds, in parameter order (KFAC needs every
    parameter to be a linear layer's weight or bias)."""
    modules = dict(net.model.named_modules())
    layers, names = [], []
    for name in net.names:
        owner, _, kind = name.rpartition(".")
        if not isinstance(modules.get(owner), nn.Linear):
            raise ValueError(f"hessian='kron' needs every parameter in an nn.Linear; {name!r} is not")
        if kind == "weight":
            layers.append(modules[owner])
        names.append(name)
    return layers


def kron_factors(net: Network, x, y, likelihood: str, batch_size=None):
    """Kronecker factors (G_l, A_l) per linear layer, with the layer's GGN block approximated as
    kron(G_l, A_l) / N (Martens & Grosse 2015; Ritter et al. 2018): A_l = sum_n a_n a_n^T over
    the layer's inputs a_n (with a 1 appended for the bias), G_l = sum_n sum_c g_nc g_nc^T over
    the output-square-roots v_nc of :func:`output_sqrt` backpropagated to the layer's outputs.
    Returns the list of (G, A), N and the summed NLL."""
    layers = linear_layers(net) if net.last_layer is None else [net.last_layer]
    if any(m.bias is None for m in layers):
        raise ValueError(
            "hessian='kron' needs linear layers with a bias (the factors append a 1 to the input)"
        )
    inputs, outputs = {}, {}

    def keep(module, inp, out):
        inputs[module], outputs[module] = inp[0], out

    hooks = [layer.register_forward_hook(keep) for layer in layers]
    factors = [[0.0, 0.0] for _ in layers]
    loss, n = 0.0, 0
    try:
        for xb, yb in batches(x, y, batch_size):
            out = net.model(xb.requires_grad_(True))  # a graph to the layers' outputs
            v = output_sqrt(out.detach(), likelihood)
            for c in range(out.shape[1]):
                gs = torch.autograd.grad(out, [outputs[m] for m in layers], v[:, c], retain_graph=True)
                for k, g in enumerate(gs):
                    factors[k][0] = factors[k][0] + g.T @ g
            for k, m in enumerate(layers):
                a = inputs[m].detach()
                a = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1)
                factors[k][1] = factors[k][1] + a.T @ a
            loss += nll_sum(out.detach(), yb, likelihood).item()
            n += len(xb)
    finally:
        for hk in hooks:
            hk.remove()
    return [(g.detach(), a.detach()) for g, a in factors], n, loss


# --- the Kronecker-factored posterior --------------------------------------------------------
# Per layer, (lg, qg, la, qa): the eigendecompositions of the factors G and A (A with a 1 appended
# to the inputs), and ``spectrum`` (O, I+1): the posterior precision's eigenvalues
# outer(lg, la) / s^2 + delta. Parameters are ordered weight (O, I) row-major, then bias (O,).


def _from_kron_order(m: torch.Tensor) -> torch.Tensor:
    """(..., O, I+1) -> (..., O*I + O): the weight flattened, then the bias."""
    return torch.cat([m[..., :-1].flatten(-2), m[..., -1]], -1)


def kron_block_cov(factors, spectrum: torch.Tensor) -> torch.Tensor:
    """One layer's dense posterior covariance, in parameter order (for small networks)."""
    _, qg, _, qa = factors
    q = torch.kron(qg, qa)
    cov = (q / spectrum.reshape(-1)) @ q.T
    o, i = spectrum.shape
    order = torch.arange(o * i).reshape(o, i)
    perm = torch.cat([order[:, :-1].reshape(-1), order[:, -1]])
    return cov[perm][:, perm]


def kron_variance(kron, spectra) -> torch.Tensor:
    """The posterior marginal variances (P,) of every layer."""
    return torch.cat(
        [_from_kron_order((qg**2) @ (1 / s) @ (qa**2).T) for (_, qg, _, qa), s in zip(kron, spectra)]
    )


def kron_scale(kron, spectra, eps: torch.Tensor) -> torch.Tensor:
    """Sigma^(1/2) eps for standard normal ``eps`` (n, P): posterior draws minus the mean."""
    parts, start = [], 0
    for (_, qg, _, qa), s in zip(kron, spectra):
        e = eps[:, start : start + s.numel()].reshape(-1, *s.shape) / s.sqrt()
        parts.append(_from_kron_order(qg @ e @ qa.T))  # (n, O, I+1) back in the parameters' basis
        start += s.numel()
    return torch.cat(parts, 1)


def kron_functional_variance(kron, spectra, jac: torch.Tensor) -> torch.Tensor:
    """J Sigma J^T (N, C, C) for Jacobians ``jac`` (N, C, P)."""
    out, start = 0.0, 0
    for (_, qg, _, qa), s in zip(kron, spectra):
        o, i = s.shape
        w = jac[:, :, start : start + o * (i - 1)].reshape(*jac.shape[:2], o, i - 1)
        b = jac[:, :, start + o * (i - 1) : start + o * i].unsqueeze(-1)
        u = qg.T @ torch.cat([w, b], -1) @ qa / s.sqrt()  # (N, C, O, I+1) in the eigenbasis
        out = out + torch.einsum("ncoi,ndoi->ncd", u, u)
        start += o * i
    return out


# --- a Laplace fit of an explicit log density (the closed-form checks) -----------------------


def find_mode(log_joint: Callable, theta0, steps: int = 50, tol: float = 1e-12) -> torch.Tensor:
    """The mode of ``log_joint`` (a function of a float64 vector) by Newton's method from
    ``theta0``, halving a step that does not increase it; stops when a step is below ``tol``."""
    theta = torch.as_tensor(theta0, dtype=torch.float64).clone().reshape(-1)
    for _ in range(steps):
        g = torch.func.grad(log_joint)(theta)
        h = torch.func.hessian(log_joint)(theta)
        step = torch.linalg.solve(-h, g)
        t = 1.0
        while log_joint(theta + t * step) < log_joint(theta) and t > 1e-8:
            t /= 2
        theta = theta + t * step
        if (t * step).abs().max() < tol:
            break
    return theta


def laplace_log_marginal(log_joint: Callable, mode: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Laplace estimate of log integral exp(log_joint) at ``mode``:
    log_joint(mode) + P/2 log 2 pi - 1/2 log det H, with H = -Hessian of log_joint at the mode.
    Returns the estimate and H."""
    h = -torch.func.hessian(log_joint)(mode)
    p = mode.numel()
    return log_joint(mode) + 0.5 * p * LOG_2PI - 0.5 * torch.logdet(h), h
