"""GAT encoder: edge weights reach GATConv only as a 1-d edge feature."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GATConv

from gcnretrieval.encoders import GAT, build_encoder
from gcnretrieval.errors import ConfigError


def graph():
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 0, 1, 2, 3], [1, 0, 2, 0, 1, 0, 1, 2, 3]])
    weight = torch.tensor([0.5, 0.7, 0.2, 0.9, 0.4, 1.0, 1.0, 1.0, 1.0])
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    return x, edge_index, weight


def test_convs_are_gatconv_with_one_dimensional_edge_features():
    encoder = build_encoder("gat", 6, 8, num_layers=3)
    assert isinstance(encoder, GAT)
    assert isinstance(encoder.act, torch.nn.ELU)
    assert encoder.supports_edge_attr and not encoder.supports_edge_weight
    for conv in encoder.convs:
        assert isinstance(conv, GATConv)
        assert conv.edge_dim == 1 and conv.heads == 1 and conv.add_self_loops


def test_forward_passes_weights_as_edge_attr_only():
    encoder = build_encoder("gat", 6, 8, num_layers=2).eval()
    x, edge_index, weight = graph()
    seen = []
    hooks = [conv.register_forward_pre_hook(lambda m, args, kwargs: seen.append((args, kwargs)),
                                            with_kwargs=True) for conv in encoder.convs]
    encoder(x, edge_index, weight)
    for hook in hooks:
        hook.remove()
    assert len(seen) == 2
    for args, kwargs in seen:
        assert len(args) == 2 and set(kwargs) == {"edge_attr"}
        torch.testing.assert_close(kwargs["edge_attr"], weight.view(-1, 1))


def test_changing_edge_weights_changes_attention_and_output():
    encoder = build_encoder("gat", 6, 8, num_layers=2).eval()
    x, edge_index, weight = graph()
    other = weight.clone()
    other[:5] = torch.tensor([0.1, 0.9, 0.9, 0.1, 0.8])
    assert (encoder(x, edge_index, weight) - encoder(x, edge_index, other)).abs().max() > 1e-5


def test_heads_concat_and_mean():
    x, edge_index, weight = graph()
    concat = build_encoder("gat", 6, 8, num_layers=2, heads=4)
    assert all(c.heads == 4 and c.concat and c.out_channels == 2 for c in concat.convs)
    assert concat(x, edge_index, weight).shape == (5, 8)
    mean = build_encoder("gat", 6, 8, num_layers=2, heads=4, concat=False)
    assert all(c.out_channels == 8 and not c.concat for c in mean.convs)
    assert mean(x, edge_index, weight).shape == (5, 8)
    with pytest.raises(ConfigError, match="divisible by heads"):
        build_encoder("gat", 6, 8, heads=3)
    with pytest.raises(ConfigError, match="heads must be a positive integer"):
        build_encoder("gat", 6, 8, heads=0)


def test_given_self_loop_weights_are_replaced_by_one():
    encoder = build_encoder("gat", 6, 8, num_layers=2).eval()
    x, edge_index, weight = graph()
    other = weight.clone()
    other[edge_index[0] == edge_index[1]] = 3.0
    torch.testing.assert_close(encoder(x, edge_index, weight), encoder(x, edge_index, other))
