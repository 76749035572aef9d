"""The Laplace approximation of a network's weight posterior (MacKay 1992; Ritter et al. 2018;
Daxberger et al. 2021): q(theta) = N(theta_MAP, H^-1), H = the curvature of the negative log
joint at the MAP, and the Laplace estimate of the evidence.

``Laplace(model, likelihood, hessian, subset, prior_precision, sigma_noise)``; ``.fit(x, y)``
computes the curvature at the model's current parameters (train to the MAP first, e.g. with
:func:`probdl.mlp.map_objective`); then ``.mean``, ``.posterior_covariance`` / ``.posterior_variance``,
``.log_marginal_likelihood()``, ``.optimize_prior_precision()``, ``.sample(n)`` and
``.predictive(x, method="linearized" | "sampling")``.

The prior is N(0, I / prior_precision). The likelihood's curvature is eigendecomposed once
(``full``, ``ggn``; per Kronecker factor for ``kron``), so the evidence and the posterior under
another prior precision or noise scale cost O(P) and are differentiable in both.
"""

from __future__ import annotations

import copy
import math
import warnings

import torch
from torch import nn

from . import laplace_curvature as curv
from .mlp import map_objective  # noqa: F401  (its old home, for one release)
from .priors import positive
from .vi import LOG_2PI

HESSIANS = ("full", "ggn", "diag", "kron")


class Laplace:
    """A Laplace approximation N(mean, (H_lik + prior_precision I)^-1) of the weight posterior.

    likelihood:      ``"regression"`` (Gaussian, noise scale ``sigma_noise``; default the model's
                     ``noise_std`` if it has one, else 1) or ``"classification"`` (softmax).
    hessian:         ``"full"`` (exact Hessian; its negative eigenvalues are fine as long as
                     the posterior precision H / s^2 + delta I is positive definite, i.e. at a
                     minimum of the negative log posterior; where it is not, a warning, and
                     those directions keep the prior's precision delta), ``"ggn"``
                     (generalized Gauss-Newton, positive semi-definite), ``"diag"`` (its diagonal)
                     or ``"kron"`` (KFAC: a Kronecker product per linear layer,
                     G kron A with a 1 appended to the inputs, so one block holds the
                     weight, the bias and their cross terms; laplace-torch 0.3 keeps separate
                     blocks G_w kron A_w and G_b instead: the same weight and bias blocks and
                     trace, a different spectrum and evidence; tests/test_laplace_kron.py).
    subset:          ``"all"`` weights, or ``"last_layer"`` (the last nn.Linear; the rest fixed).
    The weights are the model's parameters in ``model.parameters()`` order, except a learned
    ``log_noise``.
    """

    def __init__(
        self,
        model: nn.Module,
        likelihood: str = "regression",
        hessian: str = "ggn",
        subset: str = "all",
        prior_precision: float = 1.0,
        sigma_noise: float | None = None,
    ):
        if likelihood not in ("regression", "classification"):
            raise ValueError(f"likelihood must be 'regression' or 'classification', got {likelihood!r}")
        if hessian not in HESSIANS:
            raise ValueError(f"hessian must be one of {', '.join(HESSIANS)}; got {hessian!r}")
        if subset not in ("all", "last_layer"):
            raise ValueError(f"subset must be 'all' or 'last_layer', got {subset!r}")
        if sigma_noise is None:
            sigma_noise = float(model.noise_std.detach()) if hasattr(model, "noise_std") else 1.0
        if likelihood == "classification":
            sigma_noise = 1.0
        self.likelihood, self.hessian, self.subset = likelihood, hessian, subset
        self.prior_precision = torch.tensor(positive("prior_precision", prior_precision), dtype=torch.float64)
        self.sigma_noise = torch.tensor(positive("sigma_noise", sigma_noise), dtype=torch.float64)
        self.model = model
        self.net = self._eig = self._chol = None

    # --- fitting ---------------------------------------------------------------------------
    def _network(self) -> curv.Network:
        model = copy.deepcopy(self.model).double().eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if self.subset == "last_layer":
            linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError("subset='last_layer' needs an nn.Linear layer in the model")
            name, layer = linears[-1]
            names = [f"{name}.weight"] + ([f"{name}.bias"] if layer.bias is not None else [])
            return curv.Network(model, names, last_layer=layer)
        names = [n for n, _ in model.named_parameters() if n != "log_noise"]
        return curv.Network(model, names)

    def fit(self, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> "Laplace":
        """Compute the likelihood's curvature at the model's current parameters on (x, y)."""
        if len(x) != len(y):
            raise ValueError(f"x and y need the same length, got {len(x)} and {len(y)}")
        x = x.double()
        y = y.double() if self.likelihood == "regression" else y.long()
        if self.likelihood == "regression" and y.dim() == 1:
            raise ValueError("regression targets must be (N, outputs), like the network's output; got (N,)")
        self.net = net = self._network()
        self.n_data, self.n_outputs = len(x), y.shape[-1] if y.dim() > 1 else 1
        if self.hessian in ("full", "ggn"):
            fn = curv.hessian if self.hessian == "full" else curv.ggn
            self.h, self.loss = fn(net, x, y, self.likelihood, batch_size)
            self._eig, self._chol = None, None
            if self.hessian == "full":
                self._check_posterior_precision()
        elif self.hessian == "diag":
            self.h_diag, self.loss = curv.ggn(net, x, y, self.likelihood, batch_size, diagonal=True)
        else:
            factors, n, self.loss = curv.kron_factors(net, x, y, self.likelihood, batch_size)
            self.kron = []
            for g, a in factors:
                lg, qg = torch.linalg.eigh(g / n)
                la, qa = torch.linalg.eigh(a)
                self.kron.append((lg.clamp_min(0), qg, la.clamp_min(0), qa))
        return self

    def _decompose(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The likelihood curvature's eigendecomposition (full, ggn), once: with it the evidence
        and the posterior under any prior precision and noise scale cost O(P). The full Hessian's
        eigenvalues are kept as they are (negative ones included: what must be positive is the
        posterior precision, see :meth:`_spectrum`); the GGN's, positive semi-definite by
        construction, lose their round-off negatives."""
        if self._eig is None:
            lam, v = torch.linalg.eigh(self.h)
            self._min_eig, self._n_negative = lam.min().item(), int((lam < 0).sum())
            self._eig = (lam if self.hessian == "full" else lam.clamp_min(0.0), v)
        return self._eig

    def _check_posterior_precision(self) -> None:
        """Warn if H_lik / s^2 + delta I at the current prior precision and noise scale is not
        positive definite: then the parameters are not at a minimum of the negative log
        posterior, and :meth:`_spectrum` clips the offending eigenvalues."""
        if self.hessian == "full" and self.min_posterior_eigenvalue <= 0:
            post = self.eigenvalues / self.sigma_noise**2 + self.prior_precision
            warnings.warn(
                f"the posterior precision H / s^2 + delta I is not positive definite "
                f"({int((post <= 0).sum())} eigenvalues <= 0, least {post.min().item():.3g}; "
                f"delta = {self.prior_precision.item():.3g}, s = {self.sigma_noise.item():.3g}): the "
                "parameters are not at a minimum of the negative log posterior; in those directions "
                "the posterior keeps the prior's precision only (or use hessian='ggn')",
                RuntimeWarning,
                stacklevel=3,
            )

    eigenvalues = property(lambda self: self._decompose()[0], doc="eigenvalues of the likelihood's curvature")
    eigenvectors = property(lambda self: self._decompose()[1], doc="its eigenvectors (columns)")
    min_eigenvalue = property(
        lambda self: self._decompose() and self._min_eig, doc="of the likelihood's curvature"
    )
    n_negative = property(
        lambda self: self._decompose() and self._n_negative, doc="of the likelihood's curvature"
    )

    @property
    def min_posterior_eigenvalue(self) -> float:
        """The least eigenvalue of the posterior precision H_lik / s^2 + delta I (full, ggn)
        at the current prior precision and noise scale, before any clipping: positive at a
        genuine minimum of the negative log posterior."""
        return (self.eigenvalues.min() / self.sigma_noise**2 + self.prior_precision).item()

    def _cholesky(self) -> torch.Tensor | None:
        """For a GGN not yet eigendecomposed: the Cholesky factor of the posterior precision at
        the current prior precision and noise scale (cheaper than an eigendecomposition)."""
        if self.hessian != "ggn" or self._eig is not None:
            return None
        key = (self.prior_precision.item(), self.sigma_noise.item())
        if self._chol is None or self._chol[0] != key:
            eye = torch.eye(self.n_params, dtype=torch.float64)
            self._chol = (
                key,
                torch.linalg.cholesky(self.h / self.sigma_noise**2 + self.prior_precision * eye),
            )
        return self._chol[1]

    def _check_fitted(self):
        if self.net is None:
            raise RuntimeError("call .fit(x, y) first (after training the model to its MAP)")

    @property
    def mean(self) -> torch.Tensor:
        """The MAP parameters (flat, float64, in ``model.parameters()`` order)."""
        self._check_fitted()
        return self.net.theta

    @property
    def n_params(self) -> int:
        return self.mean.numel()

    # --- the posterior -------------------------------------------------------------------------
    def _spectrum(self, prior_precision=None, sigma_noise=None) -> torch.Tensor:
        """Eigenvalues of the posterior precision (full, ggn, kron; concatenated over layers for
        kron) or its diagonal (diag)."""
        self._check_fitted()
        delta = self.prior_precision if prior_precision is None else prior_precision
        s2 = (self.sigma_noise if sigma_noise is None else sigma_noise) ** 2
        if self.hessian in ("full", "ggn"):
            post = self.eigenvalues / s2 + delta
            # a direction of non-positive posterior curvature keeps the prior's precision
            return torch.where(post > 0, post, delta) if self.hessian == "full" else post
        if self.hessian == "diag":
            return self.h_diag / s2 + delta
        return torch.cat([torch.outer(lg, la).reshape(-1) / s2 + delta for lg, _, la, _ in self.kron])

    @property
    def posterior_precision(self) -> torch.Tensor:
        """H_lik / sigma_noise^2 + prior_precision I: (P, P) for full, ggn; (P,) for diag."""
        if self.hessian == "diag":
            return self._spectrum()
        if self.hessian == "kron":
            raise AttributeError("a kron posterior keeps its Kronecker factors (.kron), not a dense matrix")
        if self.hessian == "ggn":
            return self.h / self.sigma_noise**2 + self.prior_precision * torch.eye(
                self.n_params, dtype=torch.float64
            )
        v = self.eigenvectors
        return (v * self._spectrum()) @ v.T

    @property
    def posterior_covariance(self) -> torch.Tensor:
        """The posterior covariance (P, P) (full, ggn; block-diagonal for kron, for small networks)."""
        if self.hessian == "diag":
            raise AttributeError("hessian='diag' has no dense covariance; use .posterior_variance")
        if self.hessian == "kron":
            return torch.block_diag(
                *(curv.kron_block_cov(k, s) for k, s in zip(self.kron, self._kron_spectra()))
            )
        if (chol := self._cholesky()) is not None:
            return torch.cholesky_inverse(chol)
        v = self.eigenvectors
        return (v / self._spectrum()) @ v.T

    @property
    def posterior_variance(self) -> torch.Tensor:
        """The posterior marginal variances (P,)."""
        if self.hessian == "diag":
            return 1.0 / self._spectrum()
        if self.hessian == "kron":
            return curv.kron_variance(self.kron, self._kron_spectra())
        return torch.diagonal(self.posterior_covariance).clone()

    def _kron_spectra(self) -> list[torch.Tensor]:
        """The posterior precision's eigenvalues per layer, shaped (O, I+1) as the factors."""
        spec = self._spectrum()
        sizes = [len(lg) * len(la) for lg, _, la, _ in self.kron]
        return [s.reshape(len(k[0]), len(k[2])) for s, k in zip(torch.split(spec, sizes), self.kron)]

    # --- the evidence ----------------------------------------------------------------------------
    def log_likelihood(self, sigma_noise=None) -> torch.Tensor:
        """log p(D | theta_MAP)."""
        self._check_fitted()
        if self.likelihood == "classification":
            return torch.tensor(-self.loss, dtype=torch.float64)
        s = self.sigma_noise if sigma_noise is None else sigma_noise
        s = torch.as_tensor(s, dtype=torch.float64)
        return -self.loss / s**2 - self.n_data * self.n_outputs * (torch.log(s) + 0.5 * LOG_2PI)

    def log_marginal_likelihood(self, prior_precision=None, sigma_noise=None) -> torch.Tensor:
        """The Laplace estimate of the evidence,
        log p(D | theta*) + log p(theta*) + P/2 log 2 pi - 1/2 log det H
        = log p(D | theta*) - delta/2 |theta*|^2 - 1/2 (log det H - P log delta),
        differentiable in ``prior_precision`` (delta) and ``sigma_noise`` when they are
        tensors."""
        self._check_fitted()
        delta = self.prior_precision if prior_precision is None else prior_precision
        s = self.sigma_noise if sigma_noise is None else sigma_noise
        chol = self._cholesky() if prior_precision is None and sigma_noise is None else None
        logdet = 2 * chol.diagonal().log().sum() if chol is not None else self._spectrum(delta, s).log().sum()
        logdet_ratio = logdet - self.n_params * torch.log(delta)
        scatter = delta * (self.mean @ self.mean)
        return self.log_likelihood(s) - 0.5 * (logdet_ratio + scatter)

    def optimize_prior_precision(self, sigma_noise: bool = False, n_steps: int = 50) -> "Laplace":
        """Set ``prior_precision`` (and with ``sigma_noise=True``, for regression, the noise scale)
        to maximise :meth:`log_marginal_likelihood` at the fitted curvature (L-BFGS on the logs)."""
        self._check_fitted()
        log_delta = self.prior_precision.log().clone().requires_grad_(True)
        log_s = self.sigma_noise.log().clone().requires_grad_(sigma_noise and self.likelihood == "regression")
        params = [log_delta] + ([log_s] if log_s.requires_grad else [])
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=n_steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = -self.log_marginal_likelihood(log_delta.exp(), log_s.exp())
            loss.backward()
            return loss

        opt.step(closure)
        self.prior_precision = log_delta.detach().exp()
        self.sigma_noise = log_s.detach().exp()
        self._check_posterior_precision()
        return self

    # --- sampling and the predictive ---------------------------------------------------------
    def sample(
        self, n: int = 100, generator: torch.Generator | None = None, *, n_samples: int | None = None
    ) -> torch.Tensor:
        """``n`` parameter vectors (n, P) from the posterior (``n_samples=`` is the old
        spelling of ``n``, kept for one release)."""
        self._check_fitted()
        n = n if n_samples is None else n_samples
        eps = torch.randn(n, self.n_params, generator=generator, dtype=torch.float64)
        if (chol := self._cholesky()) is not None:  # Sigma = L^-T L^-1
            return self.mean + torch.linalg.solve_triangular(chol.T, eps.T, upper=True).T
        if self.hessian in ("full", "ggn"):
            return self.mean + (eps / self._spectrum().sqrt()) @ self.eigenvectors.T
        if self.hessian == "diag":
            return self.mean + eps * self.posterior_variance.sqrt()
        return self.mean + curv.kron_scale(self.kron, self._kron_spectra(), eps)

    def functional_variance(self, jac: torch.Tensor) -> torch.Tensor:
        """J Sigma J^T (N, C, C) for Jacobians ``jac`` (N, C, P) of the outputs."""
        if (chol := self._cholesky()) is not None:  # u = L^-1 J^T
            u = torch.linalg.solve_triangular(chol, jac.reshape(-1, jac.shape[-1]).T, upper=False)
            u = u.T.reshape(jac.shape)
            return u @ u.transpose(1, 2)
        if self.hessian in ("full", "ggn"):
            u = jac @ self.eigenvectors / self._spectrum().sqrt()
            return u @ u.transpose(1, 2)
        if self.hessian == "diag":
            return (jac * self.posterior_variance) @ jac.transpose(1, 2)
        return curv.kron_functional_variance(self.kron, self._kron_spectra(), jac)

    @torch.no_grad()
    def predictive(
        self,
        x: torch.Tensor,
        method: str = "linearized",
        n_samples: int = 100,
        link_approx: str = "probit",
        batch_size: int | None = 1000,
        generator: torch.Generator | None = None,
    ):
        """The posterior predictive at ``x``.

        ``"linearized"`` (the GLM predictive of Immer et al. 2021): f(x, theta) linearized at
        the MAP, so f ~ N(f(x, theta*), J Sigma J^T); for classification its softmax is
        approximated with the probit link (``link_approx="probit"``) or averaged over
        ``n_samples`` draws (``"mc"``). ``"sampling"``: the network itself at ``n_samples``
        parameter draws. Regression returns (mean, variance) of f (N, C); add
        ``sigma_noise**2`` to the variance for y. Classification returns probabilities (N, C).
        """
        self._check_fitted()
        if method not in ("linearized", "sampling"):
            raise ValueError(f"method must be 'linearized' or 'sampling', got {method!r}")
        if link_approx not in ("probit", "mc"):
            raise ValueError(f"link_approx must be 'probit' or 'mc', got {link_approx!r}")
        x = x.double()
        thetas = self.sample(n_samples, generator) if method == "sampling" else None
        parts = []
        for xb, _ in curv.batches(x, x, batch_size):
            phi = self.net.features(xb)
            if method == "sampling":
                outs = torch.stack([self.net(t, phi) for t in thetas])
                if self.likelihood == "classification":
                    parts.append((torch.softmax(outs, -1).mean(0),))
                else:
                    parts.append((outs.mean(0), outs.var(0, unbiased=False)))
                continue
            out, jac = self.net.jacobian(phi)
            var = self.functional_variance(jac)
            if self.likelihood == "regression":
                parts.append((out, torch.diagonal(var, dim1=1, dim2=2)))
            elif link_approx == "probit":
                kappa = 1 / torch.sqrt(1 + math.pi / 8 * torch.diagonal(var, dim1=1, dim2=2))
                parts.append((torch.softmax(kappa * out, -1),))
            else:
                chol = torch.linalg.cholesky(var + 1e-10 * torch.eye(out.shape[1], dtype=var.dtype))
                eps = torch.randn(n_samples, *out.shape, 1, generator=generator, dtype=out.dtype)
                f = out + (chol @ eps).squeeze(-1)
                parts.append((torch.softmax(f, -1).mean(0),))
        cols = [torch.cat(c) for c in zip(*parts)]
        return cols[0] if self.likelihood == "classification" else tuple(cols)
