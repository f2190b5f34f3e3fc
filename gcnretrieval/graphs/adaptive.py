r"""A label graph learned with the model (METHOD §2, ``adaptive``)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from gcnretrieval.defaults import DEFAULT_THRESHOLD
from gcnretrieval.errors import GraphError
from gcnretrieval.checks import check_choice
from gcnretrieval.graphs.build import _check_threshold, _to_numpy, dense_to_label_graph

PriorWeights = Literal["binary", "cosine"]


class AdaptiveLabelGraph(nn.Module):
    r"""Learned label graph: a fixed prior blended with a learned similarity.

    .. math::
        S_{ij} = \frac{1}{K} \sum_{k=1}^{K} \cos(x_i \odot w_k,\; x_j \odot w_k), \qquad
        A = \tfrac{1}{2} A^0 + \tfrac{1}{2}\, S \odot \mathbb{1}[S \ge t]

    with :math:`K` learned weight vectors :math:`w_k \in \mathbb{R}^F` (initialised
    :math:`\mathcal{U}(0.3, 0.6)`) and trainable word vectors :math:`x`. The prior
    :math:`A^0 = \mathbb{1}[\cos(x^{(0)}_i, x^{(0)}_j) \ge t]` is computed once from the
    initial word vectors (or is the binarised structure of a given ``prior`` graph) and
    includes the diagonal, so self-loops get :math:`A_{ii} = \frac{1}{2} + \frac{1}{2} = 1`.
    With ``prior_weights="cosine"`` the prior keeps the similarities it thresholds,
    :math:`A^0_{ij} = \cos(x^{(0)}_i, x^{(0)}_j)\,\mathbb{1}[\cos(x^{(0)}_i, x^{(0)}_j) \ge t]`
    (diagonal 1), as the I-GNN reference code does.
    Edges are the non-zero entries of :math:`A`, with the direction convention of
    :func:`~gcnretrieval.graphs.build_label_graph` (``A[i, j]`` weighs the message
    :math:`j \to i`). :math:`A` and the edge set are recomputed on every call.

    Threshold and gradients: the mask :math:`\mathbb{1}[S \ge t]` is a step function
    with zero gradient, so gradients reach :math:`w_k` and :math:`x` only through the
    kept entries :math:`S_{ij} \ge t` (the edge weights). A pair below :math:`t` gets
    no gradient of its own; it enters the graph only when training (through the shared
    :math:`w_k` and :math:`x`) lifts its similarity over :math:`t`, and an edge drops
    out, its weight jumping by :math:`-S_{ij}/2`, when its similarity falls below.

    Args:
        node_features: :math:`(C, F)` initial word vectors (tensor or array).
        threshold (float): :math:`t \in (0, 1]`. (default: ``0.4``)
        num_weights (int): :math:`K`. (default: ``8``)
        prior (Data, optional): graph whose binarised edges (plus self-loops) form
            :math:`A^0`; by default the thresholded word-vector cosine. (default: ``None``)
        label_names: the :math:`C` label names. (default: ``label_0 ...``)
        train_features (bool): make :math:`x` a trainable parameter. (default: ``True``)
        init_range (tuple): bounds of the uniform init of :math:`w_k`. (default: ``(0.3, 0.6)``)
        prior_weights (str): ``"binary"`` (default) or ``"cosine"`` (the word-vector prior
            only). (default: ``"binary"``)

    Shapes:
        - **output:** ``x`` :math:`(C, F)`, ``edge_index`` :math:`(2, E)`,
          ``edge_weight`` :math:`(E,)`
    """

    prior_adjacency: Tensor
    initial_features: Tensor

    def __init__(
        self,
        node_features: Any,
        threshold: float = DEFAULT_THRESHOLD,
        num_weights: int = 8,
        *,
        prior: Data | None = None,
        label_names: Sequence[str] | None = None,
        train_features: bool = True,
        init_range: tuple[float, float] = (0.3, 0.6),
        prior_weights: PriorWeights = "binary",
    ) -> None:
        super().__init__()
        x0 = torch.as_tensor(_to_numpy(node_features), dtype=torch.get_default_dtype())
        if isinstance(node_features, Tensor):
            x0 = x0.to(node_features.device)
        if x0.dim() != 2 or x0.size(0) == 0 or x0.size(1) == 0:
            raise GraphError(f"node_features must be a (num_labels, features) matrix, got shape {tuple(x0.shape)}")
        if not torch.isfinite(x0).all():
            raise GraphError("node_features contain NaN or infinite values; fix the word vectors")
        if (x0.norm(dim=1) == 0).any():
            raise GraphError("a node-feature row is all zeros, so its cosine similarity is undefined; "
                             "fix the word vectors")
        if isinstance(num_weights, bool) or not isinstance(num_weights, int) or num_weights < 1:
            raise GraphError(f"num_weights must be a positive integer, got {num_weights!r}")
        low, high = (float(v) for v in init_range)
        if not low <= high:
            raise GraphError(f"init_range must be (low, high) with low <= high, got {init_range!r}")
        c, f = x0.shape
        if label_names is not None and len(label_names) != c:
            raise GraphError(f"got {len(label_names)} label names for {c} node-feature rows; "
                             "give one name per label")
        self.threshold = _check_threshold(threshold)
        self.prior_weights = check_choice("prior_weights", prior_weights, PriorWeights)
        if prior is not None and self.prior_weights != "binary":
            raise GraphError("prior_weights = \"cosine\" weighs the word-vector prior; a given prior graph "
                             "is binarised, so drop prior or prior_weights")
        self.num_nodes = c
        self.in_channels = f
        self.num_weights = num_weights
        self.init_range = (low, high)
        self.label_names = [str(n) for n in label_names] if label_names is not None else [
            f"label_{j}" for j in range(c)]

        self.register_buffer("initial_features", x0.clone())
        self.register_buffer("prior_adjacency", self._prior(x0, prior))
        self.x = nn.Parameter(x0.clone(), requires_grad=train_features)
        self.weight = nn.Parameter(torch.empty(num_weights, f, dtype=x0.dtype, device=x0.device))
        self.reset_parameters()

    def _prior(self, x0: Tensor, prior: Data | None) -> Tensor:
        c = x0.size(0)
        if prior is None:
            cos = F.normalize(x0, dim=1) @ F.normalize(x0, dim=1).T
            a0 = (cos >= self.threshold).to(x0.dtype)
            if self.prior_weights == "cosine":
                a0 = a0 * cos
        else:
            if getattr(prior, "num_nodes", None) != c or getattr(prior, "edge_index", None) is None:
                raise GraphError(f"prior graph must have {c} nodes (one per node-feature row) and an "
                                 "edge_index; build it with gcnretrieval.build_label_graph")
            a0 = torch.zeros(c, c, dtype=x0.dtype, device=x0.device)
            source, target = prior.edge_index.to(x0.device)
            a0[target, source] = 1.0
        a0.fill_diagonal_(1.0)
        return a0

    def reset_parameters(self) -> None:
        """Draw :math:`w_k \\sim \\mathcal{U}(\\text{init\\_range})`; reset :math:`x` to the initial vectors."""
        with torch.no_grad():
            self.weight.uniform_(*self.init_range)
            self.x.copy_(self.initial_features)

    def similarity(self) -> Tensor:
        r""":math:`S = \frac{1}{K}\sum_k \cos(x \odot w_k)`, shape :math:`(C, C)`."""
        z = F.normalize(self.x.unsqueeze(0) * self.weight.unsqueeze(1), dim=2)  # (K, C, F): all k at once
        return (z @ z.transpose(1, 2)).mean(dim=0)

    def adjacency(self) -> Tensor:
        r"""Dense :math:`A = \frac{1}{2}A^0 + \frac{1}{2} S \odot \mathbb{1}[S \ge t]` (target rows)."""
        s = self.similarity()
        keep = (s.detach() >= self.threshold).to(s.dtype)
        keep.fill_diagonal_(1.0)  # cos(z_i, z_i) = 1 may round below t = 1
        return 0.5 * self.prior_adjacency + 0.5 * s * keep

    def forward(self) -> tuple[Tensor, Tensor, Tensor]:
        a = self.adjacency()
        source, target = torch.nonzero(a.detach().T, as_tuple=True)
        edge_index = torch.stack([source, target])
        edge_weight = a[target, source]
        return self.x, edge_index, edge_weight

    def to_data(self) -> Data:
        """The current graph as a detached, validated ``Data`` (for summaries and plots)."""
        with torch.no_grad():
            return dense_to_label_graph(self.adjacency().float(), self.x.detach().float().clone(),
                                        self.label_names)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, in_channels={self.in_channels}, "
                f"num_weights={self.num_weights}, threshold={self.threshold})")
