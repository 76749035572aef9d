"""Every chapter's models at their ``paper`` sizes: built from the package classes with
``config.sizes(chapter, "paper")`` exactly as the chapter builds them, one training step
at the paper's batch size and one evaluation batch on the CPU (shapes, dtypes, a finite
loss, parameters that move), and an estimate of the memory a paper-size run needs, which
must fit in 24 GiB.

The memory estimate, per model, is the larger of
* training: 4 x the parameter bytes (weights, gradients, Adam's two moments) plus 2 x
  the bytes of every tensor autograd saves for the backward pass of one step at the
  paper's batch size (counted with ``torch.autograd.graph.saved_tensors_hooks``: the
  activations, and as many again for their gradients);
* evaluation: the parameter bytes plus 4 x the largest module output of one evaluation
  batch (forward hooks), measured on a few examples and scaled linearly to the chapter's
  evaluation batch: the largest activation, its input and two elementwise temporaries of
  its size (a Bernoulli log-probability). On a MixtureVAE's importance-sampled log p(x)
  (20 digits, k = 5000) the process's peak resident memory grew by 3.2 x its largest
  module output. Code that works through samples in chunks (``VAE.log_weights``) needs
  less than this estimate;
plus what the chapter keeps (stored HMC draws). Data are random tensors of the right
shape (binary where the chapter binarizes): these tests are about sizes, not data.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import pytest
import torch
from torch import nn

from probdl import (
    baselines,
    bbb,
    config,
    dlgm,
    dropout,
    exact,
    gan,
    laplace,
    mcmc,
    mlp,
    nade,
    priors,
    vae,
)
from probdl.predictive import predictive

LIMIT_GIB = 24.0
GIB = 2.0**30
N_MNIST_TRAIN = 50_000  # load_mnist("train", n=None): the first 50,000 training images


MEAN = ((4, 1), torch.float32)  # a regression network's output on four inputs


@dataclass
class Case:
    """One model of one chapter at paper sizes: ``step(model)`` returns the loss of one
    training step's forward pass; ``evaluate(model)`` one evaluation batch of ``eval_n``
    examples, whose activations are scaled to ``eval_batch``; ``expect`` checks the
    evaluation's output."""

    chapter: str
    name: str
    model: nn.Module
    step: Callable[[nn.Module], torch.Tensor]
    evaluate: Callable[[nn.Module], torch.Tensor]
    expect: tuple  # (shape, dtype) of the evaluation's output
    eval_n: int
    eval_batch: int
    kept_bytes: float = 0.0  # what the chapter stores besides the model (HMC draws)
    optimizer: bool = True  # False: the step is not a gradient step (EM)
    extra: dict = field(default_factory=dict)


def _bits(n, d=784, seed=0):
    return torch.bernoulli(
        torch.full((n, d), 0.3), generator=torch.Generator().manual_seed(seed)
    )


def _grey(n, d=784, seed=0):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed))


def _labels(n, k=10, seed=1):
    return torch.randint(k, (n,), generator=torch.Generator().manual_seed(seed))


def _regression(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 0.5
    return x, torch.sin(6 * x) + 0.1 * torch.randn(n, 1, generator=g)


def _regression_case(chapter, name, model, objective, x, y, batch, predict=None):
    """A network of one input batch (x, y): a step of ``objective``, the evaluation
    its predictive mean on four inputs (``predict(m, x)[0]``; default: its output)."""
    step = lambda m: objective(m, x, y)["loss"]  # noqa: E731
    mean = (lambda m: m(x[:4])) if predict is None else (lambda m: predict(m, x[:4])[0])
    return Case(chapter, name, model, step, mean, MEAN, 4, batch)


def _classifier_cases(chapter, name, model, objective, batch, n_pred):
    x, y = _grey(batch), _labels(batch)
    n = 4

    def evaluate(m):
        return (
            predictive(m, x[:n], n_pred)[0] if n_pred else torch.softmax(m(x[:n]), -1)
        )

    return Case(
        chapter,
        name,
        model,
        lambda m: objective(m, x, y)["loss"],
        evaluate,
        ((n, 10), torch.float32),
        n,
        batch,
    )


# --- the chapters ---------------------------------------------------------------------


def _setup():
    S = config.sizes("setup", "paper")
    x, y = _grey(100), _labels(100)  # the chapter: batch_size=100
    model = nn.Linear(784, 10)
    return [
        Case(
            "setup",
            "logistic regression",
            model,
            lambda m: nn.functional.cross_entropy(m(x), y),
            lambda m: m(x),
            ((100, 10), torch.float32),
            100,
            100,
            extra={"n_train": S["n_train"]},
        )
    ]


def _linear_vae(chapter, n_latent, batch):
    x = _grey(batch).double()
    model = exact.LinearGaussianVAE(784, n_latent, noise_var=0.05, seed=0).double()
    return Case(
        chapter,
        f"linear VAE, {n_latent} latents",
        model,
        lambda m: -m.elbo_mc(x, n=1).mean(),
        lambda m: m.log_evidence(x[:4]) - m.elbo(x[:4]),
        ((4,), torch.float64),
        4,
        batch,
    )


def _elbo():
    S = config.sizes("elbo", "paper")
    return [_linear_vae("elbo", S["n_latent"], S["batch_size"])]


def _gradients():
    S = config.sizes("gradients", "paper")
    return [_linear_vae("gradients", 8, max(S["batch_size"], S["vae_images"]))]


def _em_step(model, n_components):
    x = _bits(max(1000, n_components))
    model.fit_em(x, iterations=1, generator=torch.Generator().manual_seed(0))
    return -model.log_prob(x).mean()


def _nade():
    S = config.sizes("nade", "paper")
    x = _bits(S["batch_size"])
    made = nade.NADE(784, S["hidden"]).init_bias(x)
    mob = baselines.MixtureOfBernoullis(784, S["mob_components"])
    fvsbn = baselines.FVSBN(784).init_bias(x)
    fv = functools.partial(baselines.fvsbn_objective, l2=S["fvsbn_l2"])
    xe = _bits(S["fvsbn_batch"])
    like = ((4,), torch.float32)
    return [
        Case(
            "nade",
            "NADE",
            made,
            lambda m: nade.nade_objective(m, x)["loss"],
            lambda m: m.log_prob(x[:4]),
            like,
            4,
            1000,
        ),
        Case(
            "nade",
            "mixture of Bernoullis (one EM iteration)",
            mob,
            lambda m: _em_step(m, S["mob_components"]),
            lambda m: m.log_prob(x[:4]),
            like,
            4,
            10_000,
            optimizer=False,
        ),
        Case(
            "nade",
            "FVSBN",
            fvsbn,
            lambda m: fv(m, xe)["loss"],
            lambda m: m.log_prob(xe[:4]),
            like,
            4,
            1000,
        ),
    ]


def _bbb_regression():
    S = config.sizes("bbb_regression", "paper")
    H, B = S["hidden"], S["batch_size"]
    x, y = _regression(B)
    sizes = [1, H, H, 1]
    plain = mlp.PlainMLP(
        sizes, likelihood="gaussian", noise_std=S["init_noise"], learn_noise=True
    )
    prior = priors.GaussianPrior(S["prior_sigma"])
    kw = dict(likelihood="gaussian", parameterization="exp")
    model = bbb.BayesianMLP(
        sizes,
        prior,
        noise_std=S["init_noise"],
        learn_noise=True,
        init_sigma=S["init_sigma"],
        **kw,
    )
    elbo = functools.partial(bbb.elbo_objective, n_data=S["n_train"])
    return [
        _regression_case("bbb_regression", "plain", plain, mlp.nll_objective, x, y, B),
        _regression_case(
            "bbb_regression",
            "Bayes by Backprop",
            model,
            elbo,
            x,
            y,
            B,
            functools.partial(predictive, n_samples=S["n_pred_samples"]),
        ),
    ]


def _bbb_mnist():
    S = config.sizes("bbb_mnist", "paper")
    H, B = S["hidden"], S["batch_size"]
    sizes = [784, H, H, 10]
    elbo = functools.partial(bbb.elbo_objective, n_data=N_MNIST_TRAIN, kl="mc")
    pi, a, b = S["mixture_grid"][0]
    mixture = priors.ScaleMixturePrior(pi, math.exp(-a), math.exp(-b))
    n_pred = S["n_pred_samples"]
    return [
        _classifier_cases(
            "bbb_mnist", "plain", mlp.PlainMLP(sizes), mlp.nll_objective, B, 0
        ),
        _classifier_cases(
            "bbb_mnist",
            "dropout",
            mlp.PlainMLP(sizes, dropout=0.5, input_dropout=0.2),
            mlp.nll_objective,
            B,
            0,
        ),
        _classifier_cases(
            "bbb_mnist",
            "BBB, Gaussian prior",
            bbb.BayesianMLP(
                sizes,
                priors.GaussianPrior(S["gaussian_sigma"]),
                init_sigma=S["init_sigma"],
            ),
            elbo,
            B,
            n_pred,
        ),
        _classifier_cases(
            "bbb_mnist",
            "BBB, scale mixture",
            bbb.BayesianMLP(sizes, mixture, init_sigma=S["init_sigma"]),
            elbo,
            B,
            n_pred,
        ),
    ]


def _vae_case(
    chapter, name, model, batch, k_eval, eval_batch, objective=vae.elbo_objective
):
    x = _bits(batch)
    g = torch.Generator().manual_seed(0)
    return Case(
        chapter,
        name,
        model,
        lambda m: objective(m, x)["loss"],
        lambda m: m.log_marginal(x[:2], k=k_eval, generator=g),
        ((2,), torch.float32),
        2,
        eval_batch,
    )


def _vae():
    S = config.sizes("vae", "paper")
    eb = S["eval_batch"]
    return [
        _vae_case(
            "vae",
            "VAE",
            vae.VAE(784, S["n_hidden"], S["n_latent"], 2),
            S["batch_size"],
            S["k_eval"],
            eb,
        ),
        _vae_case(
            "vae",
            "wide VAE",
            vae.VAE(784, S["n_hidden"], S["n_latent_wide"], 2),
            S["batch_size"],
            S["k_eval"],
            eb,
        ),
        _vae_case(
            "vae",
            "2-D VAE",
            vae.VAE(784, S["n_hidden"], 2, 2),
            S["batch_size"],
            S["k_eval"],
            eb,
        ),
    ]


def _laplace():
    S = config.sizes("laplace", "paper")
    H, B = S["mnist_hidden"], S["mnist_batch"]
    msizes = [784, H, H, 10]
    vi = bbb.BayesianMLP(
        msizes,
        priors.GaussianPrior(1.0),
        local_reparameterization=True,
        init_sigma=1e-3,
    )
    elbo = functools.partial(bbb.elbo_objective, n_data=N_MNIST_TRAIN, kl="closed")
    x, y = _grey(B), _labels(B)

    @torch.enable_grad()
    def fit_laplace(
        m,
    ):  # the last-layer Kronecker Laplace of the MAP network, on one batch
        la = laplace.Laplace(
            m, "classification", hessian="kron", subset="last_layer"
        ).fit(x, y, batch_size=B)
        return torch.as_tensor(float(la.n_params))

    xr, yr = _regression(S["batch_size"])
    reg = mlp.PlainMLP(
        [1, S["hidden"], S["hidden"], 1],
        likelihood="gaussian",
        noise_std=S["init_noise"],
        learn_noise=True,
    )
    uci = mlp.PlainMLP(
        [13, S["uci_hidden"], 1], likelihood="gaussian", learn_noise=True
    )  # Boston: 13 inputs
    xu, yu = torch.randn(S["batch_size"], 13), torch.randn(S["batch_size"], 1)
    return [
        _classifier_cases(
            "laplace",
            "MNIST MAP network",
            mlp.PlainMLP(msizes),
            mlp.nll_objective,
            B,
            0,
        ),
        _classifier_cases(
            "laplace", "MNIST Bayes by Backprop", vi, elbo, B, S["n_pred_samples"]
        ),
        Case(
            "laplace",
            "MNIST last-layer Laplace",
            mlp.PlainMLP(msizes),
            lambda m: mlp.nll_objective(m, x, y)["loss"],
            fit_laplace,
            ((), torch.float32),
            B,
            B,
        ),
        _regression_case(
            "laplace", "regression MAP", reg, mlp.nll_objective, xr, yr, 100
        ),
        _regression_case("laplace", "UCI MAP", uci, mlp.nll_objective, xu, yu, 100),
    ]


class _Chains(nn.Module):
    """HMC's state: one flat weight vector per chain, as a parameter so the step can
    move it."""

    def __init__(self, post, chains):
        super().__init__()
        self.post = post
        self.theta = nn.Parameter(
            0.1
            * torch.randn(chains, post.dim, generator=torch.Generator().manual_seed(0))
        )


def _inference_menu():
    S = config.sizes("inference_menu", "paper")
    H = S["hidden"]
    sizes = [1, H, H, 1]
    x, y = _regression(S["n_train"])
    x_test, _ = _regression(S["n_test"], seed=1)
    post = mcmc.NetworkPosterior(
        sizes, x, y, noise_std=0.15, prior_sigma=S["prior_sigma"]
    )
    chains = _Chains(post, S["hmc_chains"])
    draws = (
        S["hmc_chains"] * S["hmc_samples"] * post.dim * 4.0
    )  # the stored draws, float32
    plain = mlp.PlainMLP(
        sizes, likelihood="gaussian", noise_std=S["init_noise"], learn_noise=True
    )
    xb, yb = x[: S["batch_size"]], y[: S["batch_size"]]
    n = 4
    return [
        Case(
            "inference_menu",
            "HMC, one gradient for every chain",
            chains,
            lambda m: -m.post.log_prob(m.theta).sum(),
            lambda m: m.post.predict(m.theta.detach(), x_test),
            ((S["hmc_chains"], S["n_test"], 1), torch.float32),
            S["n_test"],
            S["n_test"],
            kept_bytes=draws,
        ),
        Case(
            "inference_menu",
            "network (ensemble member, SWAG, dropout)",
            plain,
            lambda m: mlp.nll_objective(m, xb, yb)["loss"],
            lambda m: m(x_test[:n]),
            ((n, 1), torch.float32),
            n,
            100,
        ),
    ]


def _dropout():
    S = config.sizes("dropout", "paper")
    H, B = S["mnist_hidden"], S["mnist_batch_size"]
    clf = mlp.PlainMLP([784, H, H, 10], dropout=S["mnist_dropout"])
    gal = functools.partial(
        dropout.mc_dropout_objective,
        n_data=S["mnist_n_train"],
        length_scale=S["mnist_length_scale"],
    )
    svd = dropout.VariationalDropoutMLP(
        [784, 300, 100, 10], threshold=S["svd_threshold"]
    )
    sgvlb = functools.partial(dropout.sgvlb_objective, n_data=S["svd_n_train"])
    bnet = bbb.BayesianMLP(
        [784, 300, 100, 10],
        local_reparameterization=True,
        init_sigma=S["bbb_init_sigma"],
    )
    elbo = functools.partial(bbb.elbo_objective, n_data=S["mnist_n_train"], kl="closed")
    R = S["reg_hidden"]
    reg = mlp.PlainMLP(
        [1, R, R, 1],
        likelihood="gaussian",
        dropout=S["reg_dropout"],
        noise_std=0.15,
        learn_noise=True,
    )
    xr, yr = _regression(S["reg_batch_size"])
    reg_gal = functools.partial(
        dropout.mc_dropout_objective,
        n_data=S["reg_n_train"],
        length_scale=S["reg_length_scale"],
    )
    x = _grey(B)
    mc = functools.partial(
        dropout.mc_predict, generator=torch.Generator().manual_seed(0)
    )
    return [
        Case(
            "dropout",
            "MC dropout classifier",
            clf,
            lambda m: gal(m, x, _labels(B))["loss"],
            lambda m: mc(m, x[:4], S["mnist_mc_samples"]),
            ((4, 10), torch.float32),
            4,
            B,
        ),
        _classifier_cases(
            "dropout", "sparse variational dropout", svd, sgvlb, S["svd_batch_size"], 0
        ),
        _classifier_cases("dropout", "Bayes by Backprop", bnet, elbo, B, 0),
        _regression_case(
            "dropout",
            "MC dropout regression",
            reg,
            reg_gal,
            xr,
            yr,
            500,
            functools.partial(mc, n_samples=S["reg_mc_samples"]),
        ),
    ]


def _gan():
    S = config.sizes("gan", "paper")
    B = S["batch_size"]
    model = gan.GAN(
        gan.Generator([S["noise_mnist"], *S["g_hidden"], 784], output="sigmoid"),
        gan.Discriminator([784, *S["d_hidden"]], dropout=S["d_dropout"]),
    )
    x = _grey(B)

    def gan_losses(
        m,
    ):  # the two losses of one step of each player, as train_gan computes them
        d = gan.discriminator_objective(m, x)["loss"]
        return d + gan.generator_objective(m, B)["loss"]

    def parzen(
        m,
    ):  # the Parzen score of a batch of test digits against n_parzen generated samples
        return gan.parzen_log_likelihood(m.sample(S["n_parzen"]), x, S["sigmas"][0])

    clf = mlp.PlainMLP(S["clf_sizes"])
    return [
        Case("gan", "GAN", model, gan_losses, parzen, ((), torch.float64), B, B),
        _vae_case(
            "gan",
            "VAE",
            vae.VAE(784, S["vae_hidden"], S["vae_latent"]),
            B,
            S["k_vae"],
            1000,
        ),
        Case(
            "gan",
            "NADE",
            nade.NADE(784, S["nade_hidden"]),
            lambda m: nade.nade_objective(m, _bits(B))["loss"],
            lambda m: m.log_prob(_bits(4)),
            ((4,), torch.float32),
            4,
            1000,
        ),
        Case(
            "gan",
            "feature classifier",
            clf,
            lambda m: mlp.nll_objective(m, x, _labels(B))["loss"],
            lambda m: gan.mlp_features(m, x[:4]),
            ((4, S["clf_sizes"][-2]), torch.float32),
            4,
            1000,
        ),
    ]


def _mixture_posteriors():
    S = config.sizes("mixture_posteriors", "paper")
    B, k = S["batch_size"], S["k_is"]
    cases = []
    for c in S["components"]:
        model = dlgm.MixtureVAE(784, S["n_hidden"], S["n_latent"], n_components=c)
        cases.append(
            _vae_case(
                "mixture_posteriors",
                f"K = {c}",
                model,
                B,
                k,
                100,
                dlgm.mixture_vae_objective,
            )
        )
    adaptive = dlgm.MixtureVAE(
        784,
        S["n_hidden"],
        S["n_latent"],
        n_components=S["max_components"],
        adaptive=True,
        threshold=S["threshold"],
    )
    obj = functools.partial(
        dlgm.mixture_vae_objective, weight_entropy=S["weight_entropy"]
    )
    cases.append(_vae_case("mixture_posteriors", "adaptive", adaptive, B, k, 100, obj))
    cases.append(
        _vae_case(
            "mixture_posteriors",
            "VAE",
            vae.VAE(784, S["n_hidden"], S["n_latent"]),
            B,
            k,
            100,
        )
    )
    return cases


BUILDERS = {
    "setup": _setup,
    "elbo": _elbo,
    "gradients": _gradients,
    "nade": _nade,
    "bbb_regression": _bbb_regression,
    "bbb_mnist": _bbb_mnist,
    "vae": _vae,
    "laplace": _laplace,
    "inference_menu": _inference_menu,
    "dropout": _dropout,
    "gan": _gan,
    "mixture_posteriors": _mixture_posteriors,
}


def _nbytes(t) -> float:
    if torch.is_tensor(t):
        return float(t.numel() * t.element_size())
    if isinstance(t, (tuple, list)):
        return sum(_nbytes(u) for u in t)
    return 0.0


def _param_bytes(model: nn.Module) -> float:
    return sum(_nbytes(p) for p in model.parameters())


def train_step(case: Case) -> tuple[torch.Tensor, float, float]:
    """One training step of ``case`` (forward, backward, Adam): the loss, the bytes
    autograd saved for the backward pass, and the seconds the step took."""
    saved = [0.0]

    def pack(t):
        saved[0] += _nbytes(t)
        return t

    params = [p for p in case.model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3) if case.optimizer else None
    case.model.train()
    t0 = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = case.step(case.model)
    if opt is not None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return loss.detach(), saved[0], time.perf_counter() - t0


def evaluate(case: Case) -> tuple[torch.Tensor, float]:
    """One evaluation of ``case``: its output and the bytes of its largest module
    output."""
    largest = [0.0]

    def hook(module, inputs, output):
        largest[0] = max(largest[0], _nbytes(output))

    hooks = [m.register_forward_hook(hook) for m in case.model.modules()]
    try:
        case.model.eval()
        with torch.no_grad():
            out = case.evaluate(case.model)
    finally:
        for h in hooks:
            h.remove()
    return out, largest[0]


def memory_estimate(case: Case, saved: float, largest: float) -> dict[str, float]:
    """Bytes a paper-size run needs, training and evaluation (see the module's
    docstring)."""
    p = _param_bytes(case.model)
    train = (4 if case.optimizer else 1) * p + 2 * saved + case.kept_bytes
    ev = p + 4 * largest * case.eval_batch / case.eval_n + case.kept_bytes
    return {"params": p, "train": train, "eval": ev, "peak": max(train, ev)}


def cases(chapter: str) -> list[Case]:
    torch.manual_seed(0)
    return BUILDERS[chapter]()


def test_every_chapter_is_covered():
    assert set(BUILDERS) == set(config.CHAPTERS), set(config.CHAPTERS) ^ set(BUILDERS)


@pytest.mark.parametrize("chapter", list(BUILDERS))
def test_paper_sizes_train_evaluate_and_fit(chapter):
    for case in cases(chapter):
        what = f"{chapter} / {case.name} at paper sizes"
        dtype = next(case.model.parameters()).dtype
        before = [p.detach().clone() for p in case.model.parameters()]
        loss, saved, _ = train_step(case)
        assert loss.dim() == 0 and torch.isfinite(loss), f"{what}: training loss {loss}"
        assert loss.dtype == dtype, f"{what}: loss is {loss.dtype}, parameters {dtype}"
        moved = [not torch.equal(a, b) for a, b in zip(before, case.model.parameters())]
        assert any(moved), f"{what}: one training step moved no parameter"
        out, largest = evaluate(case)
        shape, out_dtype = case.expect
        assert tuple(out.shape) == shape and out.dtype == out_dtype, (
            f"{what}: evaluation gave {tuple(out.shape)} {out.dtype}"
        )
        assert torch.isfinite(out).all(), f"{what}: evaluation is not finite"
        mem = memory_estimate(case, saved, largest)
        assert mem["peak"] < LIMIT_GIB * GIB, (
            f"{what} would not fit in {LIMIT_GIB:g} GiB: about {mem['peak'] / GIB:.1f} "
            "GiB "
            f"(parameters {mem['params'] / GIB:.2f} GiB, training step "
            f"{mem['train'] / GIB:.2f} GiB, "
            f"evaluation batch of {case.eval_batch} {mem['eval'] / GIB:.2f} GiB); "
            f"lower the batch or the sizes in probdl/sizes/{chapter}.py"
        )


def test_memory_estimate_catches_a_model_too_large():
    """The estimate is not vacuous: a 784-60000-10 network at batch 100000 is far over
    24 GiB."""
    x = _grey(8)
    big = Case(
        "none",
        "huge",
        mlp.PlainMLP([784, 60_000, 10]),
        lambda m: m(x).sum(),
        lambda m: m(x),
        ((8, 10), torch.float32),
        8,
        100_000,
    )
    _, saved, _ = train_step(big)
    _, largest = evaluate(big)
    mem = memory_estimate(big, saved, largest)
    assert mem["peak"] > LIMIT_GIB * GIB, mem
    assert saved >= 8 * 60_000 * 4, (
        saved
    )  # at least the hidden activations were counted
