"""ALGCN's adaptive correlation matrix against plain loops."""
from __future__ import annotations

import math

import pytest
import torch

from gcnretrieval.encoders import build_encoder
from gcnretrieval.errors import ConfigError, GraphError
from gcnretrieval.graphs import build_label_graph
from gcnretrieval.models import AdaptiveCooccurrenceGraph

LABELS = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 1, 0]])


def prior_graph():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    return build_label_graph(LABELS, x, threshold=0.4)


def loop_prior(labels, t=0.4, self_loop=1.0):
    """A[i][j] = 0.5 * [P(i | j) >= t] for i != j, self_loop on the diagonal (message j -> i)."""
    y = labels.tolist()
    c = len(y[0])
    count = [[sum(row[i] * row[j] for row in y) for j in range(c)] for i in range(c)]
    return [[self_loop if i == j else 0.5 * float(count[i][j] / count[j][j] >= t) for j in range(c)]
            for i in range(c)]


def loop_normalized(prior, learned, gamma, degree):
    c = len(prior)
    m = [[max(0.0, prior[i][j] + gamma * learned[i][j]) for j in range(c)] for i in range(c)]
    if degree == "source":  # what label j sends: column sums
        deg = [sum(m[k][i] for k in range(c)) for i in range(c)]
    else:
        deg = [sum(m[i][k] for k in range(c)) for i in range(c)]
    inv = [1.0 / math.sqrt(d) if d > 0 else 0.0 for d in deg]
    return [[inv[i] * m[i][j] * inv[j] for j in range(c)] for i in range(c)]


@pytest.mark.parametrize("degree", ["source", "target"])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_normalized_adjacency_matches_loop(degree, gamma):
    torch.manual_seed(0)
    graph = AdaptiveCooccurrenceGraph(prior_graph(), gamma=gamma, degree=degree).double()
    with torch.no_grad():  # a learned matrix with negative entries, so the ReLU acts
        graph.residual.copy_(torch.randn(4, 4, dtype=torch.float64) / 100.0)
    learned = (100.0 * graph.residual).tolist()
    expected = loop_normalized(loop_prior(LABELS), learned, gamma, degree)
    torch.testing.assert_close(graph.normalized_adjacency(), torch.tensor(expected, dtype=torch.float64),
                               rtol=1e-12, atol=1e-14)


def test_prior_follows_the_message_direction_and_self_loop_weight():
    graph = AdaptiveCooccurrenceGraph(prior_graph(), self_loop_weight=1.5)
    expected = loop_prior(LABELS, self_loop=1.5)
    assert graph.prior_adjacency.tolist() == expected
    assert expected[2][1] == 0.5 and expected[1][2] == 0.0  # P(2 | 1) = 1/2, P(1 | 2) = 1/3


def test_learned_matrix_init_and_learning_rate_scale():
    torch.manual_seed(1)
    graph = AdaptiveCooccurrenceGraph(prior_graph(), init_scale=0.02, lr_scale=100.0)
    assert graph.residual.requires_grad and not graph.x.requires_grad
    assert 0.0 <= float(graph.learned.detach().min()) and float(graph.learned.detach().max()) <= 0.02
    assert float(graph.residual.detach().max()) <= 0.0002
    # every pair is an edge at the start (B > 0)
    _, edge_index, edge_weight = graph()
    assert edge_index.size(1) == 16 and bool((edge_weight > 0).all())


def test_adam_steps_on_the_stored_residual_scale_the_learned_matrix():
    """Adam's step is invariant to the gradient's scale: B moves lr_scale times faster."""
    torch.manual_seed(2)
    graph = AdaptiveCooccurrenceGraph(prior_graph(), lr_scale=100.0).double()
    before = graph.learned.detach().clone()
    opt = torch.optim.Adam([graph.residual], lr=1e-3, eps=1e-30)
    graph.normalized_adjacency().pow(2).sum().backward()
    opt.step()
    step = (graph.learned.detach() - before).abs()
    moved = step > 0
    torch.testing.assert_close(step[moved], torch.full_like(step[moved], 100.0 * 1e-3), rtol=1e-9, atol=0.0)


def test_edges_carry_the_normalized_weights_in_the_message_direction():
    torch.manual_seed(3)
    graph = AdaptiveCooccurrenceGraph(prior_graph()).double()
    a = graph.normalized_adjacency()
    x, edge_index, edge_weight = graph()
    assert x.shape == (4, 3)
    for (j, i), w in zip(edge_index.t().tolist(), edge_weight.tolist()):
        assert w == a[i, j].item()


def test_encoder_on_the_edges_equals_dense_propagation():
    torch.manual_seed(4)
    graph = AdaptiveCooccurrenceGraph(prior_graph()).double()
    encoder = build_encoder("gcn", 3, 5, num_layers=1, jk=None, normalize=False, bias=False).double()
    out = encoder(*graph())
    a = graph.normalized_adjacency()
    expected = a @ (graph.x @ encoder.convs[0].lin.weight.T)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-14)


def test_gradient_reaches_the_learned_matrix():
    graph = AdaptiveCooccurrenceGraph(prior_graph(), train_node_features=True)
    x, edge_index, edge_weight = graph()
    (edge_weight.sum() + x.sum()).backward()
    assert graph.residual.grad is not None and graph.residual.grad.abs().sum() > 0
    assert graph.x.grad is not None


def test_zero_degree_label_gives_finite_zero_rows():
    graph = AdaptiveCooccurrenceGraph(prior_graph(), self_loop_weight=0.0, gamma=0.0)
    a = graph.normalized_adjacency().detach()
    assert torch.isfinite(a).all()
    assert float(a[3].abs().sum()) == 0.0  # label 3 has no edge and no self-loop


def test_bad_options():
    with pytest.raises(ConfigError, match="degree"):
        AdaptiveCooccurrenceGraph(prior_graph(), degree="in")
    with pytest.raises(ConfigError, match="gamma"):
        AdaptiveCooccurrenceGraph(prior_graph(), gamma=-1.0)
    with pytest.raises(ConfigError, match="lr_scale"):
        AdaptiveCooccurrenceGraph(prior_graph(), lr_scale=0.0)
    with pytest.raises(GraphError):
        AdaptiveCooccurrenceGraph(object())


def test_checkpoints_hold_the_learned_tensors_not_the_prior():
    graph = AdaptiveCooccurrenceGraph(prior_graph())
    assert set(graph.state_dict()) == {"x", "residual"}
