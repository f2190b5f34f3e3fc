r"""Label prediction loss of ACMR (intra-modal discrimination), multi-label form."""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.errors import DataError
from gcnretrieval.losses._checks import check_labels, check_matrix, require_field
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.pair_kernels import autocast_off, upcast


def label_prediction_loss(image_logits: Tensor, text_logits: Tensor, labels: Tensor) -> Tensor:
    r"""Label prediction loss :math:`\mathcal{L}_{imd}` of ACMR (Wang et al., ACM MM 2017, eq. 1).

    The paper's label classifier is a softmax over the classes of the common-space item, and
    its loss the cross-entropy with the one-hot label :math:`\mathbf{y}_i`:
    :math:`-\frac{1}{n}\sum_i \mathbf{y}_i \cdot (\log \hat{\mathbf{p}}(\mathbf{v}_i) +
    \log \hat{\mathbf{p}}(\mathbf{t}_i))`. On multi-label data the target is the label
    distribution :math:`\mathbf{q}_i = \mathbf{y}_i / \lVert \mathbf{y}_i \rVert_1` (the
    softmax cross-entropy with soft targets, which is the paper's loss wherever a row has
    exactly one label):

    .. math::
        \mathcal{L}_{imd} = -\frac{1}{n} \sum_{i=1}^{n} \sum_{c=1}^{C} q_{ic}
            \Big(\log \mathrm{softmax}(\mathbf{z}^v_i)_c + \log \mathrm{softmax}(\mathbf{z}^t_i)_c\Big),
        \qquad q_{ic} = \frac{y_{ic}}{\sum_{c'} y_{ic'}}

    with :math:`\mathbf{z}^v_i, \mathbf{z}^t_i` the label classifier's logits of the image and
    the text of pair :math:`i`. A row without labels has :math:`\mathbf{q}_i = \mathbf{0}` and
    adds nothing (it still counts in :math:`n`). Half-precision logits are upcast to float32
    and the loss runs with autocast off.

    Args:
        image_logits: label logits of the images, :math:`\mathbf{z}^v`.
        text_logits: label logits of the texts, :math:`\mathbf{z}^t`.
        labels: multi-hot 0/1 labels.

    Shapes:
        - **input:** three :math:`(n, C)` tensors
        - **output:** scalar
    """
    for name, logits in (("image label logits", image_logits), ("text label logits", text_logits)):
        check_matrix(name, logits)
        check_labels(labels, logits.size(0), name)
        if logits.shape != labels.shape:
            raise DataError(f"{name} have shape {tuple(logits.shape)} but labels {tuple(labels.shape)}; "
                            "give the label classifier one output per label")
    image_logits, text_logits = upcast(image_logits), upcast(text_logits)
    with autocast_off(image_logits.device):
        target = labels.to(image_logits.dtype)
        target = target / target.sum(dim=1, keepdim=True).clamp(min=1.0)
        return F.cross_entropy(image_logits, target) + F.cross_entropy(text_logits, target)


class LabelPredictionLoss(LossTerm):
    r"""ACMR's label prediction loss (:func:`label_prediction_loss`) on ``image_label_logits``
    and ``text_label_logits`` of the model output.

    .. math::
        \mathcal{L}_{imd} = \mathrm{CE}(\mathbf{z}^v, \mathbf{q}) + \mathrm{CE}(\mathbf{z}^t, \mathbf{q})
    """

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        return label_prediction_loss(require_field(output, "image_label_logits"),
                                     require_field(output, "text_label_logits"), labels)
