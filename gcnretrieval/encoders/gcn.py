r"""The GCN label encoder (Kipf & Welling), as used by ML-GCN and DAGNN."""
from __future__ import annotations

from torch import nn
from torch_geometric.nn import GCNConv

from gcnretrieval.encoders.base import LabelEncoder
from gcnretrieval.errors import ConfigError
from gcnretrieval.encoders.registry import register_encoder


@register_encoder("gcn")
class GCN(LabelEncoder):
    r"""GCN label encoder: ``GCNConv`` layers on the symmetrically normalised graph,

    .. math::
        \mathbf{H}' = \hat{\mathbf{A}} \mathbf{H} \mathbf{\Theta} + \mathbf{b},
        \qquad \hat{\mathbf{A}} = \mathbf{D}^{-1/2} \mathbf{A} \mathbf{D}^{-1/2},
        \qquad D_{ii} = \textstyle\sum_j A_{ij},

    with LeakyReLU(0.2) between layers and the shared JK-concat head. :math:`A_{ij}`
    is the weight of the message :math:`j \to i`, so :math:`D_{ii}` is the weighted
    in-degree of label :math:`i`.

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

    Args:
        improved (bool, optional): added self-loops get weight 2 instead of 1
            (``GCNConv(improved=True)``). (default: :obj:`False`)
        normalize (bool, optional): normalise the graph and add the remaining
            self-loops. (default: :obj:`True`)
        bias (bool, optional): learn the bias :math:`\mathbf{b}`. (default: :obj:`True`)
        **kwargs: the shared options of :class:`~gcnretrieval.encoders.LabelEncoder`.
    """

    supports_edge_weight = True
    default_act = "leaky_relu"
    default_act_kwargs = {"negative_slope": 0.2}

    def init_conv(
        self, in_channels: int, out_channels: int, *, improved: bool = False, normalize: bool = True,
        bias: bool = True,
    ) -> nn.Module:
        if improved and not normalize:
            raise ConfigError("encoder option improved = true applies only with normalize = true (it "
                              "weighs the self-loops that normalisation adds); drop one of them")
        return GCNConv(
            in_channels, out_channels, improved=improved, add_self_loops=normalize, normalize=normalize,
            bias=bias,
        )
