r"""The GCN label encoder (Kipf & Welling), as used by ML-GCN and DAGNN."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv
from torch_geometric.utils import add_remaining_self_loops, scatter

from gcnretrieval.checks import check_choice
from gcnretrieval.encoders.base import LabelEncoder
from gcnretrieval.encoders.registry import register_encoder
from gcnretrieval.errors import ConfigError

Degree = Literal["target", "source"]


def out_degree_norm(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int,
                    fill_value: float = 1.0) -> tuple[Tensor, Tensor]:
    r"""Symmetric GCN normalisation by the weighted *out*-degree.

    .. math::
        \hat{A}_{ij} = \tilde{d}_i^{-1/2} A_{ij} \tilde{d}_j^{-1/2}, \qquad
        \tilde{d}_k = \textstyle\sum_i A_{ik}

    with :math:`A_{ij}` the weight of the message :math:`j \to i`: :math:`\tilde{d}_k` sums
    the weights of the messages *leaving* label :math:`k`. PyG's ``gcn_norm`` sums those
    arriving instead (:math:`d_i = \sum_j A_{ij}`); the two agree on symmetric graphs. Missing
    self-loops are added with weight ``fill_value``, as ``gcn_norm`` does.

    Returns:
        ``(edge_index, edge_weight)`` with the self-loops and the normalised weights.
    """
    edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, fill_value, num_nodes)
    source, target = edge_index
    degree = scatter(edge_weight, source, dim=0, dim_size=num_nodes, reduce="sum")
    inv_sqrt = degree.pow(-0.5).masked_fill(degree == 0, 0.0)
    return edge_index, inv_sqrt[source] * edge_weight * inv_sqrt[target]


def dense_adjacency(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int, *, dtype: torch.dtype,
                    degree: Degree | None = None, fill_value: float = 1.0) -> Tensor:
    r"""The :math:`C \times C` matrix a GCN layer propagates with, target rows: :math:`\mathbf{H}' =
    \hat{\mathbf{A}}\,\mathbf{H}\mathbf{\Theta}`.

    .. math::
        \hat{A}_{ij} = \textstyle\sum_{e:\,j \to i} w_e

    summed over the edges :math:`e` from :math:`j` to :math:`i` (weight 1 without ``edge_weight``): the
    given graph as it is, ``GCNConv(normalize=False)``'s propagation, for ``degree=None``; with
    ``degree="source"`` after :func:`out_degree_norm` (missing self-loops of weight ``fill_value`` added).
    Gradients reach ``edge_weight``.

    Args:
        degree (str, optional): :obj:`None` or ``"source"``. (default: :obj:`None`)
        fill_value (float, optional): weight of the added self-loops. (default: :obj:`1.0`)
    """
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
    edge_weight = edge_weight.to(dtype)
    if degree == "source":
        edge_index, edge_weight = out_degree_norm(edge_index, edge_weight, num_nodes, fill_value)
    source, target = edge_index
    return edge_weight.new_zeros(num_nodes, num_nodes).index_put((target, source), edge_weight, accumulate=True)


def dense_propagate(conv: nn.Module, x: Tensor, adjacency: Tensor) -> Tensor:
    r""":math:`\hat{\mathbf{A}}\,\mathbf{X}\mathbf{\Theta} + \mathbf{b}` with the linear map ``conv.lin`` and
    bias ``conv.bias`` of a ``GCNConv`` or :class:`OutDegreeGCNConv`, the graph given as a dense matrix."""
    out = adjacency @ conv.lin(x)
    return out if conv.bias is None else out + conv.bias


class OutDegreeGCNConv(nn.Module):
    r"""A GCN layer on the graph normalised by :func:`out_degree_norm`.

    .. math::
        \mathbf{H}' = \hat{\mathbf{A}} \mathbf{H} \mathbf{\Theta} + \mathbf{b}

    The parameters are those of a ``GCNConv`` (its initialisation included). The propagation is one
    dense :math:`C \times C` product: label graphs have tens of nodes, where it is cheaper on the CPU
    than PyG's scatter over the edges at a width of 1,024.

    Args:
        in_channels (int): input width.
        out_channels (int): output width.
        improved (bool, optional): added self-loops get weight 2. (default: :obj:`False`)
        bias (bool, optional): learn :math:`\mathbf{b}`. (default: :obj:`True`)
    """

    def __init__(self, in_channels: int, out_channels: int, improved: bool = False, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.fill_value = 2.0 if improved else 1.0
        self.conv = GCNConv(in_channels, out_channels, add_self_loops=False, normalize=False, bias=bias)

    @property
    def lin(self) -> nn.Module:
        """The layer's linear map :math:`\\mathbf{\\Theta}` (``GCNConv.lin``)."""
        return self.conv.lin

    @property
    def bias(self) -> Tensor | None:
        return self.conv.bias

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        adjacency = dense_adjacency(edge_index, edge_weight, x.size(0), dtype=x.dtype, degree="source",
                                    fill_value=self.fill_value)
        return dense_propagate(self, x, adjacency)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"


@register_encoder("gcn")
class GCN(LabelEncoder):
    r"""GCN label encoder: ``GCNConv`` layers on the symmetrically normalised graph,

    .. math::
        \mathbf{H}' = \hat{\mathbf{A}} \mathbf{H} \mathbf{\Theta} + \mathbf{b},
        \qquad \hat{\mathbf{A}} = \mathbf{D}^{-1/2} \mathbf{A} \mathbf{D}^{-1/2},
        \qquad D_{ii} = \textstyle\sum_j A_{ij},

    with LeakyReLU(0.2) between layers and the shared JK-concat head. :math:`A_{ij}`
    is the weight of the message :math:`j \to i`, so :math:`D_{ii}` is the weighted
    in-degree of label :math:`i` (``degree="target"``). ``degree="source"`` takes the weighted
    out-degree :math:`D_{ii} = \sum_j A_{ji}` instead (:func:`out_degree_norm`): the
    normalisation of the DAGNN / I-GNN reference code, whose ``gen_adj`` sums the rows of
    its source-row matrix. The two differ only on asymmetric graphs (the co-occurrence graph).

    PyG normalises (``normalize=True``, ``add_self_loops=True``): ``gcn_norm`` adds
    *remaining* self-loops, so the self-loops of the given graph are kept with their
    own weights (weight 1 in the default label graph, giving exactly
    :math:`\mathbf{A} = 0.5 \cdot \mathbb{1}[P \geq t] + \mathbf{I}`), and a label
    without a self-loop gets one of weight 1 (Kipf's renormalisation
    :math:`\mathbf{A} + \mathbf{I}` when the graph has none). An isolated label thus
    keeps its own feature instead of collapsing to the bias.

    With ``normalize=False`` the given edge weights are used as they are (no self-loops
    added, :math:`\mathbf{H}' = \mathbf{A} \mathbf{H} \mathbf{\Theta} + \mathbf{b}`): for a
    graph module that normalises its own adjacency, such as
    :class:`~gcnretrieval.models.AdaptiveCooccurrenceGraph`.

    With ``normalize=False`` or ``degree="source"`` the layers propagate with one dense
    :math:`C \times C` matrix (:func:`dense_adjacency`, the same sums as the layers' own message
    passing), built once per call for all layers, and kept between calls while a fixed graph's
    tensors come back unchanged: label graphs have tens of nodes, where a dense product is cheaper
    on the CPU than a scatter over the edges at a width of 1,024.

    Args:
        improved (bool, optional): added self-loops get weight 2 instead of 1
            (``GCNConv(improved=True)``). (default: :obj:`False`)
        normalize (bool, optional): normalise the graph and add the remaining
            self-loops. (default: :obj:`True`)
        bias (bool, optional): learn the bias :math:`\mathbf{b}`; the DAGNN / I-GNN code's
            layers have none. (default: :obj:`True`)
        degree (str, optional): ``"target"`` (PyG's ``gcn_norm``) or ``"source"``; with
            ``normalize = true`` only. (default: :obj:`"target"`)
        **kwargs: the shared options of :class:`~gcnretrieval.encoders.LabelEncoder`.
    """

    supports_edge_weight = True
    default_act = "leaky_relu"
    default_act_kwargs = {"negative_slope": 0.2}

    def init_conv(
        self, in_channels: int, out_channels: int, *, improved: bool = False, normalize: bool = True,
        bias: bool = True, degree: Degree = "target",
    ) -> nn.Module:
        if improved and not normalize:
            raise ConfigError("encoder option improved = true applies only with normalize = true (it "
                              "weighs the self-loops that normalisation adds); drop one of them")
        if check_choice("degree", degree, Degree) == "source":
            if not normalize:
                raise ConfigError("encoder option degree = \"source\" chooses the normalisation; it applies only "
                                  "with normalize = true; drop one of them")
            return OutDegreeGCNConv(in_channels, out_channels, improved=improved, bias=bias)
        return GCNConv(
            in_channels, out_channels, improved=improved, add_self_loops=normalize, normalize=normalize,
            bias=bias,
        )

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """Encode the label graph; with ``normalize = false`` or ``degree = "source"`` through one dense
        :math:`C \\times C` matrix (:func:`dense_adjacency`) built once for all layers."""
        first = self.convs[0]
        if isinstance(first, OutDegreeGCNConv):
            degree, fill_value = "source", first.fill_value
        elif not first.normalize:
            degree, fill_value = None, 1.0
        else:
            return super().forward(x, edge_index, edge_weight)
        self._check_edge_weight(edge_index, edge_weight)
        adjacency = self._adjacency(edge_index, edge_weight, x.size(0), x.dtype, degree, fill_value)
        return self._stack(x, lambda conv, h: dense_propagate(conv, h, adjacency))

    def _adjacency(self, edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int, dtype: torch.dtype,
                   degree: Degree | None, fill_value: float) -> Tensor:
        """:func:`dense_adjacency`, kept while the same graph tensors come back unchanged and carry no
        gradient (a fixed label graph); a learned graph's is rebuilt on every call."""
        learned = edge_weight is not None and edge_weight.requires_grad
        if learned or torch.is_inference_mode_enabled() or torch.compiler.is_compiling():
            return dense_adjacency(edge_index, edge_weight, num_nodes, dtype=dtype, degree=degree,
                                   fill_value=fill_value)
        key = (edge_index._version, None if edge_weight is None else edge_weight._version, num_nodes, dtype)
        cached = getattr(self, "_cached_adjacency", None)
        if cached is not None and cached[0] is edge_index and cached[1] is edge_weight and cached[2] == key:
            return cached[3]
        adjacency = dense_adjacency(edge_index, edge_weight, num_nodes, dtype=dtype, degree=degree,
                                    fill_value=fill_value)
        self._cached_adjacency = (edge_index, edge_weight, key, adjacency)
        return adjacency
