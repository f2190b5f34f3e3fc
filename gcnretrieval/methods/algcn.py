r"""ALGCN: Qian, Xue, Fang, Xu, "Adaptive Label-aware Graph Convolutional Networks for
Cross-Modal Retrieval", IEEE Transactions on Multimedia 24 (2022) 3520-3532
(doi:10.1109/TMM.2021.3101642); public code github.com/LivXue/ALGCN.

Model. Instance branch: one Linear -> ReLU projector per modality into the common space
(no BatchNorm). Label branch: the co-occurrence label graph with an adaptive correlation
matrix :math:`\hat{A} = D^{-1/2}\,\mathrm{ReLU}(A + \gamma B)\,D^{-1/2}`
(:class:`~gcnretrieval.models.AdaptiveCooccurrenceGraph`, :math:`B` learned), three GCN
layers :math:`H' = \hat{A} H W` (no bias) with LeakyReLU(0.2), their outputs concatenated
and mapped to the common dimension by a linear layer (the ``gcn`` encoder with
``normalize = false``, ``bias = false``, ``num_layers = 3`` and its JK-concat head); the
label rows are the classifiers, :math:`\hat{y}_{ij} = \cos(\mathbf{v}_i, \mathbf{c}_j)`.
Retrieval uses the projector outputs.

Objective.

.. math::
    \mathcal{L} = \mathcal{L}_{cla} + \alpha\,\mathcal{L}_{pair} + \beta\,\mathcal{L}_{sup}

with :func:`~gcnretrieval.losses.classification_loss` (per-sample Euclidean norm),
:func:`~gcnretrieval.losses.common_space_discrimination_loss` (DSCMR's pairwise likelihood
of the label similarities under half the cosine, over the image-text, image-image and
text-text pairs) and the self-supervision of :math:`\hat{A}` by the prior,
:func:`~gcnretrieval.losses.adjacency_supervision_loss` (three Bernoulli(0.2) masks of
sampled pairs, one per GCN layer in the code), :math:`\alpha = 0.2`, :math:`\beta = 0.5`.

Defaults (the preset): common dimension 1024, word vectors as node features, co-occurrence
threshold 0.4, :math:`\gamma = 0.5`, :math:`B \sim \mathcal{U}(0, 0.02)` trained at 100x the
learning rate, Adam lr 5e-5, betas (0.5, 0.999), batch 100, 30 epochs (the MIRFlickr
settings of the code; it uses batch 1024 and 40 / 50 epochs on NUS-WIDE / MS-COCO).

What differs, and from what. The paper's full text was not available to us, so the public
code (``main.py``, ``model.py``, ``train_model.py``, ``util.py``, ``gen_occurrence_adj.py``)
is the specification, with these differences, each an option where it matters:

- Self-loops: the code's co-occurrence count adds each label's co-occurrence with itself
  twice, so its prior has :math:`A_{ii} = 1.5`; ours keeps the toolkit's
  :math:`0.5\cdot\mathbb{1}[P \ge t] + I` (``model.self_loop_weight = 1.5`` reproduces it).
- Orientation of the self-supervision target: the code compares :math:`\hat{A}_{ij}` (the
  message :math:`j \to i`) with the prior entry of the message :math:`i \to j` (it
  propagates with the transposed matrix but supervises with the untransposed one); ours
  compares like with like (``loss.transpose_prior = true`` reproduces the code).
- Normalisation: as in the code, :math:`D` sums the weights a label *sends* (the ML-GCN
  code's ``gen_adj``), not the usual in-degree (``model.degree = "target"``).
- Learning rate of :math:`B`: the code gives :math:`B` its own 100-fold learning rate; we
  store :math:`B/100` and multiply back, which under Adam is the same up to Adam's
  :math:`\epsilon` (``model.adjacency_lr_scale``).
- Node features: ``main.py`` as released sets ``embedding = 'none'``, i.e. trainable
  :math:`\mathcal{U}(0, 1)` label features; its shipped GloVe / GoogleNews / fastText
  files are the alternative. We use the toolkit's word vectors, frozen as in the code when
  it is given them (``model.train_node_features = true`` trains them).
- Label similarity in :math:`\mathcal{L}_{pair}`: :math:`S = YY^\top` (shared-label
  counts) as in the code; ``loss.similarity = "shared"`` is DSCMR's "share a label".
- Cosines in :math:`\mathcal{L}_{pair}`: each norm floored at 1e-12, where the code clamps
  the product of norms at 1e-6 (they differ only for near-zero embeddings).
- Initialisation: PyG's Glorot for the GCN weights and the head (zero head bias), where the
  code draws :math:`\mathcal{U}(\pm 1/\sqrt{d})` and uses ``nn.Linear``'s default.
- Label scores: ``cosine_scores`` floors each norm at 1e-8; the code adds 1e-6 to the
  product of norms.
- Epoch selection: on the validation split (the code keeps the best test epoch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import Tensor, nn
from torch_geometric.data import Data

from gcnretrieval.checks import check_non_negative, check_positive_int
from gcnretrieval.defaults import DEFAULT_THRESHOLD
from gcnretrieval.encoders import build_encoder
from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import AdjacencySupervisionLoss, ClassificationLoss, CommonSpaceDiscriminationLoss
from gcnretrieval.losses.common_space_discrimination import SimilarityKind
from gcnretrieval.losses.registry import MethodObjective, register_objective
from gcnretrieval.methods.base import Method, register_method
from gcnretrieval.models import AdaptiveCooccurrenceGraph, Projector, cosine_scores
from gcnretrieval.models.registry import register_model

#: the paper's settings (MIRFlickr, as in the public code's main.py), written once: the method's preset,
#: and the defaults of the model's and the objective's keyword parameters
PAPER: dict[str, Any] = {
    "model.name": "algcn",
    "loss.name": "algcn",
    "model.common_dim": 1024,
    "model.gamma": 0.5,
    "model.adjacency_init": 0.02,
    "model.adjacency_lr_scale": 100.0,
    "loss.alpha": 0.2,
    "loss.beta": 0.5,
    "loss.negative_ratio": 0.2,
    "loss.num_draws": 3,
    "graph.kind": "cooccurrence",
    "graph.threshold": DEFAULT_THRESHOLD,
    "encoder.name": "gcn",
    "encoder.num_layers": 3,
    "encoder.normalize": False,
    "encoder.bias": False,
    "train.batch_size": 100,
    "train.lr": 5e-5,
    "train.betas": [0.5, 0.999],
    "train.epochs": 30,
}


@dataclass
class ALGCNOutput:
    r"""One forward pass of :class:`ALGCNModel`.

    Attributes:
        image_embedding, text_embedding: projector outputs, :math:`(n, d)`.
        label_embedding: the label classifiers :math:`\mathbf{C}`, :math:`(C, d)`.
        image_label_scores, text_label_scores: :math:`\cos(\cdot, \mathbf{c}_j)`, :math:`(n, C)`.
        adjacency: the normalised adaptive adjacency :math:`\hat{A}`, :math:`(C, C)`.
        prior_adjacency: the co-occurrence prior :math:`A`, :math:`(C, C)`.
    """

    image_embedding: Tensor
    text_embedding: Tensor
    label_embedding: Tensor
    image_label_scores: Tensor
    text_label_scores: Tensor
    adjacency: Tensor
    prior_adjacency: Tensor


@register_model("algcn")
class ALGCNModel(nn.Module):
    r"""ALGCN (see the module docstring): projectors, adaptive label graph, GCN classifiers.

    Args:
        image_dim (int): image feature size.
        text_dim (int): text feature size.
        label_graph (Data): the co-occurrence label graph (the prior :math:`A`).
        encoder (str): registered label encoder. (default: ``"gcn"``)
        encoder_options (dict, optional): its options; :obj:`None` gives the paper's three
            unnormalised, bias-free GCN layers when ``encoder`` is ``"gcn"``. (default: ``None``)
        common_dim (int): common dimension :math:`d`. (default: ``1024``)
        gamma (float): :math:`\gamma`, weight of the learned matrix. (default: ``0.5``)
        adjacency_init (float): upper bound of :math:`B`'s uniform init. (default: ``0.02``)
        adjacency_lr_scale (float): learning-rate factor of :math:`B`. (default: ``100.0``)
        self_loop_weight (float, optional): prior self-loop weight; :obj:`None` keeps the
            graph's. (default: ``None``)
        degree (str): ``"source"`` (the code's) or ``"target"`` normalisation.
            (default: ``"source"``)
        train_node_features (bool): train the label features. (default: ``False``)
    """

    def __init__(
        self,
        image_dim: int,
        text_dim: int,
        label_graph: Data,
        encoder: str = PAPER["encoder.name"],
        encoder_options: dict[str, Any] | None = None,
        common_dim: int = PAPER["model.common_dim"],
        gamma: float = PAPER["model.gamma"],
        adjacency_init: float = PAPER["model.adjacency_init"],
        adjacency_lr_scale: float = PAPER["model.adjacency_lr_scale"],
        self_loop_weight: float | None = None,
        degree: Literal["source", "target"] = "source",
        train_node_features: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(label_graph, Data):
            raise ConfigError("model 'algcn' learns its own adaptive graph over a fixed prior; set graph.kind "
                              "to \"cooccurrence\" (the paper's) or \"embedding\", not \"adaptive\"")
        if encoder_options is None and encoder == PAPER["encoder.name"]:
            encoder_options = {key.split(".", 1)[1]: value for key, value in PAPER.items()
                               if key.startswith("encoder.") and key != "encoder.name"}
        self.image_dim = check_positive_int("image_dim", image_dim)
        self.text_dim = check_positive_int("text_dim", text_dim)
        self.common_dim = check_positive_int("common_dim", common_dim)
        check_non_negative("adjacency_init", adjacency_init)
        self.image_projector = Projector(image_dim, common_dim, batch_norm=False)
        self.text_projector = Projector(text_dim, common_dim, batch_norm=False)
        self.label_graph = AdaptiveCooccurrenceGraph(
            label_graph, gamma=gamma, init_scale=adjacency_init, lr_scale=adjacency_lr_scale,
            self_loop_weight=self_loop_weight, degree=degree, train_node_features=train_node_features)
        self.num_labels = self.label_graph.num_nodes
        self.label_encoder = build_encoder(encoder, self.label_graph.x.size(1), common_dim,
                                           **dict(encoder_options or {}))

    def reset_parameters(self) -> None:
        for module in (self.image_projector, self.text_projector, self.label_graph, self.label_encoder):
            module.reset_parameters()

    def _features(self, x: Tensor, expected: int, modality: str) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.size(1) != expected:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"{modality} features must be a (batch, {expected}) tensor, got {shape}; "
                            f"build the model with the data's {modality} dimension")
        return x.to(self.image_projector.lins[0].weight.dtype)

    def embed_image(self, image: Tensor) -> Tensor:
        """Common-space image embeddings (the projector)."""
        return self.image_projector(self._features(image, self.image_dim, "image"))

    def embed_text(self, text: Tensor) -> Tensor:
        """Common-space text embeddings (the projector)."""
        return self.text_projector(self._features(text, self.text_dim, "text"))

    def forward(self, image: Tensor, text: Tensor) -> ALGCNOutput:
        v = self.embed_image(image)
        t = self.embed_text(text)
        if v.size(0) != t.size(0):
            raise DataError(f"image batch has {v.size(0)} rows but text batch has {t.size(0)}; "
                            "image and text must be paired row by row")
        adjacency = self.label_graph.normalized_adjacency()
        edge_index, edge_weight = self.label_graph.edges(adjacency)
        c = self.label_encoder(self.label_graph.x, edge_index, edge_weight)
        return ALGCNOutput(
            image_embedding=v,
            text_embedding=t,
            label_embedding=c,
            image_label_scores=cosine_scores(v, c),
            text_label_scores=cosine_scores(t, c),
            adjacency=adjacency,
            prior_adjacency=self.label_graph.prior_adjacency,
        )


@register_objective("algcn")
class ALGCNObjective(MethodObjective):
    r"""ALGCN's objective: :math:`\mathcal{L}_{cla} + \alpha\,\mathcal{L}_{pair} + \beta\,\mathcal{L}_{sup}`.

    Args:
        alpha (float): weight of the common-space pairwise likelihood loss. (default: ``0.2``)
        beta (float): weight of the adjacency self-supervision. (default: ``0.5``)
        similarity (str): ``"count"`` (the code's) or ``"shared"`` label similarity.
            (default: ``"count"``)
        negative_ratio (float): Bernoulli rate of the sampled pairs. (default: ``0.2``)
        num_draws (int): masks drawn per step. (default: ``3``)
        transpose_prior (bool): the code's orientation of the target. (default: ``False``)
    """

    parts: ClassVar[tuple[str, ...]] = ("total", "classification", "pairwise", "supervision")

    def __init__(
        self,
        alpha: float = PAPER["loss.alpha"],
        beta: float = PAPER["loss.beta"],
        similarity: SimilarityKind = "count",
        negative_ratio: float = PAPER["loss.negative_ratio"],
        num_draws: int = PAPER["loss.num_draws"],
        transpose_prior: bool = False,
    ) -> None:
        super().__init__()
        self.alpha = check_non_negative("alpha", alpha)
        self.beta = check_non_negative("beta", beta)
        self.classification = ClassificationLoss()
        self.pairwise = CommonSpaceDiscriminationLoss(similarity=similarity)
        self.supervision = AdjacencySupervisionLoss(negative_ratio=negative_ratio, num_draws=num_draws,
                                                    transpose_prior=transpose_prior)

    def forward(self, output: Any, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        cla = self.classification(output, labels)
        pair = self.pairwise(output, labels)
        sup = self.supervision(output, labels)
        total = cla + self.alpha * pair + self.beta * sup
        parts = {"total": total, "classification": cla, "pairwise": pair, "supervision": sup}
        return total, {name: value.detach() for name, value in parts.items()}


register_method(Method(
    name="algcn",
    paper="Qian, Xue, Fang, Xu: Adaptive Label-aware Graph Convolutional Networks for Cross-Modal Retrieval, "
          "IEEE TMM 2021",
    summary="GCN label classifiers on a co-occurrence graph with a learned adaptive correlation matrix "
            "(self-supervised by the prior), classification and pairwise likelihood losses",
    preset=PAPER,
    replaces=("model", "loss", "encoder"),
    space={"train.lr": {"low": 1e-5, "high": 1e-3, "log": True},
           "model.common_dim": [256, 512, 1024],
           "loss.alpha": {"low": 0.05, "high": 0.8, "log": True},
           "loss.beta": {"low": 0.1, "high": 2.0, "log": True},
           "model.gamma": {"low": 0.1, "high": 2.0, "log": True}},
))
