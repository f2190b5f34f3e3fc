r"""The L2-GCN label encoder: a self branch and a neighbour-mean branch, summed."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.utils import scatter

from gcnretrieval.encoders.base import LabelEncoder, resolve_activation
from gcnretrieval.encoders.registry import register_encoder
from gcnretrieval.errors import ConfigError


class L2GCNConv(MessagePassing):
    r"""One L2-GCN layer (paper form).

    With one shared affine map :math:`\mathbf{h}_i = \mathbf{W}\mathbf{x}_i + \mathbf{b}`,
    :math:`\tilde{\mathbf{A}}` the adjacency with its diagonal zeroed and
    :math:`n_i = |\{j \neq i : A_{ij} > 0\}|`,

    .. math::
        \mathbf{F}^{\mathrm{self}}_i &= \mathbf{h}_i \\
        \mathbf{F}^{\mathrm{neigh}}_i &= \frac{1}{n_i} \sum_{j \neq i}
            \tilde{A}_{ij}\, \mathbf{h}_j \qquad (\mathbf{0} \text{ if } n_i = 0) \\
        \mathbf{h}'_i &= \sigma\big(\mathbf{\Theta}_s \mathbf{F}^{\mathrm{self}}_i
            + \mathbf{b}_s\big) + \sigma\big(\mathbf{\Theta}_n
            \mathbf{F}^{\mathrm{neigh}}_i + \mathbf{b}_n\big)

    where :math:`A_{ij}` is the weight of the message :math:`j \to i`
    (``edge_index[0] = j``, ``edge_index[1] = i``; weight 1 when no ``edge_weight`` is
    given). Self-loop edges never enter the neighbour sum. Edges are assumed coalesced
    (no duplicate :math:`(j, i)` pairs).

    ``count_self=True`` reproduces the authors' code, which counted the self-loop in
    the divisor: :math:`n_i = |\{j : A_{ij} > 0\}|`, i.e. :math:`n_i + 1` for a node
    that carries a positive self-loop in the given graph and unchanged for one that
    does not. Only the scale of :math:`\mathbf{F}^{\mathrm{neigh}}_i` changes (a label
    with :math:`k` neighbours averages over :math:`k + 1`); the sum itself still
    excludes the self-loop, and a label without neighbours still gets
    :math:`\mathbf{0}`.

    With :math:`\sigma` the identity this is ``Linear`` followed by
    ``torch_geometric.nn.GraphConv(aggr="mean")`` on :math:`\tilde{\mathbf{A}}`
    (``lin_root = \Theta_s``, ``lin_rel = \Theta_n`` with bias
    :math:`\mathbf{b}_s + \mathbf{b}_n`), provided every given edge has a positive
    weight (GraphConv's mean divides by the number of incoming edges, ours by the
    number of positive ones).

    All three maps have Glorot-uniform weights and zero biases: with PyTorch's default
    ``nn.Linear`` initialisation the random biases dominate the shrinking signal and
    stacked layers map every label to nearly the same vector within three layers.

    Args:
        in_channels (int): size of each input feature.
        out_channels (int): size of each output feature.
        branch_act (str or Callable, optional): :math:`\sigma`, applied to each branch
            before the sum; ``"identity"`` for none. (default: :obj:`"relu"`)
        count_self (bool, optional): count a present self-loop in :math:`n_i`.
            (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(C, F_{in})`, edge indices :math:`(2, E)`,
          edge weights :math:`(E,)` *(optional)*
        - **output:** node features :math:`(C, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        branch_act: str | Any = "relu",
        count_self: bool = False,
    ) -> None:
        super().__init__(aggr="add")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.count_self = bool(count_self)
        self.branch_act = resolve_activation(branch_act)
        init = {"weight_initializer": "glorot", "bias_initializer": "zeros"}
        self.lin = Linear(in_channels, out_channels, **init)
        self.lin_self = Linear(out_channels, out_channels, **init)
        self.lin_neigh = Linear(out_channels, out_channels, **init)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()
        self.lin_self.reset_parameters()
        self.lin_neigh.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        num_nodes = x.size(0)
        h = self.lin(x)
        if edge_weight is None:
            edge_weight = torch.ones(edge_index.size(1), dtype=h.dtype, device=h.device)
        source, target = edge_index[0], edge_index[1]
        is_loop = source == target
        keep = ~is_loop

        # n_i: positive off-diagonal entries of row i (+1 for a positive self-loop).
        counted = edge_weight > 0
        if not self.count_self:
            counted = counted & keep
        count = scatter(counted.to(h.dtype), target, dim=0, dim_size=num_nodes, reduce="sum")

        neigh_sum = self.propagate(edge_index[:, keep], x=h, edge_weight=edge_weight[keep], size=None)
        neigh = neigh_sum / count.clamp(min=1.0).unsqueeze(-1)

        return self.branch_act(self.lin_self(h)) + self.branch_act(self.lin_neigh(neigh))

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, count_self={self.count_self})"


@register_encoder("l2gcn")
class L2GCN(LabelEncoder):
    r"""L2-GCN label encoder: :class:`L2GCNConv` layers under the
    :class:`~gcnretrieval.encoders.LabelEncoder` stack and JK-concat head.

    .. math::
        \mathbf{h}'_i = \sigma\big(\mathbf{\Theta}_s \mathbf{h}_i\big)
            + \sigma\Big(\mathbf{\Theta}_n \frac{1}{n_i}
            \sum_{j \neq i} \tilde{A}_{ij} \mathbf{h}_j\Big),
        \qquad \mathbf{h}_i = \mathbf{W}\mathbf{x}_i + \mathbf{b}

    Edge weights are used (``edge_weight``). The default activation between layers is
    ReLU (a no-op after the default ReLU branches, whose sum is non-negative).

    Args:
        branch_act (str or Callable, optional): per-branch activation :math:`\sigma`.
            (default: :obj:`"relu"`)
        count_self (bool, optional): count the self-loop in :math:`n_i` as the authors'
            code did; see :class:`L2GCNConv`. (default: :obj:`False`)
        variant (str, optional): ``"paper"`` (the equations above). The released
            snippet's behaviour (``"code"``) is not implemented. (default: :obj:`"paper"`)
        **kwargs: the shared options of :class:`~gcnretrieval.encoders.LabelEncoder`.
    """

    supports_edge_weight = True
    default_act = "relu"

    def init_conv(
        self,
        in_channels: int,
        out_channels: int,
        *,
        branch_act: str = "relu",
        count_self: bool = False,
        variant: str = "paper",
    ) -> nn.Module:
        if variant != "paper":
            if variant == "code":
                raise ConfigError(
                    "l2gcn variant 'code' (the released snippet's behaviour) is not "
                    "implemented: use variant='paper'"
                )
            raise ConfigError(f"unknown l2gcn variant {variant!r}: use 'paper'")
        return L2GCNConv(in_channels, out_channels, branch_act=branch_act, count_self=count_self)
