"""L2-GCN against plain-loop references written from the method's equations (§3)."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GraphConv

from gcnretrieval.encoders import L2GCN, L2GCNConv, build_encoder, mean_pairwise_cosine
from gcnretrieval.errors import ConfigError

C, F_IN, F_OUT = 6, 5, 4


def dense_graph():
    """A[i][j] = weight of the message j -> i (asymmetric), with self-loops on all but
    label 5; label 4 is isolated (self-loop only); label 5 is isolated without one; the
    listed edge 3 -> 2 has weight 0 (present in edge_index, not a neighbour)."""
    A = [[0.0] * C for _ in range(C)]
    for i in range(5):
        A[i][i] = 1.0
    A[0][1], A[1][0] = 0.5, 0.3
    A[0][2] = 0.8
    A[1][3] = 0.25
    A[2][0], A[2][1] = 0.6, 0.9
    A[3][0] = 0.4
    listed = [(j, i) for i in range(C) for j in range(C) if A[i][j] != 0] + [(3, 2)]
    edge_index = torch.tensor(listed, dtype=torch.long).t()
    weight = torch.tensor([A[i][j] for j, i in listed], dtype=torch.float64)
    return A, edge_index, weight


def randomise(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():  # non-zero biases too, so they are checked
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))


def matvec(W, b, v):
    return [sum(W[r][c] * v[c] for c in range(len(v))) + b[r] for r in range(len(W))]


def relu(v):
    return [max(0.0, a) for a in v]


def reference_layer(x, A, lin, lin_self, lin_neigh, act, count_self):
    """Plain loops over METHOD §3: h = Wx + b; F_neigh = (1/n_i) sum_{j != i} A_ij h_j."""
    tolist = lambda t: t.detach().tolist()  # noqa: E731
    W, b = tolist(lin.weight), tolist(lin.bias)
    Ws, bs = tolist(lin_self.weight), tolist(lin_self.bias)
    Wn, bn = tolist(lin_neigh.weight), tolist(lin_neigh.bias)
    h = [matvec(W, b, row) for row in x]
    out = []
    for i in range(len(x)):
        n = sum(1 for j in range(len(x)) if j != i and A[i][j] > 0)
        if count_self and A[i][i] > 0:
            n += 1
        neigh = [0.0] * len(h[i])
        for j in range(len(x)):
            if j != i:
                neigh = [acc + A[i][j] * hj for acc, hj in zip(neigh, h[j])]
        neigh = [v / n for v in neigh] if n > 0 else [0.0] * len(h[i])
        a = act(matvec(Ws, bs, h[i]))
        c = act(matvec(Wn, bn, neigh))
        out.append([p + q for p, q in zip(a, c)])
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("count_self", [False, True])
@pytest.mark.parametrize("branch_act", ["relu", "identity"])
def test_layer_matches_plain_loop_reference(count_self, branch_act):
    A, edge_index, weight = dense_graph()
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    conv = L2GCNConv(F_IN, F_OUT, branch_act=branch_act, count_self=count_self).double()
    randomise(conv)
    act = relu if branch_act == "relu" else (lambda v: v)
    expected = reference_layer(x.tolist(), A, conv.lin, conv.lin_self, conv.lin_neigh, act, count_self)
    out = conv(x, edge_index, weight)
    assert (out - expected).abs().max() < 1e-10
    # isolated labels (4 with a self-loop, 5 without) get F_neigh = 0, not NaN
    assert torch.isfinite(out).all()


def test_count_self_only_rescales_labels_with_neighbours_and_a_self_loop():
    A, edge_index, weight = dense_graph()
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    plain = L2GCNConv(F_IN, F_OUT, branch_act="identity").double()
    counted = L2GCNConv(F_IN, F_OUT, branch_act="identity", count_self=True).double()
    randomise(plain)
    counted.load_state_dict(plain.state_dict())
    diff = (plain(x, edge_index, weight) - counted(x, edge_index, weight)).abs().amax(dim=1)
    assert (diff[:4] > 1e-6).all()  # neighbours and a self-loop: divisor n_i + 1
    assert (diff[4:] < 1e-12).all()  # no neighbours: F_neigh = 0 either way


def test_without_edge_weight_all_listed_edges_weigh_one():
    A, edge_index, _ = dense_graph()
    keep = torch.ones(edge_index.size(1), dtype=torch.bool)
    keep[-1] = False  # drop the zero-weight edge
    edge_index = edge_index[:, keep]
    binary = [[1.0 if a != 0 else 0.0 for a in row] for row in A]
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    conv = L2GCNConv(F_IN, F_OUT).double()
    randomise(conv)
    expected = reference_layer(x.tolist(), binary, conv.lin, conv.lin_self, conv.lin_neigh, relu, False)
    assert (conv(x, edge_index) - expected).abs().max() < 1e-10


def test_identity_branches_equal_linear_then_graphconv_mean_on_a_without_diagonal():
    """h'_i = Θs h_i + b_s + Θn mean_j(Ã_ij h_j) + b_n is GraphConv(aggr="mean") on h
    with lin_root = Θs (GraphConv has no root bias) and lin_rel = Θn with bias b_s + b_n,
    on the graph without its self-loops (Ã), whose edges all have positive weight."""
    A, edge_index, weight = dense_graph()
    positive = weight > 0
    edge_index, weight = edge_index[:, positive], weight[positive]
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    conv = L2GCNConv(F_IN, F_OUT, branch_act="identity").double()
    randomise(conv)
    graph_conv = GraphConv(F_OUT, F_OUT, aggr="mean").double()
    with torch.no_grad():
        graph_conv.lin_root.weight.copy_(conv.lin_self.weight)
        graph_conv.lin_rel.weight.copy_(conv.lin_neigh.weight)
        graph_conv.lin_rel.bias.copy_(conv.lin_self.bias + conv.lin_neigh.bias)
    off = edge_index[0] != edge_index[1]
    expected = graph_conv(conv.lin(x), edge_index[:, off], weight[off])
    torch.testing.assert_close(conv(x, edge_index, weight), expected, rtol=0, atol=1e-10)
    # GraphConv on the graph *with* its self-loops is a different layer
    with_loops = graph_conv(conv.lin(x), edge_index, weight)
    assert (with_loops - expected).abs().max() > 1e-3


def test_encoder_stack_matches_reference_with_jk_head():
    A, edge_index, weight = dense_graph()
    x = torch.randn(C, F_IN, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    encoder = build_encoder("l2gcn", F_IN, F_OUT, num_layers=2, hidden_channels=3).double()
    randomise(encoder)
    h, outputs = x.tolist(), []
    for conv in encoder.convs:
        out = reference_layer(h, A, conv.lin, conv.lin_self, conv.lin_neigh, relu, False)
        out = out.clamp(min=0)  # ReLU between layers
        outputs.append(out)
        h = out.tolist()
    expected = torch.cat(outputs, dim=1) @ encoder.lin.weight.t() + encoder.lin.bias
    assert (encoder(x, edge_index, weight) - expected).abs().max() < 1e-10


def test_initialisation_zero_biases_and_glorot_weights():
    conv = L2GCNConv(300, 1024)
    for lin in (conv.lin, conv.lin_self, conv.lin_neigh):
        assert torch.count_nonzero(lin.bias) == 0
        bound = (6.0 / (lin.in_channels + lin.out_channels)) ** 0.5
        assert lin.weight.abs().max() <= bound
        assert lin.weight.abs().max() > 0.9 * bound


def _random_graph(num_nodes=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, 300, generator=gen)
    A = (torch.rand(num_nodes, num_nodes, generator=gen) < 0.25).float() * 0.5
    A.fill_diagonal_(1.0)
    target, source = A.nonzero().t()
    return x, torch.stack([source, target]), A[target, source]


def _layer_cosines(encoder, x, edge_index, weight):
    cosines = []
    hooks = [conv.register_forward_hook(lambda m, a, out: cosines.append(mean_pairwise_cosine(out)))
             for conv in encoder.convs]
    with torch.no_grad():
        final = encoder(x, edge_index, weight)
    for hook in hooks:
        hook.remove()
    return cosines, mean_pairwise_cosine(final)


def test_depth_five_does_not_collapse_rows_at_initialisation():
    x, edge_index, weight = _random_graph()
    torch.manual_seed(0)
    encoder = build_encoder("l2gcn", 300, 1024, num_layers=5).eval()
    layers, final = _layer_cosines(encoder, x, edge_index, weight)
    assert final < 0.9
    assert max(layers) < 0.97

    # Control: PyTorch's default nn.Linear initialisation collapses the stack.
    with torch.no_grad():
        for conv in encoder.convs:
            for lin in (conv.lin, conv.lin_self, conv.lin_neigh):
                default = torch.nn.Linear(lin.in_channels, lin.out_channels)
                lin.weight.copy_(default.weight)
                lin.bias.copy_(default.bias)
    collapsed, _ = _layer_cosines(encoder, x, edge_index, weight)
    assert collapsed[-1] > 0.99


def test_variant_and_branch_act_errors():
    with pytest.raises(ConfigError, match="variant 'code'.*not implemented"):
        build_encoder("l2gcn", 4, 4, variant="code")
    with pytest.raises(ConfigError, match="unknown l2gcn variant"):
        build_encoder("l2gcn", 4, 4, variant="papr")
    with pytest.raises(ConfigError, match="unknown activation"):
        build_encoder("l2gcn", 4, 4, branch_act="relux")
    assert isinstance(build_encoder("l2gcn", 4, 4, variant="paper"), L2GCN)
