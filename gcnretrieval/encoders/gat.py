r"""The GAT label encoder (Veličković et al., ICLR 2018) with edge weights as edge features."""
from __future__ import annotations

from torch import nn
from torch_geometric.nn import GATConv

from gcnretrieval.encoders.base import LabelEncoder
from gcnretrieval.encoders.registry import register_encoder
from gcnretrieval.errors import ConfigError


@register_encoder("gat")
class GAT(LabelEncoder):
    r"""GAT label encoder: ``GATConv`` layers with ELU between them and the shared
    JK-concat head,

    .. math::
        \mathbf{h}'_i = \big\Vert_{k=1}^{K} \sum_{j \in \mathcal{N}(i) \cup \{i\}}
            \alpha^{k}_{ij} \mathbf{\Theta}^{k} \mathbf{h}_j, \qquad
        \alpha^{k}_{ij} = \operatorname{softmax}_j\big(\mathrm{LeakyReLU}(
            \mathbf{a}^{k\top} [\mathbf{\Theta}^{k}\mathbf{h}_i \Vert
            \mathbf{\Theta}^{k}\mathbf{h}_j \Vert \mathbf{\Theta}^{k}_e A_{ij}])\big).

    Attention is masked to the graph's edges plus self-loops (a binary mask). Edge
    weights reach the attention only as a one-dimensional edge feature
    (``edge_attr = w.view(-1, 1)``, ``GATConv(edge_dim=1)``); PyG's ``models.GAT``
    would silently drop an ``edge_weight`` instead. ``GATConv`` replaces the given
    self-loops by fresh ones whose edge feature is 1.0, the self-loop weight of the
    label-graph convention; a label without a self-loop gets one as well.

    Heads: with ``concat=True`` (default) the ``heads`` outputs of
    ``out_channels // heads`` features each are concatenated, so every layer keeps its
    width (``out_channels`` must be divisible by ``heads``); with ``concat=False`` each
    head has ``out_channels`` features and the heads are averaged.

    Args:
        heads (int, optional): number of attention heads. (default: :obj:`1`)
        concat (bool, optional): concatenate (``True``) or average the heads.
            (default: :obj:`True`)
        attention_dropout (float, optional): dropout on the attention coefficients.
            (default: :obj:`0.0`)
        negative_slope (float, optional): LeakyReLU slope inside the attention.
            (default: :obj:`0.2`)
        **kwargs: the shared options of :class:`~gcnretrieval.encoders.LabelEncoder`.
    """

    supports_edge_attr = True
    default_act = "elu"

    def init_conv(
        self,
        in_channels: int,
        out_channels: int,
        *,
        heads: int = 1,
        concat: bool = True,
        attention_dropout: float = 0.0,
        negative_slope: float = 0.2,
    ) -> nn.Module:
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise ConfigError(f"gat heads must be a positive integer, got {heads!r}")
        per_head = out_channels
        if concat:
            if out_channels % heads:
                raise ConfigError(
                    f"gat with concat=True needs out/hidden channels ({out_channels}) "
                    f"divisible by heads ({heads}): change heads or set concat=False"
                )
            per_head = out_channels // heads
        return GATConv(
            in_channels,
            per_head,
            heads=heads,
            concat=concat,
            negative_slope=negative_slope,
            dropout=attention_dropout,
            add_self_loops=True,
            fill_value=1.0,
            edge_dim=1,
        )
