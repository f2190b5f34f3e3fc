"""DSCMR's discrimination loss in the label space (Zhen et al., CVPR 2019, eq. 1)."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from gcnretrieval.errors import DataError
from gcnretrieval.losses._checks import check_choice, check_labels, check_matrix, require_field
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.classification import classification_loss
from gcnretrieval.losses.norms import NormKind, scaled_norm
from gcnretrieval.losses.pair_kernels import autocast_off, upcast


def label_space_loss(image_scores: Tensor, text_scores: Tensor, labels: Tensor,
                     norm: NormKind = "frobenius") -> Tensor:
    r"""Discrimination loss in the label space (DSCMR, eq. 1): the distance of a linear
    classifier's predictions :math:`\mathbf{P}^\top\mathbf{u}_i`, :math:`\mathbf{P}^\top\mathbf{v}_i`
    (one classifier shared by both modalities) from the label vectors.

    .. math::
        \mathcal{J}_1 = \frac{1}{n}\lVert \mathbf{P}^\top\mathbf{U} - \mathbf{Y} \rVert_F
                      + \frac{1}{n}\lVert \mathbf{P}^\top\mathbf{V} - \mathbf{Y} \rVert_F

    ``norm="rows"`` is the authors' public code instead, the mean of the per-sample Euclidean
    norms :math:`\frac{1}{n}\sum_i \lVert \mathbf{P}^\top\mathbf{u}_i - \mathbf{y}_i \rVert_2 + \ldots`,
    which is :func:`~gcnretrieval.losses.classification_loss`. float16 and bfloat16 scores are
    computed in float32 (autocast off).

    Args:
        image_scores: label predictions of the images, :math:`\mathbf{P}^\top\mathbf{u}_i` as rows.
        text_scores: label predictions of the texts.
        labels: multi-hot 0/1 labels.
        norm (str, optional): ``"frobenius"`` (the paper) or ``"rows"`` (the public code).
            (default: :obj:`"frobenius"`)

    Shapes:
        - **input:** three :math:`(n, C)` tensors
        - **output:** scalar
    """
    check_choice("norm", norm, NormKind)
    if norm == "rows":
        image_scores, text_scores = upcast(image_scores), upcast(text_scores)
        with autocast_off(image_scores.device):
            return classification_loss(image_scores, text_scores, labels)
    for name, scores in (("image label scores", image_scores), ("text label scores", text_scores)):
        check_matrix(name, scores)
        check_labels(labels, scores.size(0), name)
        if scores.shape != labels.shape:
            raise DataError(f"{name} have shape {tuple(scores.shape)} but labels {tuple(labels.shape)}; "
                            "score one column per label")
    image_scores, text_scores = upcast(image_scores), upcast(text_scores)
    with autocast_off(image_scores.device):
        y = labels.to(image_scores.dtype)
        return scaled_norm(image_scores - y) + scaled_norm(text_scores - y.to(text_scores.dtype))


class LabelSpaceLoss(LossTerm):
    r"""DSCMR's label-space discrimination loss (:func:`label_space_loss`) on the
    ``image_label_scores`` and ``text_label_scores`` of the model output.

    .. math::
        \mathcal{J}_1 = \frac{1}{n}\lVert \mathbf{P}^\top\mathbf{U} - \mathbf{Y} \rVert_F
                      + \frac{1}{n}\lVert \mathbf{P}^\top\mathbf{V} - \mathbf{Y} \rVert_F

    Args:
        norm (str, optional): ``"frobenius"`` or ``"rows"``. (default: :obj:`"frobenius"`)
    """

    def __init__(self, norm: NormKind = "frobenius") -> None:
        super().__init__()
        self.norm = check_choice("norm", norm, NormKind)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        image = require_field(output, "image_label_scores")
        text = require_field(output, "text_label_scores")
        return label_space_loss(image, text, labels, self.norm)

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}"
