r"""ACMR: adversarial cross-modal retrieval.

Wang, Yang, Xu, Hanjalic, Shen: "Adversarial Cross-Modal Retrieval", ACM Multimedia 2017.

Two feature projectors map images and texts into a common space; on that space a label
classifier (label prediction, :math:`\mathcal{L}_{imd}`, eq. 1), cross-modal triplet
constraints (inter-modal invariance, :math:`\mathcal{L}_{imi}`, eqs. 2-5) and a Frobenius
regulariser of the projectors (:math:`\mathcal{L}_{reg}`, eq. 6) make the embedding loss

.. math::
    \mathcal{L}_{emb} = \alpha\,\mathcal{L}_{imi} + \beta\,\mathcal{L}_{imd} + \mathcal{L}_{reg}

and a modality classifier :math:`D` (eq. 8) plays the adversary: the projectors minimise
:math:`\mathcal{L}_{emb} - \mathcal{L}_{adv}` while :math:`D` minimises :math:`\mathcal{L}_{adv}`
(eqs. 9-10). As in the paper, a gradient reversal layer in front of :math:`D` turns the
minimax into one loss, :math:`\mathcal{L}_{emb} + \mathcal{L}_{adv}`, and one backward pass.
Retrieval ranks the projector outputs by cosine similarity (the toolkit's mAP).

What differs from the paper, and why:

- Multi-label data (the paper's datasets are single-label): a positive pair shares at least
  one label, a negative pair shares none; the label loss is the softmax cross-entropy with the
  label distribution :math:`\mathbf{y}_i / \lVert\mathbf{y}_i\rVert_1` as target, which is the
  paper's eq. 1 wherever a row has one label
  (:func:`~gcnretrieval.losses.label_prediction_loss`).
- The triplet sums of eqs. 3-4 run over every (anchor, positive, negative) triplet of the
  mini-batch and are averaged over the triplets rather than summed
  (:func:`~gcnretrieval.losses.cross_modal_triplet_loss`), so :math:`\alpha` does not scale
  with the batch size. The paper's triplets are cross-modal only (an image anchor with text
  positives and negatives, and the reverse); within-modality structure comes from the label
  classifier, as in the paper.
- The gradient reversal coefficient is constant (``grl_coefficient``); the public code ramps it
  from 0 to 1 with DANN's schedule :math:`2/(1+e^{-10p})-1`, which the trainer does not offer.
- The public TensorFlow code (github.com/sunpeng981712364/ACMR_demo) differs from the paper
  in ways this implementation does *not* follow: its triplet demo trains neither the label
  classifier's weights (they stay at their random initialisation) nor passes the modality
  classifier's reversed gradient to the projectors (the adversarial loss updates the
  classifier only); its triplet term is a hinge on batch sums of squared distances with one
  hard negative per anchor, :math:`\max(0, 0.1 + 5\sum\lVert v-t^+\rVert^2/2 - \sum\lVert
  v-t^-\rVert^2/2)`; it has no :math:`\mathcal{L}_{reg}`.
- Both players are updated at every mini-batch, by one optimizer with one learning rate (through
  the gradient reversal); the public code runs two Adam optimizers of equal learning rate, one
  per player, also once per mini-batch.
- Widths: the paper's projectors, tanh after every layer, :math:`d_v \to 2000 \to 200` for
  images and :math:`d_t \to 500 \to 200` for texts. The other defaults are the public code's
  (each marked so at its constant below): the modality classifier's widths (:math:`d/2, d/4`,
  linear layers without an activation between them), the margin :math:`\mu = 0.1`, the ratio
  :math:`\beta / \alpha = 100` (its ``100 * label_loss + triplet_loss``), the triplet demo's 50
  epochs, batch 64, Adam with learning rate :math:`10^{-4}` and :math:`\beta_1 = 0.5`;
  :math:`\lambda = 1` leaves the negative hinge unweighted.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch_geometric.nn import MLP

from gcnretrieval.checks import check_non_negative, check_positive_int, values_readable
from gcnretrieval.errors import DataError, InvalidArgument
from gcnretrieval.losses.frobenius import frobenius_regularization
from gcnretrieval.losses.label_prediction import label_prediction_loss
from gcnretrieval.losses.modality_classification import modality_classification_loss
from gcnretrieval.losses.registry import MethodObjective, register_objective
from gcnretrieval.losses.triplet import DEFAULT_MARGIN, DEFAULT_NEGATIVE_WEIGHT, cross_modal_triplet_loss
from gcnretrieval.methods.base import Method, register_method
from gcnretrieval.models.grl import GradientReversal
from gcnretrieval.models.registry import register_model

# The paper's defaults, written once: the model's and the objective's keyword defaults and the
# method preset all read them.
#: Common-space dimension :math:`d` (the projectors' last width).
COMMON_DIM = 200
#: Hidden widths of the image projector :math:`f_V` (tanh layers :math:`d_v \to 2000 \to 200`).
IMAGE_HIDDEN = (2000,)
#: Hidden widths of the text projector :math:`f_T` (tanh layers :math:`d_t \to 500 \to 200`).
TEXT_HIDDEN = (500,)
#: Hidden widths of the modality classifier (public code: :math:`d/2, d/4`).
CLASSIFIER_HIDDEN = (COMMON_DIM // 2, COMMON_DIM // 4)
#: Gradient reversal coefficient (constant; see the module docstring).
GRL_COEFFICIENT = 1.0
#: :math:`\alpha`, weight of the inter-modal invariance (triplet) loss (public code: 1).
ALPHA = 1.0
#: :math:`\beta`, weight of the label prediction loss (public code: 100).
BETA = 100.0
#: Weight of :math:`\mathcal{L}_{reg}` (1 in eq. 7).
REG_WEIGHT = 1.0
#: Training defaults: batch size, learning rate, Adam's betas, epochs (public code's triplet demo).
BATCH_SIZE, LR, BETAS, EPOCHS = 64, 1e-4, (0.5, 0.999), 50


@dataclass
class ACMROutput:
    r"""One forward pass of :class:`ACMRModel`.

    Attributes:
        image_embedding: :math:`f_V(\mathbf{x}^v)`, :math:`(n, d)`.
        text_embedding: :math:`f_T(\mathbf{x}^t)`, :math:`(n, d)`.
        image_label_logits: label classifier logits of the images, :math:`(n, C)`.
        text_label_logits: label classifier logits of the texts, :math:`(n, C)`.
        image_modality_logits: modality classifier logits of the images (behind gradient
            reversal), :math:`(n, 2)`.
        text_modality_logits: the same for the texts, :math:`(n, 2)`.
        projector_weights: the weight matrices of both projectors (for :math:`\mathcal{L}_{reg}`).
    """

    image_embedding: Tensor
    text_embedding: Tensor
    image_label_logits: Tensor
    text_label_logits: Tensor
    image_modality_logits: Tensor
    text_modality_logits: Tensor
    projector_weights: tuple[Tensor, ...]


def _widths(name: str, values: Sequence[int]) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidArgument(name, f"must be a list of positive integers, got {values!r}")
    return tuple(check_positive_int(name, v) for v in values)


@register_model("acmr")
class ACMRModel(nn.Module):
    r"""ACMR's feature projectors, label classifier and modality classifier.

    .. math::
        \mathbf{v} = f_V(\mathbf{x}^v), \quad \mathbf{t} = f_T(\mathbf{x}^t), \quad
        \mathbf{z}^v = \mathbf{W}_c \mathbf{v} + \mathbf{b}_c, \quad
        \mathbf{z}^t = \mathbf{W}_c \mathbf{t} + \mathbf{b}_c, \quad
        \mathbf{d}(\mathbf{v}) = D(R(\mathbf{v})), \quad \mathbf{d}(\mathbf{t}) = D(R(\mathbf{t}))

    :math:`f_V, f_T`: feed-forward networks with a tanh after every layer (the last included),
    :math:`d_v \to` ``image_hidden`` :math:`\to d` and :math:`d_t \to` ``text_hidden``
    :math:`\to d`; the label classifier is one linear layer shared by both modalities (softmax
    in the loss); :math:`D` is a stack of linear layers :math:`d \to` ``classifier_hidden``
    :math:`\to 2` behind the gradient reversal layer :math:`R`. Retrieval uses
    :math:`\mathbf{v}` and :math:`\mathbf{t}` (:meth:`embed_image`, :meth:`embed_text`).

    Args:
        image_dim (int): image feature size :math:`d_v`.
        text_dim (int): text feature size :math:`d_t`.
        num_labels (int): number of labels :math:`C`.
        common_dim (int, optional): :math:`d`. (default: :obj:`200`)
        image_hidden (Sequence[int], optional): hidden widths of :math:`f_V`.
            (default: :obj:`(2000,)`)
        text_hidden (Sequence[int], optional): hidden widths of :math:`f_T`.
            (default: :obj:`(500,)`)
        classifier_hidden (Sequence[int], optional): hidden widths of :math:`D`.
            (default: :obj:`(100, 50)`)
        grl_coefficient (float, optional): gradient reversal coefficient. (default: :obj:`1.0`)

    Shapes:
        - **image:** :math:`(n, d_v)`; **text:** :math:`(n, d_t)`
        - **output:** :class:`ACMROutput`
    """

    def __init__(
        self,
        image_dim: int,
        text_dim: int,
        num_labels: int,
        common_dim: int = COMMON_DIM,
        image_hidden: Sequence[int] = IMAGE_HIDDEN,
        text_hidden: Sequence[int] = TEXT_HIDDEN,
        classifier_hidden: Sequence[int] = CLASSIFIER_HIDDEN,
        grl_coefficient: float = GRL_COEFFICIENT,
    ) -> None:
        super().__init__()
        self.image_dim = check_positive_int("image_dim", image_dim)
        self.text_dim = check_positive_int("text_dim", text_dim)
        self.num_labels = check_positive_int("num_labels", num_labels)
        self.common_dim = check_positive_int("common_dim", common_dim)
        self.image_hidden = _widths("image_hidden", image_hidden)
        self.text_hidden = _widths("text_hidden", text_hidden)
        self.classifier_hidden = _widths("classifier_hidden", classifier_hidden)
        check_non_negative("grl_coefficient", grl_coefficient)

        self.image_projector = MLP([self.image_dim, *self.image_hidden, self.common_dim], act="tanh",
                                   norm=None, plain_last=False)
        self.text_projector = MLP([self.text_dim, *self.text_hidden, self.common_dim], act="tanh",
                                  norm=None, plain_last=False)
        self.label_classifier = nn.Linear(self.common_dim, self.num_labels)
        self.grl = GradientReversal(grl_coefficient)
        self.modality_classifier = MLP([self.common_dim, *self.classifier_hidden, 2], act=None, norm=None)

    def reset_parameters(self) -> None:
        for module in (self.image_projector, self.text_projector, self.label_classifier, self.modality_classifier):
            module.reset_parameters()

    @property
    def grl_coefficient(self) -> float:
        """Gradient reversal coefficient in front of the modality classifier (settable)."""
        return self.grl.coefficient

    @grl_coefficient.setter
    def grl_coefficient(self, value: float) -> None:
        self.grl.set_coefficient(check_non_negative("grl_coefficient", value))

    def _features(self, x: Tensor, expected: int, modality: str) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"{modality} features must be a 2-D (batch, features) tensor, got {shape}")
        if x.size(1) != expected:
            raise DataError(f"{modality} features have {x.size(1)} columns but the model expects "
                            f"{modality}_dim={expected}; build the model with the data's {modality} dimension")
        dtype = self.label_classifier.weight.dtype
        x = x.to(dtype) if x.dtype != dtype else x
        if values_readable(x) and not bool(torch.isfinite(x).all()):
            raise DataError(f"{modality} features contain NaN or infinite values; clean the data "
                            "(e.g. numpy.nan_to_num) before using it")
        return x

    def embed_image(self, image: Tensor) -> Tensor:
        r"""Common-space image embeddings :math:`\mathbf{v} = f_V(\mathbf{x}^v)`."""
        return self.image_projector(self._features(image, self.image_dim, "image"))

    def embed_text(self, text: Tensor) -> Tensor:
        r"""Common-space text embeddings :math:`\mathbf{t} = f_T(\mathbf{x}^t)`."""
        return self.text_projector(self._features(text, self.text_dim, "text"))

    def projector_weights(self) -> tuple[Tensor, ...]:
        r"""The weight matrices :math:`\mathbf{W}^l_v, \mathbf{W}^l_t` of both projectors."""
        return tuple(lin.weight for projector in (self.image_projector, self.text_projector)
                     for lin in projector.lins)

    def forward(self, image: Tensor, text: Tensor) -> ACMROutput:
        v = self.embed_image(image)
        t = self.embed_text(text)
        if v.size(0) != t.size(0):
            raise DataError(f"image batch has {v.size(0)} rows but text batch has {t.size(0)}; "
                            "image and text must be paired row by row")
        return ACMROutput(
            image_embedding=v,
            text_embedding=t,
            image_label_logits=self.label_classifier(v),
            text_label_logits=self.label_classifier(t),
            image_modality_logits=self.modality_classifier(self.grl(v)),
            text_modality_logits=self.modality_classifier(self.grl(t)),
            projector_weights=self.projector_weights(),
        )

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(image_dim={self.image_dim}, text_dim={self.text_dim}, "
                f"num_labels={self.num_labels}, common_dim={self.common_dim}, "
                f"image_hidden={list(self.image_hidden)}, text_hidden={list(self.text_hidden)})")


@register_objective("acmr")
class ACMRObjective(MethodObjective):
    r"""ACMR's training objective: the embedding loss plus the modality classifier's loss.

    .. math::
        \mathcal{L} = \alpha\,\mathcal{L}_{imi} + \beta\,\mathcal{L}_{imd}
            + w_{reg}\,\mathcal{L}_{reg} + \mathcal{L}_{adv}

    With the model's gradient reversal in front of the modality classifier, the projectors
    receive :math:`\nabla(\mathcal{L}_{emb} - \mathcal{L}_{adv})` and the classifier
    :math:`\nabla\mathcal{L}_{adv}` (eqs. 9-10); the label classifier is trained by
    :math:`\mathcal{L}_{imd}`. Parts logged per epoch: ``triplet`` (:math:`\mathcal{L}_{imi}`),
    ``label`` (:math:`\mathcal{L}_{imd}`), ``modality`` (:math:`\mathcal{L}_{adv}`),
    ``regularization`` (:math:`\mathcal{L}_{reg}`) and ``total``.

    Args:
        alpha (float, optional): :math:`\alpha \ge 0`. (default: :obj:`1.0`)
        beta (float, optional): :math:`\beta \ge 0`. (default: :obj:`100.0`)
        margin (float, optional): the triplet margin :math:`\mu \ge 0`. (default: :obj:`0.1`)
        negative_weight (float, optional): the triplet's :math:`\lambda \ge 0`, weight of the
            negative hinge. (default: :obj:`1.0`)
        reg_weight (float, optional): :math:`w_{reg} \ge 0` (1 in the paper's eq. 7).
            (default: :obj:`1.0`)
    """

    parts: ClassVar[tuple[str, ...]] = ("total", "triplet", "label", "modality", "regularization")

    def __init__(
        self,
        alpha: float = ALPHA,
        beta: float = BETA,
        margin: float = DEFAULT_MARGIN,
        negative_weight: float = DEFAULT_NEGATIVE_WEIGHT,
        reg_weight: float = REG_WEIGHT,
    ) -> None:
        super().__init__()
        self.alpha = check_non_negative("alpha", alpha)
        self.beta = check_non_negative("beta", beta)
        self.margin = check_non_negative("margin", margin)
        self.negative_weight = check_non_negative("negative_weight", negative_weight)
        self.reg_weight = check_non_negative("reg_weight", reg_weight)

    def forward(self, output: ACMROutput, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        triplet = cross_modal_triplet_loss(output.image_embedding, output.text_embedding, labels,
                                           margin=self.margin, negative_weight=self.negative_weight)
        label = label_prediction_loss(output.image_label_logits, output.text_label_logits, labels)
        modality = modality_classification_loss(output.image_modality_logits, output.text_modality_logits)
        regularization = frobenius_regularization(output.projector_weights)
        total = self.alpha * triplet + self.beta * label + self.reg_weight * regularization + modality
        parts = {"total": total, "triplet": triplet, "label": label, "modality": modality,
                 "regularization": regularization}
        return total, {name: value.detach() for name, value in parts.items()}

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, beta={self.beta}, margin={self.margin}, "
                f"negative_weight={self.negative_weight}, reg_weight={self.reg_weight}")


register_method(Method(
    name="acmr",
    paper="Wang, Yang, Xu, Hanjalic, Shen: Adversarial Cross-Modal Retrieval, ACM MM 2017",
    summary="tanh feature projectors trained with label prediction, cross-modal triplet constraints and a "
            "weight regulariser against a modality classifier behind gradient reversal; no label graph",
    preset={
        "model.name": "acmr",
        "model.common_dim": COMMON_DIM,
        "model.image_hidden": list(IMAGE_HIDDEN),
        "model.text_hidden": list(TEXT_HIDDEN),
        "model.classifier_hidden": list(CLASSIFIER_HIDDEN),
        "model.grl_coefficient": GRL_COEFFICIENT,
        "loss.name": "acmr",
        "loss.alpha": ALPHA,
        "loss.beta": BETA,
        "loss.margin": DEFAULT_MARGIN,
        "loss.negative_weight": DEFAULT_NEGATIVE_WEIGHT,
        "loss.reg_weight": REG_WEIGHT,
        "train.batch_size": BATCH_SIZE,
        "train.lr": LR,
        "train.betas": list(BETAS),
        "train.epochs": EPOCHS,
    },
    uses_label_graph=False,
    space={  # compare --tune: around the defaults above
        "train.lr": {"low": 1e-5, "high": 1e-3, "log": True},
        "train.epochs": {"low": EPOCHS // 4, "high": 2 * EPOCHS},
        "model.common_dim": [COMMON_DIM // 2, COMMON_DIM, 2 * COMMON_DIM],
        "loss.alpha": {"low": ALPHA / 4, "high": 4 * ALPHA, "log": True},
        "loss.beta": {"low": BETA / 10, "high": 10 * BETA, "log": True},
        "loss.margin": {"low": DEFAULT_MARGIN / 4, "high": 20 * DEFAULT_MARGIN, "log": True},
    },
))
