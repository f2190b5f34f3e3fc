"""The learned label graph (METHOD §2, adaptive) against a plain-loop reference."""
from __future__ import annotations

import math

import torch

from gcnretrieval.graphs import AdaptiveLabelGraph, build_label_graph


def cos(a, b):
    return sum(p * q for p, q in zip(a, b)) / math.sqrt(sum(p * p for p in a) * sum(q * q for q in b))


def reference_adjacency(x, w, x0, t):
    """A[i][j] = 0.5·1[cos(x0_i, x0_j) >= t] (diagonal 1) + 0.5·S_ij·1[S_ij >= t], S = mean_k cos(x⊙w_k)."""
    c = len(x)
    a = [[0.0] * c for _ in range(c)]
    for i in range(c):
        for j in range(c):
            s = sum(cos([p * q for p, q in zip(x[i], wk)], [p * q for p, q in zip(x[j], wk)]) for wk in w) / len(w)
            prior = 1.0 if (i == j or cos(x0[i], x0[j]) >= t) else 0.0
            a[i][j] = 0.5 * prior + 0.5 * (s if s >= t else 0.0)
    return a


def make_graph(seed=0, c=6, f=10, t=0.3):
    torch.manual_seed(seed)
    x0 = torch.randn(c, f, dtype=torch.float64) + 0.3
    return AdaptiveLabelGraph(x0, threshold=t, num_weights=8), x0


def dense_from(edge_index, edge_weight, c):
    a = torch.zeros(c, c, dtype=torch.float64)
    a[edge_index[1], edge_index[0]] = edge_weight.detach().double()
    return a


def test_matches_loop_reference_and_keeps_self_loops():
    graph, x0 = make_graph()
    x, edge_index, edge_weight = graph()
    x0 = x0.float().double().tolist()  # the module stores float32 word vectors
    expected = torch.tensor(reference_adjacency(x0, graph.weight.double().tolist(), x0, 0.3), dtype=torch.float64)
    assert torch.allclose(dense_from(edge_index, edge_weight, 6), expected, atol=1e-5)
    assert torch.allclose(torch.diagonal(expected), torch.ones(6, dtype=torch.float64))
    assert x is graph.x and isinstance(x, torch.nn.Parameter)


def test_weight_initialisation_range():
    graph, _ = make_graph()
    assert graph.weight.shape == (8, 10)
    assert graph.weight.min() >= 0.3 and graph.weight.max() <= 0.6


def test_recomputed_on_every_forward():
    graph, _ = make_graph(t=0.2)
    _, index1, weight1 = graph()
    with torch.no_grad():
        graph.weight[0].uniform_(-1.0, 1.0)
        graph.x[0].mul_(-1.0)
    _, index2, weight2 = graph()
    assert not (torch.equal(index1, index2) and torch.allclose(weight1, weight2))


def test_gradients_reach_weights_and_word_vectors():
    graph, _ = make_graph(t=0.2)
    optimizer = torch.optim.SGD(graph.parameters(), lr=0.5)
    x, edge_index, edge_weight = graph()
    loss = edge_weight.sum()
    loss.backward()
    assert graph.weight.grad is not None and graph.weight.grad.abs().sum() > 0
    assert graph.x.grad is not None and graph.x.grad.abs().sum() > 0
    before = edge_weight.detach().clone()
    optimizer.step()
    _, edge_index_after, edge_weight_after = graph()
    assert not (torch.equal(edge_index, edge_index_after) and torch.allclose(before, edge_weight_after))


def test_prior_graph_and_fixed_word_vectors():
    y = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]])
    x0 = torch.randn(3, 5)
    prior = build_label_graph(y, x0)
    graph = AdaptiveLabelGraph(x0, threshold=1.0, prior=prior, train_features=False, label_names=["a", "b", "c"])
    _, edge_index, edge_weight = graph()
    # with t = 1 only identical directions survive in S: the graph is the prior's structure at weight 0.5
    off = {tuple(e): w for e, w in zip(edge_index.t().tolist(), edge_weight.tolist()) if e[0] != e[1]}
    assert off == {(1, 0): 0.5}
    assert not graph.x.requires_grad
    data = graph.to_data()
    data.validate(raise_on_error=True)
    assert data.label_names == ["a", "b", "c"]


def test_cosine_prior_keeps_the_thresholded_similarities():
    torch.manual_seed(4)
    c, t = 6, 0.3
    x0 = torch.randn(c, 10, dtype=torch.float64) + 0.3
    graph = AdaptiveLabelGraph(x0, threshold=t, num_weights=8, prior_weights="cosine")
    _, edge_index, edge_weight = graph()
    x = x0.float().double().tolist()
    w = graph.weight.double().tolist()
    expected = [[0.0] * c for _ in range(c)]
    for i in range(c):
        for j in range(c):
            s = sum(cos([p * q for p, q in zip(x[i], wk)], [p * q for p, q in zip(x[j], wk)]) for wk in w) / len(w)
            prior = 1.0 if i == j else (cos(x[i], x[j]) if cos(x[i], x[j]) >= t else 0.0)
            expected[i][j] = 0.5 * prior + 0.5 * (s if s >= t else 0.0)
    expected = torch.tensor(expected, dtype=torch.float64)
    assert torch.allclose(dense_from(edge_index, edge_weight, c), expected, atol=1e-5)
    binary = AdaptiveLabelGraph(x0, threshold=t, num_weights=8)
    off_diagonal = ~torch.eye(c, dtype=torch.bool)
    kept = binary.prior_adjacency.bool() & off_diagonal
    assert kept.any() and not torch.allclose(graph.prior_adjacency[kept], binary.prior_adjacency[kept])


def test_cosine_prior_refuses_a_given_prior_graph():
    import pytest
    from gcnretrieval.errors import GraphError
    torch.manual_seed(0)
    x0 = torch.randn(4, 5)
    prior = build_label_graph(None, x0, kind="embedding", threshold=0.1)
    with pytest.raises(GraphError, match="prior_weights"):
        AdaptiveLabelGraph(x0, prior=prior, prior_weights="cosine")
