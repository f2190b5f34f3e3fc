"""Label-prediction loss: Euclidean distance between predicted and true label vectors."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gcnretrieval.errors import DataError
from gcnretrieval.losses._checks import check_labels, check_matrix, require_field
from gcnretrieval.losses.base import LossTerm


def classification_loss(image_scores: Tensor, text_scores: Tensor, labels: Tensor) -> Tensor:
    r"""Classification loss (eq. 24).

    .. math::
        \mathcal{L}_{cla} = \frac{1}{n}\sum_i \lVert \hat{\mathbf{y}}^v_i - \mathbf{y}_i \rVert_2
                          + \frac{1}{n}\sum_i \lVert \hat{\mathbf{y}}^t_i - \mathbf{y}_i \rVert_2

    The per-sample Euclidean norm is not squared. Where a row's error is exactly zero the
    gradient is taken as zero (the norm's subgradient), never ``NaN``.

    Args:
        image_scores: predicted label scores of the images, :math:`\cos(\mathbf{v}_i, \mathbf{c}_j)`.
        text_scores: predicted label scores of the texts.
        labels: multi-hot 0/1 labels.

    Shapes:
        - **input:** three :math:`(n, C)` tensors
        - **output:** scalar
    """
    for name, scores in (("image label scores", image_scores), ("text label scores", text_scores)):
        check_matrix(name, scores)
        check_labels(labels, scores.size(0), name)
        if scores.shape != labels.shape:
            raise DataError(
                f"{name} have shape {tuple(scores.shape)} but labels {tuple(labels.shape)}; "
                "score one column per label"
            )
    return _mean_row_norm(image_scores, labels) + _mean_row_norm(text_scores, labels)


def _mean_row_norm(scores: Tensor, labels: Tensor) -> Tensor:
    diff = scores - labels.to(scores.dtype)
    squared = (diff * diff).sum(dim=1)
    nonzero = squared > 0
    # sqrt has an infinite derivative at 0: zero rows take the square root of 1 instead,
    # and torch.where then replaces that value (and its gradient) by 0
    safe = torch.where(nonzero, squared, torch.ones_like(squared))
    norms = torch.where(nonzero, safe.sqrt(), torch.zeros_like(squared))
    return norms.mean()


class ClassificationLoss(LossTerm):
    r"""Classification loss (:func:`classification_loss`) on ``image_label_scores`` and
    ``text_label_scores`` of the model output.

    .. math::
        \mathcal{L}_{cla} = \overline{\lVert \hat{Y}^v - Y \rVert_2} + \overline{\lVert \hat{Y}^t - Y \rVert_2}
    """

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        image = require_field(output, "image_label_scores")
        text = require_field(output, "text_label_scores")
        return classification_loss(image, text, labels)
