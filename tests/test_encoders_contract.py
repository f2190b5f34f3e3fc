"""Contract every registered label encoder must meet (new encoders are picked up
automatically through ``available_encoders()``)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch_geometric.nn import SAGEConv

from gcnretrieval.encoders import ENCODERS, LabelEncoder, available_encoders, build_encoder
from gcnretrieval.graphs import build_label_graph, load_label_vocabulary

IN, OUT, LAYERS = 12, 16, 2
NAMES = available_encoders()

# Real-size label graphs: 24 labels from 2,000 random multi-label training rows, and the
# shipped vocabularies (GloVe vectors, real co-occurrence counts).
REAL_IN, REAL_OUT = 300, 64
RANDOM_SEEDS = range(5)
VOCABULARIES = ("mirflickr", "nuswide", "voc", "mscoco")
REAL_GRAPHS = [f"random-{seed}" for seed in RANDOM_SEEDS] + list(VOCABULARIES)


def graph(self_loops: bool = True, seed: int = 0):
    """7 labels; label 5 is isolated with a self-loop, label 6 isolated without one.

    Edges j -> i are listed as (source j, target i); weights are positive and asymmetric.
    """
    pairs = [(0, 1), (1, 0), (1, 2), (2, 0), (3, 4), (4, 3), (0, 3), (2, 4)]
    if self_loops:
        pairs += [(i, i) for i in range(6)]
    edge_index = torch.tensor(pairs, dtype=torch.long).t()
    gen = torch.Generator().manual_seed(seed)
    weight = 0.2 + torch.rand(edge_index.size(1), generator=gen, dtype=torch.float64)
    weight[edge_index[0] == edge_index[1]] = 1.0
    x = torch.randn(7, IN, generator=gen, dtype=torch.float64)
    return x, edge_index, weight


def random_label_graph(seed: int, rows: int = 2000, labels: int = 24):
    """Co-occurrence graph of ``rows`` random multi-hot rows: label frequencies drawn in
    [0.05, 0.6], the last label rare (3 rows), every label present; unit-scale features."""
    rng = np.random.default_rng(seed)
    frequency = rng.uniform(0.05, 0.6, size=labels)
    y = (rng.random((rows, labels)) < frequency).astype(np.int64)
    y[:, -1] = 0
    y[rng.choice(rows, size=3, replace=False), -1] = 1
    y[np.arange(labels), np.arange(labels)] = 1
    features = rng.standard_normal((labels, REAL_IN)).astype(np.float32)
    return build_label_graph(y, features)


def real_graph(key: str):
    if key.startswith("random-"):
        return random_label_graph(int(key.split("-")[1]))
    return load_label_vocabulary(key).build_graph(kind="cooccurrence", threshold=0.4)


def make(name: str) -> LabelEncoder:
    torch.manual_seed(0)
    return build_encoder(name, IN, OUT, num_layers=LAYERS).double()


def test_builtin_encoders_are_registered():
    assert {"l2gcn", "gcn", "gat", "bagfn"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_repr(name):
    encoder = make(name).eval()
    x, edge_index, weight = graph()
    out = encoder(x, edge_index, weight)
    assert out.shape == (7, OUT)
    assert isinstance(encoder, LabelEncoder)
    assert (encoder.in_channels, encoder.out_channels) == (IN, OUT)
    assert repr(encoder) == f"{type(encoder).__name__}({IN}, {OUT}, num_layers={LAYERS})"


@pytest.mark.parametrize("name", NAMES)
def test_reset_parameters_redraws_every_weight_matrix(name):
    encoder = make(name)
    before = {k: v.detach().clone() for k, v in encoder.named_parameters()}
    encoder.reset_parameters()
    matrices = [k for k, v in before.items() if v.dim() >= 2]
    assert matrices
    for key in matrices:
        assert not torch.equal(before[key], dict(encoder.named_parameters())[key]), key


@pytest.mark.parametrize("name", NAMES)
def test_permuting_labels_permutes_output(name):
    encoder = make(name).eval()
    x, edge_index, weight = graph()
    perm = torch.tensor([3, 6, 0, 5, 2, 1, 4])  # new node k is old node perm[k]
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    out = encoder(x, edge_index, weight)
    out_perm = encoder(x[perm], inverse[edge_index], weight)
    torch.testing.assert_close(out_perm, out[perm], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("key", REAL_GRAPHS)
@pytest.mark.parametrize("name", NAMES)
def test_permuting_labels_permutes_output_in_float32_on_real_size_graphs(name, key):
    """Default depth, 300-d features; equal to 1e-4 of the output's largest magnitude."""
    graph = real_graph(key)
    num_labels = graph.num_nodes
    assert (graph.edge_index[0] != graph.edge_index[1]).any()  # edges between labels
    torch.manual_seed(0)
    encoder = build_encoder(name, REAL_IN, REAL_OUT).eval()
    perm = torch.randperm(num_labels, generator=torch.Generator().manual_seed(num_labels))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(num_labels)
    x, edge_index, weight = graph.x, graph.edge_index, graph.edge_weight
    assert x.dtype == weight.dtype == torch.float32
    with torch.no_grad():
        out = encoder(x, edge_index, weight)
        out_perm = encoder(x[perm], inverse[edge_index], weight)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    error = (out_perm - out[perm]).abs().max().item()
    assert error <= 1e-4 * out.abs().max().item(), (error, out.abs().max().item())


@pytest.mark.parametrize("self_loops", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_isolated_labels_give_finite_output(name, self_loops):
    encoder = make(name).eval()
    x, edge_index, weight = graph(self_loops=self_loops)
    for w in (weight, None):
        out = encoder(x, edge_index, w)
        assert torch.isfinite(out).all()
        assert out[5].abs().sum() > 0 and out[6].abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_edge_weights_change_output_or_warn(name):
    encoder = make(name).eval()
    x, edge_index, weight = graph()
    other = weight.clone()
    off = edge_index[0] != edge_index[1]
    other[off] = weight[off].flip(0) * 1.7
    if encoder.supports_edge_weight or encoder.supports_edge_attr:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # using the weights must not warn
            a = encoder(x, edge_index, weight)
            b = encoder(x, edge_index, other)
        assert (a - b).abs().max() > 1e-6
    else:
        with pytest.warns(UserWarning, match="ignores edge weights"):
            encoder(x, edge_index, weight)


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_gradient(name):
    encoder = make(name).train()
    x, edge_index, weight = graph()
    out = encoder(x, edge_index, weight)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (out * probe).sum().backward()
    for key, param in encoder.named_parameters():
        assert param.grad is not None, key
        assert param.grad.abs().sum() > 0, key


@pytest.mark.parametrize("name", NAMES)
def test_shared_options(name):
    x, edge_index, weight = graph()
    torch.manual_seed(0)
    plain = build_encoder(name, IN, OUT, num_layers=3, jk=None, hidden_channels=8).double()
    assert plain.lin is None and len(plain.convs) == 3
    assert plain(x, edge_index, weight).shape == (7, OUT)
    torch.manual_seed(0)
    dropped = build_encoder(name, IN, OUT, num_layers=2, dropout=0.5).double()
    dropped.train()
    assert not torch.equal(dropped(x, edge_index, weight), dropped(x, edge_index, weight))
    dropped.eval()
    torch.testing.assert_close(dropped(x, edge_index, weight), dropped(x, edge_index, weight))


@pytest.mark.parametrize("name", NAMES)
def test_options_listing_names_shared_options(name):
    options = ENCODERS.get(name).options()
    assert {"num_layers", "hidden_channels", "act", "dropout", "jk"} <= set(options)


class _NoWeights(LabelEncoder):
    """SAGEConv takes neither edge_weight nor edge_attr."""

    def init_conv(self, in_channels, out_channels):
        return SAGEConv(in_channels, out_channels)


def test_encoder_without_weight_support_warns_once():
    encoder = _NoWeights(IN, OUT, num_layers=2).double()
    x, edge_index, weight = graph()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder(x, edge_index, weight)
        encoder(x, edge_index, weight)
        encoder(x, edge_index)
    messages = [str(w.message) for w in caught if "ignores edge weights" in str(w.message)]
    assert len(messages) == 1
    assert "_NoWeights" in messages[0]


def test_jk_cat_head_concatenates_activated_layer_outputs():
    encoder = _NoWeights(IN, OUT, num_layers=3, hidden_channels=5, act="tanh").double().eval()
    x, edge_index, _ = graph()
    h, outputs = x, []
    for conv in encoder.convs:
        h = torch.tanh(conv(h, edge_index))
        outputs.append(h)
    cat = torch.cat(outputs, dim=-1)
    expected = cat @ encoder.lin.weight.t() + encoder.lin.bias
    torch.testing.assert_close(encoder(x, edge_index), expected)
    assert encoder.lin.weight.shape == (OUT, 3 * 5)
    assert torch.count_nonzero(_NoWeights(IN, OUT).lin.bias) == 0


def test_jk_none_leaves_last_layer_unactivated():
    encoder = _NoWeights(IN, OUT, num_layers=2, jk="none", act="relu").double().eval()
    x, edge_index, _ = graph()
    expected = encoder.convs[1](torch.relu(encoder.convs[0](x, edge_index)), edge_index)
    torch.testing.assert_close(encoder(x, edge_index), expected)
    assert (expected < 0).any()  # so a final ReLU would have been visible
