"""The oneDNN-backed Linear: values and gradients against a plain-loop reference, and its fallbacks."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gcnretrieval.models.linear import Linear, onednn_linear_available

needs_onednn = pytest.mark.skipif(not onednn_linear_available(), reason="this PyTorch has no oneDNN linear kernel")


def loop_linear(x: list[list[float]], w: list[list[float]], b: list[float]) -> list[list[float]]:
    """y[i][j] = sum_k x[i][k] * w[j][k] + b[j], in Python floats."""
    return [[sum(x[i][k] * w[j][k] for k in range(len(x[0]))) + b[j] for j in range(len(w))] for i in range(len(x))]


def loop_gradients(x, w, g):
    """dL/dx = g W, dL/dW = g^T x, dL/db = sum_i g_i for L = sum(g * y)."""
    n, d_in, d_out = len(x), len(x[0]), len(w)
    grad_x = [[sum(g[i][j] * w[j][k] for j in range(d_out)) for k in range(d_in)] for i in range(n)]
    grad_w = [[sum(g[i][j] * x[i][k] for i in range(n)) for k in range(d_in)] for j in range(d_out)]
    grad_b = [sum(g[i][j] for i in range(n)) for j in range(d_out)]
    return grad_x, grad_w, grad_b


def close(a: torch.Tensor, b: list, tol: float) -> bool:
    return torch.allclose(a.double(), torch.tensor(b, dtype=torch.float64), rtol=tol, atol=tol)


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
def test_values_and_gradients_match_the_loop_reference(bias: bool):
    torch.manual_seed(0)
    layer = Linear(13, 6, bias=bias)
    x = torch.randn(5, 13, requires_grad=True)
    g = torch.randn(5, 6)
    y = layer(x)
    assert type(y.grad_fn).__name__ == "_OneDNNLinearFunctionBackward"  # the oneDNN path ran
    (y * g).sum().backward()
    b = layer.bias.tolist() if bias else [0.0] * 6
    assert close(y, loop_linear(x.tolist(), layer.weight.tolist(), b), 1e-5)
    grad_x, grad_w, grad_b = loop_gradients(x.tolist(), layer.weight.tolist(), g.tolist())
    assert close(x.grad, grad_x, 1e-5) and close(layer.weight.grad, grad_w, 1e-5)
    if bias:
        assert close(layer.bias.grad, grad_b, 1e-5)


@needs_onednn
def test_matches_nn_linear_at_model_shapes_and_on_strided_inputs():
    torch.manual_seed(1)
    ours, theirs = Linear(300, 200), nn.Linear(300, 200)
    theirs.load_state_dict(ours.state_dict())
    base = torch.randn(300, 64)
    x_ours, x_theirs = base.clone().t().requires_grad_(), base.clone().t().requires_grad_()  # non-contiguous
    g = torch.randn(64, 200)
    (ours(x_ours) * g).sum().backward()
    (theirs(x_theirs) * g).sum().backward()
    assert torch.allclose(ours(x_ours), theirs(x_theirs), rtol=1e-5, atol=1e-5)
    for a, b in ((x_ours.grad, x_theirs.grad), (ours.weight.grad, theirs.weight.grad), (ours.bias.grad, theirs.bias.grad)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-4)


@needs_onednn
def test_an_input_without_gradient_gets_none_and_the_weights_still_learn():
    layer = Linear(8, 4)
    x = torch.randn(3, 8)  # features: no gradient asked
    layer(x).sum().backward()
    assert layer.weight.grad is not None and x.grad is None
    assert torch.allclose(layer.weight.grad, torch.ones(3, 4).t() @ x, atol=1e-6)


def test_initialisation_and_state_dict_are_those_of_nn_linear():
    torch.manual_seed(3)
    ours = Linear(9, 4)
    torch.manual_seed(3)
    theirs = nn.Linear(9, 4)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert all(torch.equal(ours.state_dict()[k], theirs.state_dict()[k]) for k in ours.state_dict())


@pytest.mark.parametrize("case", ["float64", "bf16-autocast", "mkldnn-disabled", "batched-3d"])
def test_other_inputs_take_the_nn_linear_path(case: str):
    torch.manual_seed(4)
    layer = Linear(6, 3)
    x = torch.randn(4, 6)
    if case == "float64":
        layer, x = layer.double(), x.double()
        y = layer(x)
    elif case == "bf16-autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x.requires_grad_())
        assert y.dtype == torch.bfloat16
    elif case == "mkldnn-disabled":
        with torch.backends.mkldnn.flags(enabled=False, allow_tf32=False):
            y = layer(x.requires_grad_())
    else:
        x = torch.randn(2, 4, 6)
        y = layer(x)
    assert "OneDNN" not in type(y.grad_fn).__name__
    expected = torch.nn.functional.linear(x.to(torch.float64), layer.weight.double(), layer.bias.double())
    assert torch.allclose(y.double(), expected, rtol=1e-2 if case == "bf16-autocast" else 1e-6, atol=1e-2)


@needs_onednn
def test_flop_counter_counts_the_onednn_products_like_mm():
    layer = Linear(7, 5)
    x = torch.randn(3, 7, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        layer(x).sum().backward()
    assert counter.get_total_flops() == 3 * (2 * 3 * 7 * 5)  # forward, input gradient, weight gradient
