"""oneDNN linear products: values and gradients against a plain-loop reference, and what they leave alone."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torch_geometric.nn import GCNConv

from gcnretrieval.models.onednn import onednn_linear, onednn_linear_available

needs_onednn = pytest.mark.skipif(not onednn_linear_available(), reason="this PyTorch has no oneDNN linear kernel")
ONEDNN_NODE = "_OneDNNLinearFunctionBackward"


def loop_linear(x: list[list[float]], w: list[list[float]], b: list[float]) -> list[list[float]]:
    """y[i][j] = sum_k x[i][k] * w[j][k] + b[j], in Python floats."""
    return [[sum(x[i][k] * w[j][k] for k in range(len(x[0]))) + b[j] for j in range(len(w))] for i in range(len(x))]


def loop_gradients(x, w, g):
    """For L = sum(g * y): dL/dx = g W, dL/dW = g^T x, dL/db = sum_i g_i, in Python floats."""
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
    layer = nn.Linear(13, 6, bias=bias)
    x = torch.randn(5, 13, requires_grad=True)
    g = torch.randn(5, 6)
    with onednn_linear():
        y = layer(x)
    assert type(y.grad_fn).__name__ == ONEDNN_NODE  # the oneDNN path ran
    (y * g).sum().backward()
    b = layer.bias.tolist() if bias else [0.0] * 6
    assert close(y, loop_linear(x.tolist(), layer.weight.tolist(), b), 1e-5)
    grad_x, grad_w, grad_b = loop_gradients(x.tolist(), layer.weight.tolist(), g.tolist())
    assert close(x.grad, grad_x, 1e-5) and close(layer.weight.grad, grad_w, 1e-5)
    if bias:
        assert close(layer.bias.grad, grad_b, 1e-5)


@needs_onednn
def test_matches_f_linear_at_model_shapes_and_on_strided_inputs():
    torch.manual_seed(1)
    layer = nn.Linear(300, 200)
    base = torch.randn(300, 64)
    x_ours, x_ref = base.clone().t().requires_grad_(), base.clone().t().requires_grad_()  # non-contiguous
    g = torch.randn(64, 200)
    with onednn_linear():
        y_ours = layer(x_ours)
    (y_ours * g).sum().backward()
    grads_ours = [x_ours.grad, layer.weight.grad.clone(), layer.bias.grad.clone()]
    layer.zero_grad()
    y_ref = layer(x_ref)
    (y_ref * g).sum().backward()
    assert torch.allclose(y_ours, y_ref, rtol=1e-5, atol=1e-5)
    for ours, ref in zip(grads_ours, (x_ref.grad, layer.weight.grad, layer.bias.grad)):
        assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-4)


@needs_onednn
def test_pyg_layers_inside_the_context_use_it():
    torch.manual_seed(2)
    conv = GCNConv(8, 4)
    x, edge_index = torch.randn(5, 8), torch.tensor([[0, 1, 2], [1, 2, 3]])
    reference = conv(x, edge_index)
    with onednn_linear():
        out = conv(x, edge_index)
    out.sum().backward()
    assert torch.allclose(out, reference, atol=1e-6) and conv.lin.weight.grad is not None
    nodes, todo = set(), [out.grad_fn]
    while todo:  # the graph holds a oneDNN node
        node = todo.pop()
        if node is not None and type(node).__name__ not in nodes:
            nodes.add(type(node).__name__)
            todo += [next_node for next_node, _ in node.next_functions]
    assert ONEDNN_NODE in nodes


@needs_onednn
def test_an_input_without_gradient_gets_none_and_the_weights_still_learn():
    layer = nn.Linear(8, 4)
    x = torch.randn(3, 8)  # features: no gradient asked
    with onednn_linear():
        y = layer(x)
    y.sum().backward()
    assert x.grad is None
    assert torch.allclose(layer.weight.grad, torch.ones(3, 4).t() @ x, atol=1e-6)


@pytest.mark.parametrize("case", ["float64", "bf16-autocast", "mkldnn-disabled", "batched-3d", "disabled"])
def test_other_calls_are_left_to_f_linear(case: str):
    torch.manual_seed(4)
    layer = nn.Linear(6, 3)
    x = torch.randn(4, 6, requires_grad=True)
    with onednn_linear(enabled=case != "disabled"):
        if case == "float64":
            layer, x = layer.double(), x.double()
            y = layer(x)
        elif case == "bf16-autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = layer(x)
            assert y.dtype == torch.bfloat16
        elif case == "mkldnn-disabled":
            with torch.backends.mkldnn.flags(enabled=False, allow_tf32=False):
                y = layer(x)
        elif case == "batched-3d":
            x = torch.randn(2, 4, 6, requires_grad=True)
            y = layer(x)
        else:
            y = layer(x)
    assert type(y.grad_fn).__name__ != ONEDNN_NODE
    expected = torch.nn.functional.linear(x.double(), layer.weight.double(), layer.bias.double())
    assert torch.allclose(y.double(), expected, rtol=1e-2 if case == "bf16-autocast" else 1e-6, atol=1e-2)


@needs_onednn
def test_flop_counter_counts_the_onednn_products_like_mm():
    layer = nn.Linear(7, 5)
    x = torch.randn(3, 7, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        with onednn_linear():
            y = layer(x)
        y.sum().backward()
    assert counter.get_total_flops() == 3 * (2 * 3 * 7 * 5)  # forward, input gradient, weight gradient


def as_cpu(monkeypatch, vendor: str, avx512: bool, mkl: bool = True) -> None:
    """Make the preference rule see another processor (and BLAS library) than this machine's."""
    import gcnretrieval.models.onednn as onednn

    monkeypatch.setattr(onednn, "_this_cpu", lambda: (vendor, avx512))
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: mkl)


AMD_INFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"
INTEL_AVX2_INFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\n"


def test_cpu_vendor_and_flags_are_read_from_cpuinfo():
    from gcnretrieval.models.onednn import cpu_vendor_and_avx512

    assert cpu_vendor_and_avx512(AMD_INFO) == ("AuthenticAMD", True)
    assert cpu_vendor_and_avx512(INTEL_AVX2_INFO) == ("GenuineIntel", False)
    assert cpu_vendor_and_avx512("flags : avx512fx\n") == ("", False)  # a flag that only starts alike
    assert cpu_vendor_and_avx512("") == ("", False)


@needs_onednn
@pytest.mark.parametrize("vendor, avx512, mkl, expected", [
    ("AuthenticAMD", True, True, True),     # MKL would run its AVX2 kernels
    ("GenuineIntel", True, True, False),    # MKL runs its own AVX-512 kernels
    ("AuthenticAMD", False, True, False),   # AVX2 either way: no reason to pay the mode's Python
    ("AuthenticAMD", True, False, False),   # another BLAS library
    ("", True, True, False),                # vendor unknown (not Linux)
])
def test_onednn_is_preferred_on_avx512_cpus_other_than_intel_with_mkl(vendor, avx512, mkl, expected, monkeypatch):
    from gcnretrieval.models.onednn import onednn_linear_preferred, use_onednn_linear

    as_cpu(monkeypatch, vendor, avx512, mkl)
    assert onednn_linear_preferred() is expected
    assert use_onednn_linear("cpu") is expected
    assert use_onednn_linear("meta") is False


@needs_onednn
def test_a_training_step_on_the_cpu_runs_its_linear_layers_through_onednn(monkeypatch):
    from gcnretrieval.config import load_config
    from gcnretrieval.training import Trainer, build_experiment

    as_cpu(monkeypatch, "AuthenticAMD", True)

    recipe = {"run": {"seed": 0}, "data": {"source": "synthetic", "synthetic": {"num_train": 400, "num_test": 8}},
              "graph": {"node_features": "random"}, "train": {"batch_size": 20, "epochs": 1, "device": "cpu"},
              "eval": {"select_on": "test"}}
    trainer = Trainer(build_experiment(load_config(recipe)))
    image, text, labels = trainer.loader.dataset[list(range(20))]
    with FlopCounterMode(display=False) as counter:
        trainer._call_forward_loss(image, text, labels)
    assert any("_linear_pointwise" in str(op) for op in counter.get_flop_counts()["Global"])


@needs_onednn
def test_bias_given_by_keyword_is_added():
    torch.manual_seed(5)
    x, weight, bias = torch.randn(4, 6), torch.randn(3, 6), torch.randn(3)
    with onednn_linear():
        y = torch.nn.functional.linear(x, weight, bias=bias)
    assert close(y, loop_linear(x.tolist(), weight.tolist(), bias.tolist()), 1e-5)


@needs_onednn
@pytest.mark.parametrize("vendor, precision, expected", [("AuthenticAMD", "32", True), ("AuthenticAMD", "bf16-mixed", False),
                                                         ("GenuineIntel", "32", False)])
def test_the_trainer_enters_the_context_for_float32_where_onednn_is_preferred(vendor: str, precision: str,
                                                                               expected: bool, monkeypatch):
    import gcnretrieval.training.trainer as trainer_module
    from gcnretrieval.config import load_config
    from gcnretrieval.training import Trainer, build_experiment

    as_cpu(monkeypatch, vendor, avx512=True)
    asked = []

    def spy(enabled: bool = True):
        asked.append(enabled)
        return onednn_linear(enabled)

    monkeypatch.setattr(trainer_module, "onednn_linear", spy)
    recipe = {"run": {"seed": 0}, "data": {"source": "synthetic", "synthetic": {"num_train": 400, "num_test": 8}},
              "graph": {"node_features": "random"},
              "train": {"batch_size": 20, "epochs": 1, "device": "cpu", "precision": precision},
              "eval": {"select_on": "test"}}
    trainer = Trainer(build_experiment(load_config(recipe)))
    image, text, labels = trainer.loader.dataset[list(range(20))]
    trainer._call_forward_loss(image, text, labels)
    assert asked == [expected]


@needs_onednn
@pytest.mark.parametrize("vendor, expected", [("AuthenticAMD", True), ("GenuineIntel", False)])
def test_embedding_a_split_follows_the_same_rule(vendor: str, expected: bool, monkeypatch):
    import gcnretrieval.evaluation as evaluation
    from gcnretrieval.data import make_synthetic
    from gcnretrieval.graphs import build_label_graph
    from gcnretrieval.models import CrossModalModel

    as_cpu(monkeypatch, vendor, avx512=True)
    asked = []
    monkeypatch.setattr(evaluation, "onednn_linear", lambda enabled=True: asked.append(enabled) or onednn_linear(enabled))
    data = make_synthetic(num_train=40, num_test=8, num_labels=4, image_dim=12, text_dim=10, seed=0)
    graph = build_label_graph(data.train.labels, node_features=torch.randn(4, 6).numpy())
    model = CrossModalModel(12, 10, graph, common_dim=8)
    image, text = evaluation.embed_split(model, data.test, torch.device("cpu"))
    assert asked == [expected] and image.shape == (8, 8) and text.shape == (8, 8)


@pytest.mark.parametrize("case", ["scalar-bias", "zero-rows", "zero-features", "sparse-input"])
def test_calls_the_kernel_cannot_take_give_f_linear_results(case: str):
    torch.manual_seed(6)
    x, weight, bias = torch.randn(3, 4, requires_grad=True), torch.randn(2, 4), torch.randn(2)
    if case == "scalar-bias":
        bias = torch.tensor(5.0)
    elif case == "zero-rows":
        x = torch.randn(0, 4, requires_grad=True)
    elif case == "zero-features":
        x, weight = torch.randn(3, 0, requires_grad=True), torch.randn(2, 0)
    else:
        x = torch.randn(3, 4).to_sparse()
    with onednn_linear():
        y = torch.nn.functional.linear(x, weight, bias)
    expected = torch.nn.functional.linear(x.to_dense().double(), weight.double(), bias.double())
    assert torch.allclose(y.to_dense().double(), expected, atol=1e-5)
    if x.requires_grad:
        y.sum().backward()
        assert x.grad.shape == x.shape


@needs_onednn
def test_second_derivatives_and_torch_func_match_float64():
    torch.manual_seed(7)
    layer = nn.Linear(6, 4)
    x = torch.randn(5, 6, requires_grad=True)
    with onednn_linear():
        y = layer(x)
    assert type(y.grad_fn).__name__ == ONEDNN_NODE
    (grad_x,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
    grad_x.pow(2).sum().backward()  # d/dW of |dL/dx|^2: needs the backward to be differentiable
    x64 = x.detach().double().requires_grad_()
    w64, b64 = layer.weight.detach().double().requires_grad_(), layer.bias.detach().double()
    (grad_x64,) = torch.autograd.grad(torch.nn.functional.linear(x64, w64, b64).pow(2).sum(), x64, create_graph=True)
    grad_x64.pow(2).sum().backward()
    assert torch.allclose(grad_x.double(), grad_x64, rtol=1e-5, atol=1e-5)
    assert torch.allclose(layer.weight.grad.double(), w64.grad, rtol=1e-4, atol=1e-4)

    def loss(inputs: torch.Tensor) -> torch.Tensor:
        with onednn_linear():
            return layer(inputs).pow(2).sum()

    assert torch.allclose(torch.func.grad(loss)(x.detach()).double(), grad_x64.detach(), rtol=1e-5, atol=1e-5)
