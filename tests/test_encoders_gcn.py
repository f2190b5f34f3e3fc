"""GCN encoder against dense D^-1/2 A D^-1/2 propagation written with plain loops."""
from __future__ import annotations

import math

import pytest
import torch

from gcnretrieval.encoders import GCN, build_encoder

C, F_IN, F_OUT = 5, 4, 3


def dense_graph(self_loops: bool):
    """A[i][j] = weight of message j -> i (asymmetric); label 4 isolated."""
    A = [[0.0] * C for _ in range(C)]
    A[0][1], A[1][0], A[1][2], A[2][0], A[3][1] = 0.5, 0.7, 0.2, 0.9, 0.4
    if self_loops:
        for i in range(C):
            A[i][i] = 1.0
    listed = [(j, i) for i in range(C) for j in range(C) if A[i][j] != 0]
    edge_index = torch.tensor(listed, dtype=torch.long).t()
    weight = torch.tensor([A[i][j] for j, i in listed], dtype=torch.float64)
    return A, edge_index, weight


def reference_layer(h, A, weight, bias):
    """out_i = sum_j d_i^-1/2 A_ij d_j^-1/2 (h_j W^T) + b with d_i = sum_j A_ij."""
    W, b = weight.tolist(), bias.tolist()
    hw = [[sum(W[r][c] * row[c] for c in range(len(row))) for r in range(len(W))] for row in h]
    deg = [sum(A[i]) for i in range(len(A))]
    out = []
    for i in range(len(A)):
        acc = list(b)
        for j in range(len(A)):
            if A[i][j] != 0:
                norm = A[i][j] / math.sqrt(deg[i] * deg[j])
                acc = [a + norm * v for a, v in zip(acc, hw[j])]
        out.append(acc)
    return out


def leaky(rows):
    return [[v if v > 0 else 0.2 * v for v in row] for row in rows]


@pytest.mark.parametrize("self_loops", [True, False])
def test_two_layers_match_dense_normalised_propagation(self_loops):
    A, edge_index, weight = dense_graph(self_loops)
    # the given self-loops are used as they are; missing ones are added with weight 1
    A_used = [[A[i][j] if (i != j or A[i][i] != 0) else 1.0 for j in range(C)] for i in range(C)]
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    encoder = build_encoder("gcn", F_IN, F_OUT, num_layers=2, jk=None).double()
    with torch.no_grad():
        for conv in encoder.convs:
            conv.bias.normal_()
    h = x.tolist()
    h = leaky(reference_layer(h, A_used, encoder.convs[0].lin.weight, encoder.convs[0].bias))
    h = reference_layer(h, A_used, encoder.convs[1].lin.weight, encoder.convs[1].bias)
    out = encoder(x, edge_index, weight)
    assert (out - torch.tensor(h, dtype=torch.float64)).abs().max() < 1e-10


def test_given_self_loop_weights_are_kept():
    A, edge_index, weight = dense_graph(self_loops=True)
    weight = weight.clone()
    loops = edge_index[0] == edge_index[1]
    weight[loops] = 2.5
    A_used = [[2.5 if i == j else A[i][j] for j in range(C)] for i in range(C)]
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    encoder = build_encoder("gcn", F_IN, F_OUT, num_layers=1, jk=None).double()
    expected = reference_layer(x.tolist(), A_used, encoder.convs[0].lin.weight, encoder.convs[0].bias)
    out = encoder(x, edge_index, weight)
    assert (out - torch.tensor(expected, dtype=torch.float64)).abs().max() < 1e-10


def test_defaults():
    encoder = build_encoder("gcn", F_IN, F_OUT)
    assert isinstance(encoder, GCN)
    assert isinstance(encoder.act, torch.nn.LeakyReLU) and encoder.act.negative_slope == 0.2
    assert all(conv.normalize and conv.add_self_loops for conv in encoder.convs)


def reference_out_degree_layer(h, A, weight):
    """out_i = sum_j e_i^-1/2 A_ij e_j^-1/2 (h_j W^T), e_k = sum_i A_ik (weights of the messages leaving k)."""
    W = weight.tolist()
    hw = [[sum(W[r][c] * row[c] for c in range(len(row))) for r in range(len(W))] for row in h]
    out_deg = [sum(A[i][k] for i in range(len(A))) for k in range(len(A))]
    out = []
    for i in range(len(A)):
        acc = [0.0] * len(W)
        for j in range(len(A)):
            if A[i][j] != 0:
                norm = A[i][j] / math.sqrt(out_deg[i] * out_deg[j])
                acc = [a + norm * v for a, v in zip(acc, hw[j])]
        out.append(acc)
    return out


def _check_two_layers_against(reference_layer, A, edge_index, weight, dtype, **options):
    """A two-layer encoder built with ``options`` (no bias, no jumping knowledge) against the loop reference."""
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    encoder = build_encoder("gcn", F_IN, F_OUT, num_layers=2, jk=None, bias=False, **options).to(dtype)
    assert all(conv.bias is None for conv in encoder.convs)
    h = leaky(reference_layer(x.tolist(), A, encoder.convs[0].lin.weight.double()))
    h = reference_layer(h, A, encoder.convs[1].lin.weight.double())
    out = encoder(x.to(dtype), edge_index, weight.to(dtype))
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert out.dtype == dtype
    assert (out.double() - torch.tensor(h, dtype=torch.float64)).abs().max() < tol
    return encoder


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("self_loops", [True, False])
def test_out_degree_without_bias_matches_loop_reference(dtype, self_loops):
    A, edge_index, weight = dense_graph(self_loops)
    A_used = [[A[i][j] if (i != j or A[i][i] != 0) else 1.0 for j in range(C)] for i in range(C)]
    _check_two_layers_against(reference_out_degree_layer, A_used, edge_index, weight, dtype, degree="source")


def test_out_degree_equals_in_degree_on_a_symmetric_graph():
    A, edge_index, weight = dense_graph(self_loops=True)
    sym = [[max(A[i][j], A[j][i]) for j in range(C)] for i in range(C)]
    listed = [(j, i) for i in range(C) for j in range(C) if sym[i][j] != 0]
    edge_index = torch.tensor(listed, dtype=torch.long).t()
    weight = torch.tensor([sym[i][j] for j, i in listed], dtype=torch.float64)
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.manual_seed(0)
    a = build_encoder("gcn", F_IN, F_OUT, num_layers=2, degree="source").double()
    b = build_encoder("gcn", F_IN, F_OUT, num_layers=2, degree="target").double()
    b.load_state_dict({k.replace("conv.", "", 1) if k.startswith("convs") else k: v
                       for k, v in a.state_dict().items()})
    assert torch.allclose(a(x, edge_index, weight), b(x, edge_index, weight), atol=1e-12)


def test_unknown_degree_is_refused():
    from gcnretrieval.errors import InvalidArgument
    with pytest.raises(InvalidArgument, match="degree"):
        build_encoder("gcn", F_IN, F_OUT, degree="both")


def reference_raw_layer(h, A, weight):
    """out_i = sum_j A_ij (h_j W^T): the given weights as they are, no bias."""
    W = weight.tolist()
    hw = [[sum(W[r][c] * row[c] for c in range(len(row))) for r in range(len(W))] for row in h]
    return [[sum(A[i][j] * hw[j][r] for j in range(len(A))) for r in range(len(W))] for i in range(len(A))]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("self_loops", [True, False])
def test_unnormalised_layers_use_the_weights_as_given(dtype, self_loops):
    A, edge_index, weight = dense_graph(self_loops)
    encoder = _check_two_layers_against(reference_raw_layer, A, edge_index, weight, dtype, normalize=False)
    assert not any(conv.add_self_loops for conv in encoder.convs)


def test_unnormalised_layers_add_their_bias():
    A, edge_index, weight = dense_graph(self_loops=False)
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    encoder = build_encoder("gcn", F_IN, F_OUT, num_layers=1, jk=None, normalize=False).double()
    with torch.no_grad():
        encoder.convs[0].bias.normal_()
    h = reference_raw_layer(x.tolist(), A, encoder.convs[0].lin.weight)
    expected = [[v + b for v, b in zip(row, encoder.convs[0].bias.tolist())] for row in h]
    assert (encoder(x, edge_index, weight) - torch.tensor(expected, dtype=torch.float64)).abs().max() < 1e-10


@pytest.mark.parametrize("options", [{"normalize": False}, {"degree": "source"}])
def test_a_fixed_graph_edited_in_place_is_read_again(options):
    """The dense matrix of a fixed graph is kept between calls, but not past an in-place edit."""
    A, edge_index, weight = dense_graph(self_loops=True)
    weight = weight.clone()
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    encoder = build_encoder("gcn", F_IN, F_OUT, num_layers=1, jk=None, bias=False, **options).double()
    layer = reference_raw_layer if "normalize" in options else reference_out_degree_layer
    for scale in (1.0, 1.0, 3.0):
        if scale != 1.0:
            weight[0] *= scale  # the first listed edge
            j, i = edge_index[:, 0].tolist()
            A[i][j] *= scale
        expected = layer(x.tolist(), A, encoder.convs[0].lin.weight)
        assert (encoder(x, edge_index, weight) - torch.tensor(expected, dtype=torch.float64)).abs().max() < 1e-10


@pytest.mark.parametrize("options", [{"normalize": False}, {"degree": "source"}])
def test_learned_edge_weights_get_their_gradient(options):
    A, edge_index, weight = dense_graph(self_loops=True)
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    encoder = build_encoder("gcn", F_IN, F_OUT, num_layers=2, **options).double()
    assert torch.autograd.gradcheck(lambda w: encoder(x, edge_index, w), (weight.clone().requires_grad_(),))


def test_improved_needs_normalisation():
    from gcnretrieval.errors import ConfigError

    with pytest.raises(ConfigError, match="improved"):
        build_encoder("gcn", F_IN, F_OUT, improved=True, normalize=False)
