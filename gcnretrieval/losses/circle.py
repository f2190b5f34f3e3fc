"""Circle loss for multi-label batches (Sun et al., CVPR 2020)."""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.losses._checks import (
    check_choice,
    check_labels,
    check_matrix,
    check_positive,
    check_unit_interval,
    require_field,
)
from gcnretrieval.losses.base import LossTerm, register_loss
from gcnretrieval.losses.pair_kernels import (
    NORM_EPS,
    REDUCTIONS,
    PairwiseInputs,
    circle_from_similarity,
    label_overlap,
    pair_masks,
    symmetric_gram,
)


def circle_loss(
    features: Tensor,
    labels: Tensor,
    m: float = 0.25,
    gamma: float = 16.0,
    reduction: str = "global",
) -> Tensor:
    r"""Circle loss within one modality, with multi-label pairs.

    With :math:`s_{ij}` the cosine similarity of rows :math:`i, j`, positives
    :math:`\mathcal{P}` (pairs sharing a label) and negatives :math:`\mathcal{N}`
    (pairs sharing none):

    .. math::
        \alpha_p = [1 + m - \mathrm{sg}(s_p)]_+, \quad \alpha_n = [s_n + m]_+, \quad
        \Delta_p = 1 - m, \quad \Delta_n = m

        \mathcal{L} = \operatorname{softplus}\Big(
            \log\sum_{\mathcal{N}} e^{\gamma \alpha_n (s_n - \Delta_n)}
          + \log\sum_{\mathcal{P}} e^{-\gamma \alpha_p (s_p - \Delta_p)} \Big)

    ``reduction="global"`` takes one term over all pairs :math:`i < j` of the batch.
    ``reduction="per_anchor"`` computes the term for each anchor :math:`i` over its own
    pairs :math:`(i, j), j \ne i`, and averages over the anchors that have at least one
    positive and one negative (pytorch-metric-learning's ``CircleLoss`` with all pairs).
    Without a positive or a negative pair the loss is :math:`0`, still attached to the
    graph (its gradient is zero). Log-sum-exps are masked with :math:`-\infty` only where a
    slice has entries, so nothing overflows or turns into ``NaN``, even at
    :math:`\gamma = 256`. The value and its gradient come from one fused kernel,
    :func:`~gcnretrieval.losses.pair_kernels.circle_from_similarity`.

    Args:
        features: embeddings of one modality (any norm; rows are L2-normalised).
        labels: multi-hot 0/1 labels.
        m: relaxation margin in :math:`[0, 1)` (default ``0.25``).
        gamma: scale :math:`> 0` (default ``16.0``).
        reduction: ``"global"`` (default) or ``"per_anchor"``.

    Shapes:
        - **input:** features :math:`(n, d)`, labels :math:`(n, C)`
        - **output:** scalar
    """
    m = check_unit_interval("m", m, closed_right=False)
    gamma = check_positive("gamma", gamma)
    check_choice("reduction", reduction, REDUCTIONS)
    check_matrix("features", features)
    check_labels(labels, features.size(0), "features")

    unit = F.normalize(features, p=2.0, dim=1, eps=NORM_EPS)
    positive, negative = pair_masks(label_overlap(labels, labels, unit.dtype))
    return circle_from_similarity(symmetric_gram(unit), positive, negative, m, gamma, reduction)


@register_loss("circle")
class CircleLoss(LossTerm):
    r"""Circle loss (:func:`circle_loss`), summed over the image and text modalities.

    .. math::
        \mathcal{L}_{cir} = \mathcal{L}(\mathbf{v}, Y) + \mathcal{L}(\mathbf{t}, Y)

    Called with a model output it uses ``image_embedding`` and ``text_embedding``; called
    with a single ``(n, d)`` tensor it returns the loss of that one modality.

    Args:
        m: relaxation margin in :math:`[0, 1)` (default ``0.25``).
        gamma: scale :math:`> 0` (default ``16.0``).
        reduction: ``"global"`` (default) or ``"per_anchor"``.
    """

    def __init__(self, m: float = 0.25, gamma: float = 16.0, reduction: str = "global") -> None:
        super().__init__()
        self.m = check_unit_interval("m", m, closed_right=False)
        self.gamma = check_positive("gamma", gamma)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        if isinstance(output, Tensor):
            return circle_loss(output, labels, self.m, self.gamma, self.reduction)
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        return circle_loss(image, labels, self.m, self.gamma, self.reduction) + circle_loss(
            text, labels, self.m, self.gamma, self.reduction
        )

    def from_similarities(self, pairs: PairwiseInputs) -> Tensor:
        """The same loss from the batch's shared similarity matrices (see :func:`cosine_similarities`)."""
        image = circle_from_similarity(
            pairs.image_image, pairs.positive, pairs.negative, self.m, self.gamma, self.reduction
        )
        text = circle_from_similarity(pairs.text_text, pairs.positive, pairs.negative, self.m, self.gamma, self.reduction)
        return image + text

    def extra_repr(self) -> str:
        return f"m={self.m}, gamma={self.gamma}, reduction={self.reduction!r}"
