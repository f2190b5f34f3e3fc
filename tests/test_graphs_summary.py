"""Graph summaries and drawings."""
from __future__ import annotations

import torch
from torch_geometric.data import Data

from gcnretrieval.graphs import plot_label_graph, summarize_label_graph


def small_graph() -> Data:
    # 0 -> 1, 1 -> 0, 2 -> 1, self-loops everywhere; 3 has only its self-loop
    edges = [(0, 0), (1, 1), (2, 2), (3, 3), (0, 1), (1, 0), (2, 1)]
    edge_index = torch.tensor(edges).t()
    return Data(x=torch.randn(4, 3), edge_index=edge_index, edge_weight=torch.ones(len(edges)), num_nodes=4,
                label_names=["a", "b", "c", "d"])


def test_summary_counts():
    summary = summarize_label_graph(small_graph())
    assert summary.num_nodes == 4
    assert summary.num_edges == 3
    assert summary.num_undirected_pairs == 2
    assert summary.num_self_loops == 4
    assert summary.in_degree == [1, 2, 0, 0]
    assert summary.out_degree == [1, 1, 1, 0]
    assert summary.isolated == ["d"]
    assert summary.without_messages == ["c", "d"]
    text = summary.format()
    assert "edges: 3 directed" in text and "isolated labels: 1 (d)" in text
    assert "labels receiving no message (in-degree 0): 2" in text


def test_plot_writes_a_png(tmp_path):
    path = plot_label_graph(small_graph(), tmp_path / "sub" / "graph.png", title="tiny")
    assert path == tmp_path / "sub" / "graph.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["graph.png"]  # no temporary left behind
