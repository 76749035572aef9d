"""KFAC (hessian="kron") against laplace-torch's KronLaplace. laplace-torch keeps
separate blocks for a layer's weight (G_w kron A_w) and bias (G_b); this package keeps
one block per layer, G kron A with a 1 appended to the inputs, which adds the
weight-bias cross terms. What must agree: the weight block, the bias block, hence the
trace; with the cross terms dropped, the evidence."""

import warnings

import pytest
import torch
from test_laplace import small_problem

from probdl import laplace


@pytest.mark.parametrize("likelihood", ["regression", "classification"])
@pytest.mark.parametrize("subset", ["all", "last_layer"])
def test_kron_blocks_against_laplace_torch(likelihood, subset):
    lt = pytest.importorskip("laplace")
    from torch.utils.data import DataLoader, TensorDataset

    model, x, y, kw = small_problem(likelihood)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lt.Laplace(
            model, likelihood, subset_of_weights=subset, hessian_structure="kron", **kw
        )
        ref.fit(DataLoader(TensorDataset(x, y), batch_size=len(x)))
        ref_lml = ref.log_marginal_likelihood().item()
    ours = laplace.Laplace(model, likelihood, hessian="kron", subset=subset, **kw).fit(
        x, y
    )
    facs = ref.H_facs.kfacs  # [G_w, A_w], [G_b] per layer
    assert len(facs) == 2 * len(ours.kron)
    blocks, trace_ours = [], 0.0
    for (lg, qg, la, qa), (gw, aw), (gb,) in zip(ours.kron, facs[::2], facs[1::2]):
        g, a = (qg * lg) @ qg.T, (qa * la) @ qa.T
        w_block, b_block = torch.kron(g, a[:-1, :-1]), g * a[-1, -1]
        torch.testing.assert_close(
            w_block, torch.kron(gw.double(), aw.double()), rtol=1e-10, atol=1e-10
        )
        torch.testing.assert_close(b_block, gb.double(), rtol=1e-10, atol=1e-10)
        blocks += [w_block, b_block]
        trace_ours += (lg.sum() * la.sum()).item()  # trace of the whole layer block
    h = torch.block_diag(*blocks)
    torch.testing.assert_close(trace_ours, h.trace().item(), rtol=1e-10, atol=0)
    # the evidence of laplace-torch's block structure, from this package's factors
    delta, s2 = ours.prior_precision, ours.sigma_noise**2
    post = h / s2 + delta * torch.eye(len(h), dtype=torch.float64)
    logdet_ratio = torch.logdet(post) - len(h) * torch.log(delta)
    lml = ours.log_likelihood() - 0.5 * (logdet_ratio + delta * ours.mean @ ours.mean)
    assert abs(lml.item() - ref_lml) < 1e-8 * abs(ref_lml)
    # the cross terms are what differs: the two evidences are not the same number
    assert abs(ours.log_marginal_likelihood().item() - ref_lml) > 1e-3
