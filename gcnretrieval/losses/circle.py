"""Circle loss for multi-label batches (Sun et al., CVPR 2020)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.losses._checks import (
    check_choice,
    check_labels,
    check_matrix,
    check_positive,
    check_unit_interval,
    masked_logsumexp,
    require_field,
)
from gcnretrieval.losses.base import LossTerm, register_loss
from gcnretrieval.losses.pairs import multilabel_pair_masks

REDUCTIONS = ("global", "per_anchor")
NORM_EPS = 1e-12  # guards the L2 normalisation of all-zero rows


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
    :math:`\gamma = 256`.

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
    m = check_unit_interval("circle margin m", m, closed_right=False)
    gamma = check_positive("circle gamma", gamma)
    check_choice("circle reduction", reduction, REDUCTIONS)
    check_matrix("features", features)
    check_labels(labels, features.size(0), "features")

    unit = F.normalize(features, p=2.0, dim=1, eps=NORM_EPS)
    sim = unit @ unit.t()
    positive, negative = multilabel_pair_masks(labels, labels)
    logits = _pair_logits(sim, positive, m, gamma)

    n = sim.size(0)
    if reduction == "global":
        keep = torch.ones(n, n, dtype=torch.bool, device=sim.device).triu(diagonal=1)
        pos_mask, neg_mask = (positive & keep).flatten(), (negative & keep).flatten()
        lse_p, has_p = masked_logsumexp(logits.flatten(), pos_mask, dim=0)
        lse_n, has_n = masked_logsumexp(logits.flatten(), neg_mask, dim=0)
        loss = F.softplus(lse_p + lse_n)
        return torch.where(has_p & has_n, loss, torch.zeros_like(loss))

    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=sim.device)
    lse_p, has_p = masked_logsumexp(logits, positive & off_diagonal, dim=1)
    lse_n, has_n = masked_logsumexp(logits, negative & off_diagonal, dim=1)
    valid = has_p & has_n
    per_anchor = torch.where(valid, F.softplus(lse_p + lse_n), torch.zeros_like(lse_p))
    count = valid.sum().clamp(min=1).to(per_anchor.dtype)
    return per_anchor.sum() / count


def _pair_logits(sim: Tensor, positive: Tensor, m: float, gamma: float) -> Tensor:
    """Every pair's exponent: the positive formula where ``positive``, else the negative one."""
    fixed = sim.detach()  # sg(s): the weights alpha carry no gradient
    alpha_p = torch.relu(1.0 + m - fixed)
    alpha_n = torch.relu(fixed + m)
    pos_logit = -gamma * alpha_p * (sim - (1.0 - m))
    neg_logit = gamma * alpha_n * (sim - m)
    return torch.where(positive, pos_logit, neg_logit)


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
        self.m = check_unit_interval("circle margin m", m, closed_right=False)
        self.gamma = check_positive("circle gamma", gamma)
        self.reduction = check_choice("circle reduction", reduction, REDUCTIONS)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        if isinstance(output, Tensor):
            return circle_loss(output, labels, self.m, self.gamma, self.reduction)
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        return circle_loss(image, labels, self.m, self.gamma, self.reduction) + circle_loss(
            text, labels, self.m, self.gamma, self.reduction
        )

    def extra_repr(self) -> str:
        return f"m={self.m}, gamma={self.gamma}, reduction={self.reduction!r}"
