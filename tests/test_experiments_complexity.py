"""FLOP counting: exact counts on a linear layer; the label encoder counted once per batch."""
from __future__ import annotations

import torch
from torch import nn

from gcnretrieval.models import count_flops, model_flops
from gcnretrieval.graphs import build_label_graph
from gcnretrieval.models import CrossModalModel


def test_linear_layer_counts_two_flops_per_multiply_add():
    layer = nn.Linear(7, 5)
    assert count_flops(layer, torch.randn(3, 7)) == 2 * 3 * 7 * 5


def test_per_sample_flops_amortise_the_label_encoder_over_the_batch():
    torch.manual_seed(0)
    labels = (torch.rand(40, 6) < 0.4).float()
    graph = build_label_graph(labels, torch.randn(6, 10).numpy())
    model = CrossModalModel(12, 9, graph, encoder="l2gcn", encoder_options={"num_layers": 2}, common_dim=8)
    x, edge_index, edge_weight = model.label_graph()
    encoder = count_flops(model.label_encoder, x, edge_index, edge_weight)
    assert encoder > 0
    counts = {b: model_flops(model, torch.randn(b, 12), torch.randn(b, 9)) for b in (4, 10)}
    per_pair = (counts[10]["flops_batch"] - counts[4]["flops_batch"]) / 6  # FLOPs that grow with the batch
    for b, count in counts.items():
        assert count["flops_batch"] == b * per_pair + encoder  # the encoder runs once per batch
        assert count["flops_per_sample"] == count["flops_batch"] / b
        assert count["flops_batch_of_one"] == per_pair + encoder
