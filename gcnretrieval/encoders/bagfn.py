r"""The BaGFN label encoder: the attentive graph-fusion block of BaGFN (Xie et al.,
"BaGFN: Broad Attentive Graph Fusion Network for High-Order Feature Interactions",
IEEE TNNLS 34(8), 2023) ported from feature fields to the label graph."""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.utils import add_remaining_self_loops, scatter, softmax

from gcnretrieval.encoders.base import LabelEncoder
from gcnretrieval.encoders.registry import register_encoder
from gcnretrieval.errors import ConfigError

_ADJACENCIES = ("masked", "complete")


def _propagate(alpha: Tensor, edge_index: Tensor, h: Tensor) -> Tensor:
    """Row-stochastic propagation: ``out_i = sum_j alpha_ij h_j`` over edges j -> i."""
    source, target = edge_index[0], edge_index[1]
    return scatter(alpha.unsqueeze(-1) * h[source], target, dim=0, dim_size=h.size(0), reduce="sum")


def broad_gate(nodes: Tensor, ridge: Tensor) -> Tensor:
    r"""The broad attention gate :math:`\mathbf{g} = \operatorname{sigmoid}(\frac{1}{2b}
    \mathbf{P}\mathbf{1})`, :math:`\mathbf{P} = \mathbf{B}(\mathbf{B}^\top\mathbf{B} +
    \lambda\mathbf{I})^{-1}`, with the row means of :math:`\mathbf{P}` solved from the
    smaller Gram matrix:

    .. math::
        \frac{1}{2b}\mathbf{P}\mathbf{1} =
        (\mathbf{B}\mathbf{B}^\top + \lambda\mathbf{I}_C)^{-1}\,
        \tfrac{1}{2b}\mathbf{B}\mathbf{1} \quad (C \le 2b), \qquad
        \mathbf{B}\,(\mathbf{B}^\top\mathbf{B} + \lambda\mathbf{I}_{2b})^{-1}\,
        \tfrac{1}{2b}\mathbf{1} \quad (C > 2b),

    the same quantity (push-through identity). Computed by a Cholesky solve in float64
    (float32 on devices without float64), sigmoid included, and rounded once to the
    dtype of ``nodes``.

    Args:
        nodes (Tensor): mapping and enhancement nodes :math:`\mathbf{B}`, :math:`(C, 2b)`.
        ridge (Tensor): the ridge :math:`\lambda > 0`, a scalar.

    Shapes:
        - **output:** :math:`(C,)`
    """
    work = torch.float32 if nodes.device.type == "mps" else torch.float64
    b = nodes.to(work)
    lam = ridge.to(work)
    num_nodes, width = b.shape
    if num_nodes <= width:
        gram = b @ b.t() + lam * torch.eye(num_nodes, dtype=work, device=b.device)
        rhs = b.mean(dim=1, keepdim=True)
        logits = torch.cholesky_solve(rhs, torch.linalg.cholesky(gram))
    else:
        gram = b.t() @ b + lam * torch.eye(width, dtype=work, device=b.device)
        rhs = torch.full((width, 1), 1.0 / width, dtype=work, device=b.device)
        logits = b @ torch.cholesky_solve(rhs, torch.linalg.cholesky(gram))
    return torch.sigmoid(logits.squeeze(-1)).to(nodes.dtype)


class BaGFNBlock(nn.Module):
    r"""One BaGFN block: embedding, ``hops`` attentive graph-fusion steps with a GRU
    update, and a broad-learning attention gate per label.

    **Embedding.** :math:`\tilde{\mathbf{e}}_i = \mathbf{W}_e \mathbf{x}_i + \mathbf{b}_e`
    (one map shared by all labels), each channel L2-normalised across the labels as the
    original normalises across its fields:
    :math:`e_{ik} = \tilde{e}_{ik} / \max(\lVert \tilde{\mathbf{e}}_{\cdot k} \rVert_2, \epsilon)`.

    **Edge scores.** From node summaries :math:`\mathbf{q}_i = \mathbf{W}_q\mathbf{e}_i`,
    :math:`\mathbf{k}_j = \mathbf{W}_k\mathbf{e}_j` (``score_channels`` = :math:`r`),

    .. math::
        \omega_{ij} = \mathbf{q}_i^\top \mathbf{k}_j / \sqrt{r} + \log w_{ij},

    where :math:`w_{ij} > 0` is the weight of edge :math:`j \to i` (``adjacency =
    "masked"``; the log-weight makes the co-occurrence weights an attention prior) or
    1 for every pair (``"complete"``; edge weights are then ignored).

    **Adjacencies** (our reading of the paper's two matrices):

    .. math::
        A_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i) \setminus \{i\}}
            \omega_{ij}, \qquad
        A^{+}_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i) \cup \{i\}}
            \omega_{ij},

    i.e. :math:`\mathbf{A}` attends over the neighbours only and :math:`\mathbf{A}^{+}`
    over the neighbours *and the label itself* (the self-loop keeps its given weight,
    or weight 1 when absent). A label without neighbours has an empty row in
    :math:`\mathbf{A}` and :math:`A^{+}_{ii} = 1`.

    **Hops** :math:`t = 1, \dots, T` (``hops``), from :math:`\mathbf{s}^{(0)} =
    \mathbf{e}`, with :math:`\mathbf{u} = \mathbf{W}_{in}\mathbf{s}^{(t-1)} +
    \mathbf{b}_{in}`:

    .. math::
        \psi_1 &= (\mathbf{A}\mathbf{u}) \odot \mathbf{u}, \qquad
        \psi_2 = \mathbf{A}^{+}\big((\mathbf{A}^{+}\mathbf{u}) \odot \mathbf{u}\big) \\
        \mathbf{m} &= \mathbf{W}_f [\psi_1 \odot \psi_2 \,\Vert\, \psi_1 + \psi_2]
            + \mathbf{b}_f \\
        \mathbf{s}^{(t)} &= \mathrm{GRUCell}(\mathbf{m}, \mathbf{s}^{(t-1)}) + \mathbf{e}

    **Broad attention gate.** Mapping nodes :math:`\mathbf{M} = \mathbf{s}^{(T)}
    \mathbf{W}_m + \mathbf{b}_m`, enhancement nodes :math:`\mathbf{E} =
    \tanh(\mathbf{M}\mathbf{W}_h + \mathbf{b}_h)`, :math:`\mathbf{B} = [\mathbf{M}
    \Vert \mathbf{E}] \in \mathbb{R}^{C \times 2b}` (``broad_channels`` = :math:`b`),
    the transposed ridge pseudo-inverse :math:`\mathbf{P} = \mathbf{B}(\mathbf{B}^\top
    \mathbf{B} + \lambda \mathbf{I})^{-1}` with :math:`\lambda =
    \operatorname{softplus}(\rho) > 0` learned (initialised at 0.1), and

    .. math::
        g_i = \operatorname{sigmoid}\Big(\frac{1}{2b} \sum_k P_{ik}\Big), \qquad
        \mathbf{h}'_i = g_i \, \mathbf{s}^{(T)}_i.

    **Numerics of the gate** (:func:`broad_gate`). :math:`\frac{1}{2b}\mathbf{P}
    \mathbf{1}` is solved from the smaller of the two Gram matrices
    (:math:`\mathbf{B}\mathbf{B}^\top + \lambda\mathbf{I}_C` when :math:`C \le 2b`,
    :math:`\mathbf{B}^\top\mathbf{B} + \lambda\mathbf{I}_{2b}` otherwise) by Cholesky, in
    float64 together with the sigmoid, and the gate is rounded once to the input's dtype;
    the value is the same as with the literal inverse. With fewer labels than :math:`2b`,
    :math:`\mathbf{B}^\top\mathbf{B}` has rank at most :math:`C` and its other
    :math:`2b - C` eigenvalues equal :math:`\lambda`, so :math:`\mathbf{B}^\top\mathbf{B}
    + \lambda\mathbf{I}` has condition number :math:`(\sigma_{\max}^2 + \lambda)/\lambda`.
    At initialisation (20 to 24 labels, :math:`b = 32`, width 64, 300-d inputs) that is
    :math:`8 \cdot 10^3` to :math:`3 \cdot 10^4` on the shipped vocabularies and about
    :math:`2.5 \cdot 10^5` for unit-scale features, against 380 to 880 for
    :math:`\mathbf{B}\mathbf{B}^\top + \lambda\mathbf{I}`; solved with the :math:`2b
    \times 2b` matrix in float32, the gate logits were off by a few :math:`10^{-3}` of
    their size. Besides the sums over incoming edges (taken in the order the edges are
    listed), this solve is the only reduction over labels in the block; its rounding,
    and that of a float32 sigmoid (whose vector and scalar code paths differ in the last
    bit), made the float32 output depend on the order of the labels.

    **Conditioning.** The fusion products are of degree 4 in :math:`\mathbf{u}` per hop,
    so the block's sensitivity grows quickly with the scale of its input: without the
    normalised embedding, five blocks of width 64 on unit-scale 300-d features had a
    relative condition number of :math:`10^4` to :math:`10^7` at initialisation, and
    float32 outputs differed between CPU kernel paths by up to 20%. The normalisation
    bounds the scale every block starts from (``benchmarks/bagfn_conditioning.py``).

    Changes from the CTR original (official TF1 code), and why (its L2 normalisation of
    the embeddings across fields is kept, across labels):

    - field embeddings looked up from sparse ids become one shared linear map of the
      label word vectors (labels have features, not ids);
    - per-field weights (``W_in``, ``W_out`` and the per-field-pair edge weight and
      bias) become maps shared across labels, so the block works for any label set
      and is permutation-equivariant;
    - the edge score from scalar channel means becomes a low-rank bilinear score of
      learned summaries (a scalar mean of a word vector carries almost no signal) plus
      the log co-occurrence weight; softmax is taken over each label's incoming edges
      (``"masked"``) rather than over all field pairs (``"complete"`` keeps that);
      the ReLU the original applied before its softmax is dropped;
    - the node-level attention of the original (a softmax over a single value, hence
      constant 1) is omitted;
    - the broad attention gates the label embedding itself instead of a CTR logit; its
      mapping and enhancement nodes are one linear map and one tanh layer over the
      node state instead of chains of scalar maps over its channel mean;
    - there is no batch dimension: the graph is the label graph, the same for every
      sample.

    Args:
        in_channels (int): size of each input feature.
        out_channels (int): size of each output feature (the block's width).
        hops (int, optional): number of fusion steps :math:`T`. (default: :obj:`3`)
        adjacency (str, optional): ``"masked"`` or ``"complete"``. (default: :obj:`"masked"`)
        score_channels (int, optional): rank :math:`r` of the edge scores. (default: :obj:`32`)
        broad_channels (int, optional): mapping/enhancement nodes :math:`b`. (default: :obj:`32`)
        ridge_init (float, optional): initial ridge :math:`\lambda`. (default: :obj:`0.1`)

    Shapes:
        - **input:** node features :math:`(C, F_{in})`, edge indices :math:`(2, E)`,
          edge weights :math:`(E,)` *(optional)*
        - **output:** node features :math:`(C, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hops: int = 3,
        adjacency: str = "masked",
        score_channels: int = 32,
        broad_channels: int = 32,
        ridge_init: float = 0.1,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hops = hops
        self.adjacency = adjacency
        self.score_channels = score_channels
        self.broad_channels = broad_channels
        self.ridge_init = ridge_init

        def linear(c_in: int, c_out: int, bias: bool = True) -> Linear:
            return Linear(c_in, c_out, bias=bias, weight_initializer="glorot", bias_initializer="zeros")

        self.embed = linear(in_channels, out_channels)
        self.query = linear(out_channels, score_channels, bias=False)
        self.key = linear(out_channels, score_channels, bias=False)
        self.lin_in = linear(out_channels, out_channels)
        self.lin_fuse = linear(2 * out_channels, out_channels)
        self.gru = nn.GRUCell(out_channels, out_channels)
        self.broad_map = linear(out_channels, broad_channels)
        self.broad_enhance = linear(broad_channels, broad_channels)
        self.raw_ridge = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.embed, self.query, self.key, self.lin_in, self.lin_fuse,
                    self.broad_map, self.broad_enhance):
            lin.reset_parameters()
        self.gru.reset_parameters()
        with torch.no_grad():  # softplus(raw) = ridge_init
            self.raw_ridge.fill_(math.log(math.expm1(self.ridge_init)))

    @property
    def ridge(self) -> Tensor:
        """The ridge :math:`\\lambda = \\operatorname{softplus}(\\rho) > 0`."""
        return F.softplus(self.raw_ridge)

    def _graphs(
        self, num_nodes: int, edge_index: Tensor, edge_weight: Tensor | None, like: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Edges and weights of A (no self-loops) and A+ (with self-loops)."""
        if self.adjacency == "complete":
            nodes = torch.arange(num_nodes, device=like.device)
            source = nodes.repeat(num_nodes)
            target = nodes.repeat_interleave(num_nodes)
            edge_index = torch.stack([source, target])
            edge_weight = None
        if edge_weight is None:
            edge_weight = torch.ones(edge_index.size(1), dtype=like.dtype, device=like.device)
        positive = edge_weight > 0
        edge_index, edge_weight = edge_index[:, positive], edge_weight[positive].to(like.dtype)
        off = edge_index[0] != edge_index[1]
        plus_index, plus_weight = add_remaining_self_loops(edge_index, edge_weight, 1.0, num_nodes)
        return edge_index[:, off], edge_weight[off], plus_index, plus_weight

    def _attention(self, q: Tensor, k: Tensor, edge_index: Tensor, weight: Tensor) -> Tensor:
        source, target = edge_index[0], edge_index[1]
        score = (q[target] * k[source]).sum(-1) / math.sqrt(self.score_channels)
        return softmax(score + weight.log(), target, num_nodes=q.size(0))

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        num_nodes = x.size(0)
        e = F.normalize(self.embed(x), p=2.0, dim=0)
        a_index, a_weight, p_index, p_weight = self._graphs(num_nodes, edge_index, edge_weight, e)
        q, k = self.query(e), self.key(e)
        a_alpha = self._attention(q, k, a_index, a_weight)
        p_alpha = self._attention(q, k, p_index, p_weight)

        s = e
        for _ in range(self.hops):
            u = self.lin_in(s)
            psi1 = _propagate(a_alpha, a_index, u) * u
            psi2 = _propagate(p_alpha, p_index, _propagate(p_alpha, p_index, u) * u)
            m = self.lin_fuse(torch.cat([psi1 * psi2, psi1 + psi2], dim=-1))
            s = self.gru(m, s) + e

        mapping = self.broad_map(s)
        nodes = torch.cat([mapping, torch.tanh(self.broad_enhance(mapping))], dim=-1)
        gate = broad_gate(nodes, self.ridge)
        return gate.unsqueeze(-1) * s

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"hops={self.hops}, adjacency={self.adjacency!r})"
        )


@register_encoder("bagfn")
class BaGFN(LabelEncoder):
    r"""BaGFN label encoder: :class:`BaGFNBlock` layers under the shared
    :class:`~gcnretrieval.encoders.LabelEncoder` stack and JK-concat head.

    Depth: each of the ``num_layers`` layers is one whole block (its own embedding,
    ``hops`` fusion steps and broad gate); ``num_layers=1`` is the original model's
    graph part. The default activation between blocks is the identity: the block is
    nonlinear already (bilinear cross terms, GRU gates) and the original stacks its
    hops without one.

    Edge weights are used (``edge_weight``) with ``adjacency="masked"``; with
    ``"complete"`` they are ignored, and the encoder warns once when given some.

    Args:
        hops (int, optional): fusion steps per block. (default: :obj:`3`)
        adjacency (str, optional): ``"masked"`` (softmax over co-occurrence edges) or
            ``"complete"`` (over all label pairs, as the original). (default: :obj:`"masked"`)
        score_channels (int, optional): rank of the learned edge scores. (default: :obj:`32`)
        broad_channels (int, optional): mapping and enhancement nodes of the broad
            gate. (default: :obj:`32`)
        ridge_init (float, optional): initial ridge :math:`\lambda` of the gate's
            pseudo-inverse, kept positive by a softplus. (default: :obj:`0.1`)
        **kwargs: the shared options of :class:`~gcnretrieval.encoders.LabelEncoder`.
    """

    supports_edge_weight = True
    default_act = "identity"

    def init_conv(
        self,
        in_channels: int,
        out_channels: int,
        *,
        hops: int = 3,
        adjacency: str = "masked",
        score_channels: int = 32,
        broad_channels: int = 32,
        ridge_init: float = 0.1,
    ) -> nn.Module:
        if adjacency not in _ADJACENCIES:
            raise ConfigError(f"unknown bagfn adjacency {adjacency!r}: use 'masked' or 'complete'")
        for name, value in (("hops", hops), ("score_channels", score_channels),
                            ("broad_channels", broad_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"bagfn {name} must be a positive integer, got {value!r}")
        if not ridge_init > 0:
            raise ConfigError(f"bagfn ridge_init must be positive, got {ridge_init!r}")
        # "complete" attends over all pairs and has no use for the given weights.
        self.supports_edge_weight = adjacency == "masked"
        return BaGFNBlock(in_channels, out_channels, hops=hops, adjacency=adjacency,
                          score_channels=score_channels, broad_channels=broad_channels,
                          ridge_init=ridge_init)
