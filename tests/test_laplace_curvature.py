"""The last layer's GGN in Kronecker blocks, against the route through the Jacobian
rows."""

import pytest
import torch

from probdl import laplace_curvature as curv


@pytest.mark.parametrize("bias", [True, False])
def test_last_layer_ggn_in_blocks_equals_the_jacobian_route(bias):
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4, bias=bias)
    ).double()
    net = curv.Network(m, ["2.weight", "2.bias"] if bias else ["2.weight"], m[2])
    phi = net.features(torch.randn(30, 7, dtype=torch.float64))
    v = curv.output_sqrt(net(net.theta, phi), "classification")
    vj = net.vjac(v, phi).reshape(-1, net.theta.numel())
    assert torch.allclose(curv.last_layer_ggn(net, v, phi), vj.T @ vj, atol=1e-12)
