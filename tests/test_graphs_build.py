"""Label-graph construction against plain-loop references written from METHOD §2."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gcnretrieval.graphs import build_label_graph, cooccurrence_counts


def edge_dict(data) -> dict[tuple[int, int], float]:
    """{(source, target): weight} of a built graph."""
    pairs = data.edge_index.t().tolist()
    weights = data.edge_weight.tolist()
    assert len(set(map(tuple, pairs))) == len(pairs), "duplicate edges"
    return {tuple(p): w for p, w in zip(pairs, weights)}


def reference_cooccurrence(y, t, edge_value=0.5, p=None, self_loops=True):
    """Loops over METHOD §2: N = YᵀY, P(i|j) = N_ij / N_jj, message j -> i kept when P(i|j) >= t."""
    n, c = len(y), len(y[0])
    counts = [[sum(y[s][i] * y[s][j] for s in range(n)) for j in range(c)] for i in range(c)]
    edges = {}
    for i in range(c):  # target
        sources = [j for j in range(c) if j != i and counts[i][j] / counts[j][j] >= t]
        for j in sources:
            edges[(j, i)] = edge_value if p is None else p / len(sources)
        if self_loops:
            edges[(i, i)] = 1.0 if (p is None or not sources) else 1.0 - p
    return edges


def reference_embedding(x, t, edge_value=0.5):
    c = len(x)
    edges = {}
    for i in range(c):
        for j in range(c):
            if i == j:
                edges[(i, i)] = 1.0
                continue
            dot = sum(a * b for a, b in zip(x[i], x[j]))
            cos = dot / math.sqrt(sum(a * a for a in x[i]) * sum(b * b for b in x[j]))
            if cos >= t:
                edges[(j, i)] = edge_value
    return edges


def assert_same_edges(data, expected):
    got = edge_dict(data)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6)


def random_labels(n=60, c=7, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < rng.uniform(0.1, 0.7, size=c)).astype(np.int64)
    y[np.arange(c), np.arange(c)] = 1  # every label occurs
    return y


def test_direction_convention_on_asymmetric_three_label_graph():
    # a, b, c. Every image with b also has a: P(a|b) = 1 >= 0.4.
    # Only one of three images with a has b: P(b|a) = 1/3 < 0.4. c never meets a or b.
    y = np.array([[1, 1, 0],
                  [1, 0, 0],
                  [1, 0, 0],
                  [0, 0, 1]])
    x = np.eye(3, 4, dtype=np.float32)
    data = build_label_graph(y, x, threshold=0.4, label_names=["a", "b", "c"])
    edges = edge_dict(data)
    off_diagonal = {k: v for k, v in edges.items() if k[0] != k[1]}
    # exactly one message: source b (index 1) -> target a (index 0), i.e. a borrows from b, which implies it
    assert off_diagonal == {(1, 0): 0.5}
    assert data.edge_index[0].tolist().count(1) == 2  # b: its self-loop and b -> a
    assert {k: v for k, v in edges.items() if k[0] == k[1]} == {(0, 0): 1.0, (1, 1): 1.0, (2, 2): 1.0}
    assert data.label_names == ["a", "b", "c"]


@pytest.mark.parametrize("t", [0.2, 0.4, 0.75, 1.0])
def test_cooccurrence_graph_matches_loop_reference(t):
    y = random_labels()
    x = np.random.default_rng(1).normal(size=(7, 5))
    assert_same_edges(build_label_graph(torch.as_tensor(y, dtype=torch.float32), x, threshold=t),
                      reference_cooccurrence(y.tolist(), t))


def test_cooccurrence_graph_options_match_loop_reference():
    y = random_labels(seed=3)
    x = np.random.default_rng(2).normal(size=(7, 5))
    assert_same_edges(build_label_graph(y, x, threshold=0.3, reweight=0.2),
                      reference_cooccurrence(y.tolist(), 0.3, p=0.2))
    assert_same_edges(build_label_graph(y, x, threshold=0.3, edge_value=1.0, self_loops=False),
                      reference_cooccurrence(y.tolist(), 0.3, edge_value=1.0, self_loops=False))


def test_reweighted_rows_sum_to_one():
    y = random_labels(seed=5)
    data = build_label_graph(y, np.ones((7, 3)), threshold=0.3, reweight=0.25)
    row_sums = torch.zeros(7).index_add_(0, data.edge_index[1], data.edge_weight)
    assert torch.allclose(row_sums, torch.ones(7))


def test_precomputed_counts_give_the_same_graph():
    y = random_labels(seed=7)
    x = np.random.default_rng(0).normal(size=(7, 4))
    from_labels = build_label_graph(y, x)
    from_counts = build_label_graph(None, x, cooccurrence=cooccurrence_counts(y))
    assert torch.equal(from_labels.edge_index, from_counts.edge_index)
    assert torch.equal(from_labels.edge_weight, from_counts.edge_weight)


def test_cooccurrence_counts_match_loops():
    y = random_labels(n=20, c=4, seed=9)
    expected = [[sum(int(y[s, i] * y[s, j]) for s in range(20)) for j in range(4)] for i in range(4)]
    counts = cooccurrence_counts(torch.as_tensor(y, dtype=torch.bool))
    assert counts.dtype == np.int64
    assert counts.tolist() == expected


@pytest.mark.parametrize("t", [0.1, 0.4, 0.9])
def test_embedding_graph_matches_loop_reference(t):
    x = np.random.default_rng(4).normal(size=(8, 6)) + 0.4
    data = build_label_graph(None, x, kind="embedding", threshold=t)
    assert_same_edges(data, reference_embedding(x.tolist(), t))


def test_data_types_and_validation():
    y = random_labels()
    x = torch.randn(7, 300, dtype=torch.float64)
    data = build_label_graph(y, x)
    data.validate(raise_on_error=True)
    assert data.x.dtype == torch.float32 and data.x.shape == (7, 300)
    assert data.edge_index.dtype == torch.long
    assert data.edge_weight.dtype == torch.float32
    assert data.num_nodes == 7
    assert data.label_names == [f"label_{j}" for j in range(7)]
    assert torch.allclose(data.x.double(), x, atol=1e-6)


def test_word_vector_source_matched_by_name():
    vectors = {"plant life": [1.0, 0.0], "tv": [0.0, 1.0], "dog": [1.0, 1.0]}
    data = build_label_graph(None, vectors, kind="embedding", label_names=["TV", "dog", "plant_life"])
    assert data.x.tolist() == [[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]


def test_reverse_keeps_the_message_from_the_implied_label():
    # the three-label graph above: P(a|b) = 1, P(b|a) = 1/3; reversed, a (0) -> b (1) is the one message
    y = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]])
    data = build_label_graph(y, np.eye(3, 4), threshold=0.4, reverse=True)
    off_diagonal = {k: v for k, v in edge_dict(data).items() if k[0] != k[1]}
    assert off_diagonal == {(0, 1): 0.5}


@pytest.mark.parametrize("p", [None, 0.2])
def test_reverse_matches_loop_reference(p):
    """Loops: message j -> i kept when P(j|i) = N_ij / N_ii >= t."""
    y = random_labels(seed=7).tolist()
    n, c, t = len(y), len(y[0]), 0.35
    counts = [[sum(y[s][i] * y[s][j] for s in range(n)) for j in range(c)] for i in range(c)]
    expected = {}
    for i in range(c):
        sources = [j for j in range(c) if j != i and counts[i][j] / counts[i][i] >= t]
        for j in sources:
            expected[(j, i)] = 0.5 if p is None else p / len(sources)
        expected[(i, i)] = 1.0 if (p is None or not sources) else 1.0 - p
    assert_same_edges(build_label_graph(y, np.ones((c, 3)), threshold=t, reweight=p, reverse=True), expected)


def test_reverse_is_refused_for_the_symmetric_embedding_graph():
    from gcnretrieval.errors import GraphError
    with pytest.raises(GraphError, match="reverse"):
        build_label_graph(None, np.eye(3, 4) + 0.1, kind="embedding", reverse=True)
