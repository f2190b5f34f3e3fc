"""The no-graph baseline encoder ``none`` (the encoder contract tests cover it too)."""
from __future__ import annotations

import warnings

import pytest
import torch

from gcnretrieval.encoders import NoGraph, build_encoder


def test_onehot_single_layer_is_a_free_label_matrix():
    encoder = build_encoder("none", 5, 3, num_layers=1, jk=None).double()
    assert isinstance(encoder, NoGraph)
    out = encoder(torch.eye(5, dtype=torch.float64), torch.empty(2, 0, dtype=torch.long))
    lin = encoder.convs[0].lin
    expected = torch.stack([lin.weight[:, j] + lin.bias for j in range(5)])  # row j = column j of W, plus b
    torch.testing.assert_close(out, expected)


def test_output_does_not_depend_on_the_graph():
    torch.manual_seed(0)
    encoder = build_encoder("none", 4, 6, num_layers=3).double().eval()
    x = torch.randn(5, 4, dtype=torch.float64)
    ring = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = encoder(x, ring, torch.rand(5, dtype=torch.float64))
    b = encoder(x, torch.empty(2, 0, dtype=torch.long))
    torch.testing.assert_close(a, b)
    for row in range(5):  # each row is the MLP of its own feature alone
        torch.testing.assert_close(encoder(x[row:row + 1], torch.empty(2, 0, dtype=torch.long)), b[row:row + 1])


def test_warns_once_that_it_ignores_the_graph():
    encoder = build_encoder("none", 4, 6, num_layers=2)
    x, edges, weight = torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]]), torch.rand(2)
    with pytest.warns(UserWarning, match="ignores edge weights and edges"):
        encoder(x, edges, weight)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder(x, edges, weight)
