r"""The no-graph baseline encoder ``none``: label rows from the node features alone."""
from __future__ import annotations

import warnings

from torch import Tensor, nn
from torch_geometric.nn.dense.linear import Linear

from gcnretrieval.encoders.base import LabelEncoder
from gcnretrieval.encoders.registry import register_encoder


class NodeLinear(nn.Module):
    r"""A per-node linear map that takes the graph arguments and ignores them,

    .. math::
        \mathbf{h}_i' = \mathbf{\Theta} \mathbf{h}_i + \mathbf{b}.

    Args:
        in_channels (int): size of each input row.
        out_channels (int): size of each output row.

    Shapes:
        - **input:** node features :math:`(C, F_{in})`, edge indices :math:`(2, E)` (unused)
        - **output:** node features :math:`(C, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = Linear(in_channels, out_channels, weight_initializer="glorot", bias_initializer="zeros")

    def reset_parameters(self) -> None:
        """Re-initialise the weight (Glorot) and the bias (zeros)."""
        self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Map every row on its own; ``edge_index`` is accepted and ignored."""
        return self.lin(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


@register_encoder("none")
class NoGraph(LabelEncoder):
    r"""The "no label graph" baseline: a multi-layer perceptron applied to each label's
    node feature (its word vector) independently,

    .. math::
        \mathbf{H}^{(l)} = \sigma\big(\mathbf{H}^{(l-1)} \mathbf{\Theta}_l + \mathbf{b}_l\big),
        \qquad \mathbf{C} = \big[\mathbf{H}^{(1)} \,\Vert\, \cdots \,\Vert\,
            \mathbf{H}^{(L)}\big] \mathbf{W}_{\mathrm{jk}} + \mathbf{b}_{\mathrm{jk}},

    with the same depth, width, activation (LeakyReLU(0.2)), dropout and JK-concat head as
    the graph encoders, so the only difference from them is that no label ever receives a
    message from another one. ``edge_index`` and edge weights are ignored (the encoder
    warns once when given weights).

    Why an MLP on the node features and not a free :math:`(C, d)` matrix: a free matrix
    is tied to the label *order*, so it is not a function of the graph and breaks the
    encoder contract (permuting the labels permutes the output), and it could not be
    swapped for a graph encoder in the same model. The MLP is the classifier rows'
    free-parameter baseline all the same: with one-hot node features
    (``graph.node_features = "onehot"``) and ``jk = None, num_layers = 1`` its output is
    exactly a learnable :math:`(C, d)` matrix plus a bias, and with any :math:`C` linearly
    independent node features (random or word vectors of 300 dimensions for :math:`C \le
    300` labels) the first layer can already place every row anywhere.

    Args:
        **kwargs: the shared options of :class:`~gcnretrieval.encoders.LabelEncoder`.

    Shapes:
        - **input:** node features :math:`(C, F_{in})`, edge indices :math:`(2, E)`
          (unused), optional edge weights :math:`(E,)` (unused)
        - **output:** label embeddings :math:`(C, F_{out})`
    """

    default_act = "leaky_relu"
    default_act_kwargs = {"negative_slope": 0.2}

    def init_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return NodeLinear(in_channels, out_channels)

    def _call_conv(self, conv: nn.Module, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
        if edge_weight is not None and not self._warned_edge_weight:
            self._warned_edge_weight = True
            warnings.warn(
                "encoder 'none' ignores edge weights and edges: it is the no-label-graph baseline",
                UserWarning,
                stacklevel=3,
            )
        return conv(x)
