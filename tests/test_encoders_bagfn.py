"""BaGFN block against a plain-loop reference of the equations in its docstring."""
from __future__ import annotations

import math

import pytest
import numpy as np
import torch

from gcnretrieval.encoders import BaGFN, BaGFNBlock, build_encoder
from gcnretrieval.encoders.bagfn import broad_gate
from gcnretrieval.errors import ConfigError

C, F_IN, D, R, B = 5, 4, 3, 2, 2


def dense_graph():
    """A[i][j] = weight of j -> i; label 3 isolated with a self-loop, 4 without one."""
    A = [[0.0] * C for _ in range(C)]
    for i in range(4):
        A[i][i] = 1.0
    A[0][1], A[1][0], A[1][2], A[2][0], A[2][1] = 0.5, 0.7, 0.2, 0.9, 0.4
    listed = [(j, i) for i in range(C) for j in range(C) if A[i][j] != 0]
    edge_index = torch.tensor(listed, dtype=torch.long).t()
    weight = torch.tensor([A[i][j] for j, i in listed], dtype=torch.float64)
    return A, edge_index, weight


def lin(module, v):
    W = module.weight.tolist()
    b = module.bias.tolist() if module.bias is not None else [0.0] * len(W)
    return [sum(W[r][c] * v[c] for c in range(len(v))) + b[r] for r in range(len(W))]


def sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


def softmax_rows(scores):
    """scores[i] = {j: logit}; returns {j: weight} per row (empty rows stay empty)."""
    rows = []
    for row in scores:
        if not row:
            rows.append({})
            continue
        top = max(row.values())
        exp = {j: math.exp(v - top) for j, v in row.items()}
        total = sum(exp.values())
        rows.append({j: v / total for j, v in exp.items()})
    return rows


def propagate(alpha, h):
    return [[sum(alpha[i][j] * h[j][k] for j in alpha[i]) for k in range(len(h[0]))]
            for i in range(len(h))]


def gru(cell, m, s):
    Wi, Wh = cell.weight_ih.tolist(), cell.weight_hh.tolist()
    bi, bh = cell.bias_ih.tolist(), cell.bias_hh.tolist()
    d = len(s)

    def gate(block, k, inp, hid):
        r = block * d + k
        gi = sum(Wi[r][c] * inp[c] for c in range(len(inp))) + bi[r]
        gh = sum(Wh[r][c] * hid[c] for c in range(d)) + bh[r]
        return gi, gh

    out = []
    for k in range(d):
        r = sigmoid(sum(gate(0, k, m, s)))
        z = sigmoid(sum(gate(1, k, m, s)))
        gi, gh = gate(2, k, m, s)
        n = math.tanh(gi + r * gh)
        out.append((1 - z) * n + z * s[k])
    return out


def reference_block(block, x, A, complete):
    n = len(x)
    raw = [lin(block.embed, row) for row in x]
    norms = [math.sqrt(sum(row[c] ** 2 for row in raw)) for c in range(len(raw[0]))]
    e = [[v / max(norm, 1e-12) for v, norm in zip(row, norms)] for row in raw]  # each channel across the labels
    q = [lin(block.query, row) for row in e]
    k = [lin(block.key, row) for row in e]

    def weight(i, j):
        if complete:
            return 1.0
        if i == j:
            return A[i][i] if A[i][i] > 0 else 1.0
        return A[i][j]

    def score(i, j):
        return sum(a * b for a, b in zip(q[i], k[j])) / math.sqrt(R) + math.log(weight(i, j))

    neigh = [[j for j in range(n) if j != i and (complete or A[i][j] > 0)] for i in range(n)]
    alpha = softmax_rows([{j: score(i, j) for j in neigh[i]} for i in range(n)])
    alpha_plus = softmax_rows([{j: score(i, j) for j in neigh[i] + [i]} for i in range(n)])

    s = e
    for _ in range(block.hops):
        u = [lin(block.lin_in, row) for row in s]
        au = propagate(alpha, u)
        psi1 = [[a * b for a, b in zip(ra, ru)] for ra, ru in zip(au, u)]
        apu = propagate(alpha_plus, u)
        psi2 = propagate(alpha_plus, [[a * b for a, b in zip(ra, ru)] for ra, ru in zip(apu, u)])
        m = [lin(block.lin_fuse, [a * b for a, b in zip(p1, p2)] + [a + b for a, b in zip(p1, p2)])
             for p1, p2 in zip(psi1, psi2)]
        s = [[a + b for a, b in zip(gru(block.gru, m[i], s[i]), e[i])] for i in range(n)]

    mapping = [lin(block.broad_map, row) for row in s]
    nodes = torch.tensor([mp + [math.tanh(v) for v in lin(block.broad_enhance, mp)] for mp in mapping],
                         dtype=torch.float64)
    ridge = math.log1p(math.exp(block.raw_ridge.item()))
    inverse = torch.linalg.inv(nodes.t() @ nodes + ridge * torch.eye(nodes.size(1), dtype=torch.float64))
    P = (nodes @ inverse).tolist()
    gates = [sigmoid(sum(row) / len(row)) for row in P]
    return torch.tensor([[g * v for v in row] for g, row in zip(gates, s)], dtype=torch.float64)


def reference_gate_logits(nodes, ridge):
    """(1/2b) sum_k P_ik with P = B (B^T B + lambda I)^-1, the inverse taken literally (float64)."""
    B = nodes.double()
    inverse = torch.linalg.inv(B.t() @ B + ridge * torch.eye(B.size(1), dtype=torch.float64)).tolist()
    rows = B.tolist()
    width = len(inverse)
    return torch.tensor([sum(sum(row[m] * inverse[m][k] for m in range(width)) for k in range(width)) / width
                         for row in rows], dtype=torch.float64)


def broad_nodes(num_labels, seed, broad=32, scale=10.0):
    """Mapping nodes with singular values up to about 10 (sqrt(C) + sqrt(b)) and their tanh
    enhancement, as a block's gate sees them on unit-scale inputs."""
    gen = torch.Generator().manual_seed(seed)
    mapping = scale * torch.randn(num_labels, broad, generator=gen, dtype=torch.float64)
    weight = torch.randn(broad, broad, generator=gen, dtype=torch.float64) / math.sqrt(broad)
    return torch.cat([mapping, torch.tanh(mapping @ weight)], dim=-1)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("num_labels", [24, 80])  # fewer and more labels than 2b = 64
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gate_matches_the_literal_pseudo_inverse(num_labels, seed, dtype):
    """B^T B + lambda I has condition number ~1e5 here. In float32 the gate must be the
    float64 value rounded once (so neither the label order nor the CPU can change it)."""
    nodes = broad_nodes(num_labels, seed).to(dtype)
    expected = torch.tensor([sigmoid(v) for v in reference_gate_logits(nodes, 0.1).tolist()],
                            dtype=torch.float64)
    gate = broad_gate(nodes, torch.tensor(0.1, dtype=dtype))
    assert gate.dtype == dtype and gate.shape == (num_labels,)
    if dtype == torch.float64:
        assert (gate - expected).abs().max() < 1e-12
    else:
        assert torch.equal(gate, expected.to(dtype))


def randomised_block(adjacency):
    torch.manual_seed(0)
    block = BaGFNBlock(F_IN, D, hops=2, adjacency=adjacency, score_channels=R, broad_channels=B).double()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(0.5 * torch.randn_like(p))
    return block


@pytest.mark.parametrize("adjacency", ["masked", "complete"])
def test_block_matches_plain_loop_reference(adjacency):
    A, edge_index, weight = dense_graph()
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    block = randomised_block(adjacency)
    expected = reference_block(block, x.tolist(), A, complete=adjacency == "complete")
    out = block(x, edge_index, weight)
    assert (out - expected).abs().max() < 1e-10


def test_ridge_is_positive_learnable_and_starts_at_one_tenth():
    block = BaGFNBlock(F_IN, D)
    assert block.ridge.item() == pytest.approx(0.1)
    A, edge_index, weight = dense_graph()
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(2))
    block(x, edge_index, weight.float()).pow(2).sum().backward()
    assert block.raw_ridge.grad is not None and block.raw_ridge.grad != 0
    with torch.no_grad():
        block.raw_ridge.fill_(-30.0)
    assert block.ridge.item() > 0


def test_complete_adjacency_ignores_the_graph_and_warns_about_weights():
    _, edge_index, weight = dense_graph()
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    encoder = build_encoder("bagfn", F_IN, 8, num_layers=2, adjacency="complete").eval()
    assert not encoder.supports_edge_weight
    with pytest.warns(UserWarning, match="ignores edge weights"):
        out = encoder(x, edge_index, weight.float())
    empty = torch.empty(2, 0, dtype=torch.long)
    torch.testing.assert_close(encoder(x, empty), out)


def test_depth_maps_to_blocks_and_defaults():
    encoder = build_encoder("bagfn", F_IN, 8, num_layers=2)
    assert isinstance(encoder, BaGFN)
    assert len(encoder.convs) == 2 and all(isinstance(c, BaGFNBlock) for c in encoder.convs)
    assert encoder.convs[0].hops == 3 and encoder.convs[0].adjacency == "masked"
    assert isinstance(encoder.act, torch.nn.Identity)
    with pytest.raises(ConfigError, match="unknown bagfn adjacency 'full'"):
        build_encoder("bagfn", F_IN, 8, adjacency="full")
    with pytest.raises(ConfigError, match="hops must be a positive integer"):
        build_encoder("bagfn", F_IN, 8, hops=0)


@pytest.mark.parametrize("seed", range(3))
def test_float32_forward_agrees_with_float64_on_unit_scale_features(seed):
    """The encoder is well conditioned: float32 rounding stays at float32 size in the output (without the
    normalised embedding, the degree-4 fusion products amplified it to differences of up to 3 on outputs ~20)."""
    from gcnretrieval.encoders import build_encoder
    from gcnretrieval.graphs import build_label_graph

    rng = np.random.default_rng(seed)
    labels = (rng.random((2000, 24)) < rng.uniform(0.05, 0.6, 24)).astype(np.float32)
    labels[:, -1] = 0
    labels[:3, -1] = 1  # a rare label
    graph = build_label_graph(labels, rng.standard_normal((24, 300)).astype(np.float32))
    torch.manual_seed(seed)
    encoder = build_encoder("bagfn", 300, 64)
    with torch.no_grad():
        single = encoder(graph.x, graph.edge_index, graph.edge_weight)
        double = encoder.double()(graph.x.double(), graph.edge_index, graph.edge_weight.double())
    assert (single.double() - double).abs().max() < 1e-4 * double.abs().max()
