r"""A fixed label graph held by a model as buffers."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from gcnretrieval.errors import GraphError


class StaticLabelGraph(nn.Module):
    r"""Holds a fixed label graph (node features, edges, edge weights) as buffers.

    Calling it returns ``(x, edge_index, edge_weight)``, the same triple an
    :class:`~gcnretrieval.graphs.AdaptiveLabelGraph` recomputes on every call, so a
    model treats fixed and learned graphs alike.

    The buffers are *non-persistent*: ``.to(device)`` moves them, but they are not
    part of ``state_dict()``. A checkpoint therefore holds only learned weights, and
    the graph always comes from the (training) data the model is rebuilt with; a
    model is never silently loaded with a stale graph.

    Args:
        graph (torch_geometric.data.Data): label graph with ``x`` :math:`(C, F)`,
            ``edge_index`` :math:`(2, E)` and optionally ``edge_weight`` :math:`(E,)`.

    Shapes:
        - **output:** ``x`` :math:`(C, F)`, ``edge_index`` :math:`(2, E)`,
          ``edge_weight`` :math:`(E,)` or ``None``
    """

    x: Tensor
    edge_index: Tensor
    edge_weight: Tensor | None

    def __init__(self, graph: Data) -> None:
        super().__init__()
        x = getattr(graph, "x", None)
        edge_index = getattr(graph, "edge_index", None)
        edge_weight = getattr(graph, "edge_weight", None)
        if not isinstance(x, Tensor) or x.dim() != 2 or x.size(0) == 0:
            raise GraphError("label graph needs node features x of shape (num_labels, features); "
                             "build it with gcnretrieval.build_label_graph")
        num_nodes = x.size(0)
        if edge_index is None:
            edge_index = torch.empty(2, 0, dtype=torch.long, device=x.device)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise GraphError(f"label graph edge_index must have shape (2, E), got "
                             f"{tuple(edge_index.shape)}; build it with gcnretrieval.build_label_graph")
        if edge_index.numel() > 0 and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
            raise GraphError(f"label graph edge_index refers to nodes outside 0..{num_nodes - 1}; "
                             "rebuild the graph from the same labels as its node features")
        if edge_weight is not None and edge_weight.view(-1).numel() != edge_index.size(1):
            raise GraphError(f"label graph has {edge_index.size(1)} edges but "
                             f"{edge_weight.numel()} edge weights; rebuild the graph")
        if not torch.isfinite(x).all():
            raise GraphError("label graph node features contain NaN or infinite values; "
                             "check the word vectors")
        self.num_nodes = num_nodes
        self.num_node_features = x.size(1)
        self.register_buffer("x", x.detach().clone().to(torch.get_default_dtype()), persistent=False)
        self.register_buffer("edge_index", edge_index.detach().clone().long(), persistent=False)
        if edge_weight is not None:
            edge_weight = edge_weight.detach().clone().view(-1).to(torch.get_default_dtype())
        self.register_buffer("edge_weight", edge_weight, persistent=False)

    def reset_parameters(self) -> None:
        """No trainable parameters; present for a uniform interface."""

    def forward(self) -> tuple[Tensor, Tensor, Tensor | None]:
        return self.x, self.edge_index, self.edge_weight

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"num_node_features={self.num_node_features}, num_edges={self.edge_index.size(1)})")
