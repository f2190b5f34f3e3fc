r"""DSCMR: Zhen, Hu, Wang, Peng, "Deep Supervised Cross-Modal Retrieval", CVPR 2019.

Each modality has its own fully connected layer into a hidden space; one last layer, shared by
both modalities, maps into the common space, where the retrieval embeddings
:math:`\mathbf{u}_i` (images) and :math:`\mathbf{v}_i` (texts) are ranked by cosine similarity;
one linear classifier :math:`\mathbf{P}`, also shared, predicts the labels from the common space.
The objective (paper eq. 5) is

.. math::
    \mathcal{J} = \mathcal{J}_1 + \lambda\,\mathcal{J}_2 + \eta\,\mathcal{J}_3

with :math:`\mathcal{J}_1` the discrimination loss in the label space
(:func:`~gcnretrieval.losses.label_space_loss`), :math:`\mathcal{J}_2` the discrimination loss
in the common space, a negative log-likelihood of the label similarities of image-text,
image-image and text-text pairs (:func:`~gcnretrieval.losses.common_space_discrimination_loss`),
and :math:`\mathcal{J}_3` the modality-invariance loss
(:func:`~gcnretrieval.losses.modality_invariance_loss`).

Where this differs from the paper or from the authors' public code (github.com/penghu-cs/DSCMR):

- Inputs are precomputed features (the toolkit's datasets); the paper's image subnetwork starts
  from a VGG-19 and its text subnetwork from a Word2Vec sentence CNN. Only the fully connected
  layers on top are trained, as in the public code (which also reads precomputed features).
- Layer widths and activations follow the public code: Linear(d_in, 2048) -> ReLU per modality,
  then the shared Linear(2048, 1024) with no activation, then the classifier.
- The classifier is :math:`\mathbf{P}^\top\mathbf{u}` as in the paper, without a bias;
  the public code's classifier has one (``classifier_bias = true``).
- :math:`\mathcal{J}_1` and :math:`\mathcal{J}_3` are the paper's Frobenius norms divided by the
  batch size, :math:`\frac{1}{n}\lVert\cdot\rVert_F`; the public code takes the mean of the
  per-sample Euclidean norms instead (``norm = "rows"``), which is larger by up to
  :math:`\sqrt{n}` (10 at the batch size of 100) and so weighs :math:`\mathcal{J}_1` and
  :math:`\mathcal{J}_3` more against :math:`\mathcal{J}_2`.
- The paper's :math:`S_{ij}` is 1 for two samples of the same class (its four datasets are
  single-label); on multi-label data :math:`S_{ij} = 1` when the two share a label
  (``similarity = "shared"``, the toolkit's relevance). The public code uses the number of shared
  labels :math:`\mathbf{y}_i^\top\mathbf{y}_j` (``similarity = "count"``). Both agree on
  single-label data.
- The loss weights :math:`\lambda = 10^{-3}`, :math:`\eta = 0.1` and the training settings
  (Adam, learning rate :math:`10^{-4}`, betas (0.5, 0.999), batch 100, 500 epochs) are the public
  code's ``main.py``. Like the public code, which keeps the epoch of the best *test* mAP, the
  toolkit selects an epoch, but on its validation split.

The model's and the objective's values are their constructors' defaults (``[model]`` and ``[loss]``
keys); the method's preset names them and sets the training keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from gcnretrieval.checks import check_choice, check_non_negative, check_positive_int
from gcnretrieval.losses.common_space_discrimination import SimilarityKind, common_space_discrimination_loss
from gcnretrieval.losses.label_space import label_space_loss
from gcnretrieval.losses.modality_invariance import modality_invariance_loss
from gcnretrieval.losses.norms import NormKind
from gcnretrieval.losses.registry import MethodObjective, register_objective
from gcnretrieval.methods.base import Method, register_method
from gcnretrieval.models.registry import register_model


@dataclass
class DSCMROutput:
    r"""One forward pass of :class:`DSCMRModel`.

    Attributes:
        image_embedding: common representations :math:`\mathbf{u}_i` of the images, :math:`(n, d)`.
        text_embedding: common representations :math:`\mathbf{v}_i` of the texts, :math:`(n, d)`.
        image_label_scores: label predictions :math:`\mathbf{P}^\top\mathbf{u}_i`, :math:`(n, C)`.
        text_label_scores: label predictions :math:`\mathbf{P}^\top\mathbf{v}_i`, :math:`(n, C)`.
    """

    image_embedding: Tensor
    text_embedding: Tensor
    image_label_scores: Tensor
    text_label_scores: Tensor


@register_model("dscmr")
class DSCMRModel(nn.Module):
    r"""DSCMR's two subnetworks with a shared last layer and a shared linear classifier.

    .. math::
        \mathbf{u}_i = \mathbf{W}_s\,\mathrm{ReLU}(\mathbf{W}_v\mathbf{x}^v_i + \mathbf{b}_v) + \mathbf{b}_s,
        \qquad
        \mathbf{v}_i = \mathbf{W}_s\,\mathrm{ReLU}(\mathbf{W}_t\mathbf{x}^t_i + \mathbf{b}_t) + \mathbf{b}_s,
        \qquad
        \hat{\mathbf{y}}^v_i = \mathbf{P}^\top\mathbf{u}_i,\quad \hat{\mathbf{y}}^t_i = \mathbf{P}^\top\mathbf{v}_i

    Args:
        image_dim (int): image feature size :math:`d_v`.
        text_dim (int): text feature size :math:`d_t`.
        num_labels (int): number of labels :math:`C`.
        hidden_dim (int, optional): width of each modality's own layer. (default: :obj:`2048`)
        common_dim (int, optional): common space dimension :math:`d`, the shared layer's
            width. (default: :obj:`1024`)
        classifier_bias (bool, optional): give the classifier a bias (the public code's),
            :math:`\mathbf{P}^\top\mathbf{u} + \mathbf{b}`. (default: :obj:`False`)

    Shapes:
        - **input:** image :math:`(n, d_v)`, text :math:`(n, d_t)`
        - **output:** :class:`DSCMROutput`
    """

    def __init__(self, image_dim: int, text_dim: int, num_labels: int, hidden_dim: int = 2048,
                 common_dim: int = 1024, classifier_bias: bool = False) -> None:
        super().__init__()
        self.image_dim = check_positive_int("image_dim", image_dim)
        self.text_dim = check_positive_int("text_dim", text_dim)
        self.num_labels = check_positive_int("num_labels", num_labels)
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        self.common_dim = check_positive_int("common_dim", common_dim)
        self.image_layer = nn.Linear(image_dim, hidden_dim)
        self.text_layer = nn.Linear(text_dim, hidden_dim)
        self.shared_layer = nn.Linear(hidden_dim, common_dim)
        self.classifier = nn.Linear(common_dim, num_labels, bias=bool(classifier_bias))
        self.act = nn.ReLU()

    def reset_parameters(self) -> None:
        for layer in (self.image_layer, self.text_layer, self.shared_layer, self.classifier):
            layer.reset_parameters()

    def embed_image(self, image: Tensor) -> Tensor:
        """Common representations :math:`\\mathbf{u}` of images, :math:`(n, d)`."""
        return self.shared_layer(self.act(self.image_layer(image)))

    def embed_text(self, text: Tensor) -> Tensor:
        """Common representations :math:`\\mathbf{v}` of texts, :math:`(n, d)`."""
        return self.shared_layer(self.act(self.text_layer(text)))

    def forward(self, image: Tensor, text: Tensor) -> DSCMROutput:
        u, v = self.embed_image(image), self.embed_text(text)
        return DSCMROutput(u, v, self.classifier(u), self.classifier(v))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(image_dim={self.image_dim}, text_dim={self.text_dim}, "
                f"num_labels={self.num_labels}, hidden_dim={self.hidden_dim}, common_dim={self.common_dim}, "
                f"classifier_bias={self.classifier.bias is not None})")


@register_objective("dscmr")
class DSCMRObjective(MethodObjective):
    r"""DSCMR's objective (paper eq. 5).

    .. math::
        \mathcal{J} = \mathcal{J}_1 + \lambda\,\mathcal{J}_2 + \eta\,\mathcal{J}_3

    Args:
        common_space_weight (float, optional): :math:`\lambda`, the weight of the common-space
            discrimination loss :math:`\mathcal{J}_2` (``alpha`` in the public code).
            (default: :obj:`1e-3`)
        invariance_weight (float, optional): :math:`\eta`, the weight of the modality-invariance
            loss :math:`\mathcal{J}_3` (``beta`` in the public code). (default: :obj:`0.1`)
        norm (str, optional): ``"frobenius"`` (the paper's :math:`\frac{1}{n}\lVert\cdot\rVert_F`
            in :math:`\mathcal{J}_1` and :math:`\mathcal{J}_3`) or ``"rows"`` (the public code's
            mean per-sample norm). (default: :obj:`"frobenius"`)
        similarity (str, optional): the label similarity :math:`S_{ij}` of :math:`\mathcal{J}_2`,
            ``"shared"`` (1 if the two share a label) or ``"count"`` (the number of shared
            labels, the public code's). (default: :obj:`"shared"`)
    """

    parts: ClassVar[tuple[str, ...]] = ("total", "label_space", "common_space", "invariance")

    def __init__(self, common_space_weight: float = 1e-3, invariance_weight: float = 0.1,
                 norm: NormKind = "frobenius", similarity: SimilarityKind = "shared") -> None:
        super().__init__()
        self.common_space_weight = check_non_negative("common_space_weight", common_space_weight)
        self.invariance_weight = check_non_negative("invariance_weight", invariance_weight)
        self.norm = check_choice("norm", norm, NormKind)
        self.similarity = check_choice("similarity", similarity, SimilarityKind)

    def forward(self, output: DSCMROutput, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        j1 = label_space_loss(output.image_label_scores, output.text_label_scores, labels, self.norm)
        j2 = common_space_discrimination_loss(output.image_embedding, output.text_embedding, labels,
                                              self.similarity)
        j3 = modality_invariance_loss(output.image_embedding, output.text_embedding, labels, self.norm)
        total = j1 + self.common_space_weight * j2 + self.invariance_weight * j3
        parts = {"total": total, "label_space": j1, "common_space": j2, "invariance": j3}
        return total, {name: value.detach() for name, value in parts.items()}

    def extra_repr(self) -> str:
        return (f"common_space_weight={self.common_space_weight}, invariance_weight={self.invariance_weight}, "
                f"norm={self.norm!r}, similarity={self.similarity!r}")


register_method(Method(
    name="dscmr",
    paper="Zhen, Hu, Wang, Peng: Deep Supervised Cross-Modal Retrieval, CVPR 2019",
    summary="two subnetworks with a shared last layer and a shared linear classifier; discrimination losses in the "
            "label space and the common space, and a modality-invariance loss; no label graph",
    preset={"model.name": "dscmr", "loss.name": "dscmr", "train.optimizer": "adam", "train.lr": 1e-4,
            "train.betas": [0.5, 0.999], "train.weight_decay": 0.0, "train.batch_size": 100, "train.epochs": 500},
    uses_label_graph=False,
    # compare --tune: the learning rate, the common dimension and the two loss weights around the paper's values
    space={"train.lr": {"low": 1e-5, "high": 1e-3, "log": True}, "model.common_dim": [256, 512, 1024],
           "loss.common_space_weight": {"low": 1e-4, "high": 1.0, "log": True},
           "loss.invariance_weight": {"low": 1e-3, "high": 1.0, "log": True}},
))
