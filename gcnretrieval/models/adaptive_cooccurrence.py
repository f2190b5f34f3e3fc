r"""ALGCN's adaptive correlation matrix: a co-occurrence prior plus a learned residual."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from gcnretrieval.checks import check_choice, check_non_negative, check_positive
from gcnretrieval.errors import GraphError
from gcnretrieval.models.label_graph import StaticLabelGraph

Degree = Literal["source", "target"]


class AdaptiveCooccurrenceGraph(nn.Module):
    r"""Label graph whose weights are a fixed co-occurrence prior plus a learned matrix,
    normalised like a GCN adjacency (Qian et al., ALGCN, TMM 2021).

    .. math::
        M = \mathrm{ReLU}(A + \gamma B), \qquad
        \hat{A} = D^{-1/2} M D^{-1/2}, \qquad
        D_{ii} = \begin{cases} \sum_k M_{ki} & \text{degree = "source"} \\
                               \sum_k M_{ik} & \text{degree = "target"} \end{cases}

    :math:`A` is the given graph as a dense target-row matrix (:math:`A_{ij}` weighs the
    message :math:`j \to i`; by default :math:`0.5 \cdot \mathbb{1}[P(i \mid j) \ge t] + I`)
    and :math:`B \in \mathbb{R}^{C \times C}` is learned, initialised
    :math:`\mathcal{U}(0, b_0)`. Since :math:`B > 0` at the start, every pair of labels is
    connected until training drives :math:`A_{ij} + \gamma B_{ij}` below 0. A label whose
    degree is 0 gets :math:`D^{-1/2}_{ii} = 0`.

    ``degree = "source"`` (default) sums :math:`M` over the messages a label *sends*: this
    is the normalisation of the ALGCN (and ML-GCN) code, which builds
    :math:`(M^\top D)^\top D` from a source-row matrix; ``"target"`` is the usual GCN
    in-degree. Both agree on a symmetric :math:`M`.

    :math:`B` is stored as :math:`B / r` with :math:`r` = ``lr_scale`` and multiplied back
    in the forward pass: under Adam, whose steps do not depend on the gradient's scale,
    this trains :math:`B` at :math:`r` times the learning rate of the other parameters
    (the ALGCN code gives :math:`B` a 100-fold learning rate), up to Adam's :math:`\epsilon`.

    Calling the module returns ``(x, edge_index, edge_weight)`` with the non-zero entries
    of :math:`\hat{A}` as weighted edges (``edge_index[0]`` the source :math:`j`,
    ``edge_index[1]`` the target :math:`i`), like the other label-graph modules.

    Args:
        graph (Data): the prior label graph (``x``, ``edge_index``, ``edge_weight``).
        gamma (float): :math:`\gamma \geq 0`. (default: ``0.5``)
        init_scale (float): :math:`b_0`, the upper bound of :math:`B`'s uniform init.
            (default: ``0.02``)
        lr_scale (float): :math:`r > 0`. (default: ``100.0``)
        self_loop_weight (float, optional): set every :math:`A_{ii}` to this value;
            :obj:`None` keeps the graph's self-loops. (default: ``None``)
        degree (str): ``"source"`` or ``"target"``. (default: ``"source"``)
        train_node_features (bool): make the node features a trainable parameter.
            (default: ``False``)

    Shapes:
        - **output:** ``x`` :math:`(C, F)`, ``edge_index`` :math:`(2, E)`,
          ``edge_weight`` :math:`(E,)`
    """

    prior_adjacency: Tensor

    def __init__(
        self,
        graph: Data,
        gamma: float = 0.5,
        init_scale: float = 0.02,
        lr_scale: float = 100.0,
        self_loop_weight: float | None = None,
        degree: Degree = "source",
        train_node_features: bool = False,
    ) -> None:
        super().__init__()
        static = StaticLabelGraph(graph)  # validates the graph
        c = static.num_nodes
        self.num_nodes = c
        self.gamma = check_non_negative("gamma", gamma)
        self.init_scale = check_non_negative("init_scale", init_scale)
        self.lr_scale = check_positive("lr_scale", lr_scale)
        self.degree = check_choice("degree", degree, Degree)
        prior = torch.zeros(c, c, dtype=static.x.dtype, device=static.x.device)
        source, target = static.edge_index
        weight = static.edge_weight if static.edge_weight is not None else torch.ones_like(source, dtype=prior.dtype)
        prior.index_put_((target, source), weight.to(prior.dtype), accumulate=True)
        if self_loop_weight is not None:
            prior.fill_diagonal_(check_non_negative("self_loop_weight", self_loop_weight))
        if (prior < 0).any():
            raise GraphError("the prior label graph has negative edge weights; build it with "
                             "gcnretrieval.build_label_graph")
        # like StaticLabelGraph's, the prior is rebuilt from the training data, never loaded from a checkpoint
        self.register_buffer("prior_adjacency", prior, persistent=False)
        self.x = nn.Parameter(static.x.clone(), requires_grad=train_node_features)
        self.register_buffer("initial_features", static.x.clone(), persistent=False)
        self.residual = nn.Parameter(torch.empty(c, c, dtype=prior.dtype, device=prior.device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Draw :math:`B \sim \mathcal{U}(0, b_0)`; reset the node features."""
        with torch.no_grad():
            self.residual.uniform_(0.0, self.init_scale / self.lr_scale)
            self.x.copy_(self.initial_features)

    @property
    def learned(self) -> Tensor:
        """The learned matrix :math:`B`, shape :math:`(C, C)`."""
        return self.lr_scale * self.residual

    def weights(self) -> Tensor:
        r""":math:`M = \mathrm{ReLU}(A + \gamma B)` (target rows), shape :math:`(C, C)`."""
        return torch.relu(self.prior_adjacency + self.gamma * self.learned)

    def normalized_adjacency(self) -> Tensor:
        r""":math:`\hat{A} = D^{-1/2} M D^{-1/2}` (target rows), shape :math:`(C, C)`."""
        m = self.weights()
        deg = m.sum(dim=0) if self.degree == "source" else m.sum(dim=1)
        inv_sqrt = deg.pow(-0.5).masked_fill(deg <= 0, 0.0)
        return inv_sqrt[:, None] * m * inv_sqrt[None, :]

    @staticmethod
    def edges(adjacency: Tensor) -> tuple[Tensor, Tensor]:
        """The non-zero entries of a target-row matrix as ``(edge_index, edge_weight)``."""
        source, target = torch.nonzero(adjacency.detach().T, as_tuple=True)
        return torch.stack([source, target]), adjacency[target, source]

    def forward(self) -> tuple[Tensor, Tensor, Tensor]:
        edge_index, edge_weight = self.edges(self.normalized_adjacency())
        return self.x, edge_index, edge_weight

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, gamma={self.gamma}, "
                f"degree={self.degree!r})")
