"""The shipped real label graphs with a depth-5 L2-GCN at initialisation.

METHOD §3 warns that stacked layers with default ``nn.Linear`` init collapse all label
rows to one vector; the encoder's zero-bias Glorot init must keep them apart on the
real graphs, isolated labels included.
"""
from __future__ import annotations

import pytest
import torch

from gcnretrieval.encoders import build_encoder
from gcnretrieval.graphs import load_label_vocabulary


def mean_pairwise_cosine_loop(rows: torch.Tensor) -> float:
    rows = rows.double()
    total, count = 0.0, 0
    for i in range(rows.size(0)):
        for j in range(rows.size(0)):
            if i != j:
                total += float(torch.dot(rows[i], rows[j]) / (rows[i].norm() * rows[j].norm()))
                count += 1
    return total / count


@pytest.mark.parametrize("dataset, num_labels", [("mscoco", 80), ("mirflickr", 24)])
def test_depth5_l2gcn_rows_do_not_collapse_on_real_graphs(dataset, num_labels):
    graph = load_label_vocabulary(dataset).build_graph(kind="cooccurrence", threshold=0.4)
    torch.manual_seed(0)
    encoder = build_encoder("l2gcn", graph.x.size(1), 1024, num_layers=5).eval()
    with torch.no_grad():
        out = encoder(graph.x, graph.edge_index, graph.edge_weight)
    assert out.shape == (num_labels, 1024)
    assert torch.isfinite(out).all()
    assert mean_pairwise_cosine_loop(out) < 0.9
