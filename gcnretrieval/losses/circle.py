"""Circle loss for multi-label batches (Sun et al., CVPR 2020)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.losses._checks import (
    check_choice,
    check_interval,
    check_labels,
    check_matrix,
    check_positive,
    require_field,
)
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.pair_kernels import (
    NORM_EPS,
    REDUCTIONS,
    PairwiseInputs,
    autocast_off,
    circle_from_similarity,
    label_overlap,
    pair_masks,
    symmetric_gram,
    upcast,
)
from gcnretrieval.losses.pairs import multilabel_pair_masks


def circle_loss(
    features: Tensor,
    labels: Tensor,
    m: float = 0.25,
    gamma: float = 16.0,
    reduction: str = "global",
    fused: bool = True,
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

    By default the value and its gradient come from one fused kernel,
    :func:`~gcnretrieval.losses.pair_kernels.circle_from_similarity`. ``fused=False`` is
    the reference path: the formula above op by op (masked log-sum-exps), differentiated
    by autograd; both give the same loss and gradient up to rounding.

    float16 and bfloat16 features are upcast to float32 and the loss is computed with
    autocast off (also under :func:`torch.autocast`): the loss is a float32 scalar and the
    gradient reaches ``features`` in their dtype. The fused kernel's backward pass runs in
    float32 even when called inside an autocast region; the reference path's backward is
    autograd's, whose products then run in the autocast dtype (call ``backward`` outside
    the region, as PyTorch recommends).

    Args:
        features: embeddings of one modality (any norm; rows are L2-normalised).
        labels: multi-hot 0/1 labels.
        m: relaxation margin in :math:`[0, 1)` (default ``0.25``).
        gamma: scale :math:`> 0` (default ``16.0``).
        reduction: ``"global"`` (default) or ``"per_anchor"``.
        fused: the fused kernel (default ``True``) or the op-by-op reference path.

    Shapes:
        - **input:** features :math:`(n, d)`, labels :math:`(n, C)`
        - **output:** scalar
    """
    m = check_interval("m", m, "[0, 1)")
    gamma = check_positive("gamma", gamma)
    check_choice("reduction", reduction, REDUCTIONS)
    check_matrix("features", features)
    check_labels(labels, features.size(0), "features")

    features = upcast(features)
    with autocast_off(features.device):
        unit = F.normalize(features, p=2.0, dim=1, eps=NORM_EPS)
        if fused:
            positive, negative = pair_masks(label_overlap(labels, labels, unit.dtype))
            return circle_from_similarity(symmetric_gram(unit), positive, negative, m, gamma, reduction)
        positive, negative = multilabel_pair_masks(labels, labels)
        return circle_op_by_op(unit @ unit.t(), positive, negative, m, gamma, reduction)


def circle_op_by_op(
    similarity: Tensor, positive: Tensor, negative: Tensor, m: float, gamma: float, reduction: str
) -> Tensor:
    r"""The reference path of :func:`circle_loss`: its formula op by op, differentiated by autograd.

    ``similarity`` is the :math:`n \times n` cosine matrix of one modality; ``positive``
    and ``negative`` are boolean (or 0/1) masks of the pairs sharing a label and sharing
    none. Their diagonals are ignored: the global reduction keeps the pairs :math:`i < j`,
    the per-anchor one the pairs :math:`j \ne i`.
    """
    similarity, positive, negative = upcast(similarity), positive.bool(), negative.bool()
    logits = _pair_logits(similarity, positive, m, gamma)

    n = similarity.size(0)
    if reduction == "global":
        keep = torch.ones(n, n, dtype=torch.bool, device=similarity.device).triu(diagonal=1)
        lse_p, has_p = _masked_logsumexp(logits.flatten(), (positive & keep).flatten(), dim=0)
        lse_n, has_n = _masked_logsumexp(logits.flatten(), (negative & keep).flatten(), dim=0)
        loss = _softplus(lse_p + lse_n)
        return torch.where(has_p & has_n, loss, torch.zeros_like(loss))

    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=similarity.device)
    lse_p, has_p = _masked_logsumexp(logits, positive & off_diagonal, dim=1)
    lse_n, has_n = _masked_logsumexp(logits, negative & off_diagonal, dim=1)
    valid = has_p & has_n
    per_anchor = torch.where(valid, _softplus(lse_p + lse_n), torch.zeros_like(lse_p))
    count = valid.sum().clamp(min=1).to(per_anchor.dtype)
    return per_anchor.sum() / count


def _pair_logits(similarity: Tensor, positive: Tensor, m: float, gamma: float) -> Tensor:
    """Every pair's exponent: the positive formula where ``positive``, else the negative one."""
    fixed = similarity.detach()  # sg(s): the weights alpha carry no gradient
    alpha_p = torch.relu(1.0 + m - fixed)
    alpha_n = torch.relu(fixed + m)
    pos_logit = -gamma * alpha_p * (similarity - (1.0 - m))
    neg_logit = gamma * alpha_n * (similarity - m)
    return torch.where(positive, pos_logit, neg_logit)


def _softplus(z: Tensor) -> Tensor:
    """:math:`\\log(1 + e^z)`, exact in every dtype: ``F.softplus`` returns ``z`` itself above
    ``z = 20``, an error of up to :math:`e^{-20} \\approx 2 \\cdot 10^{-9}`, visible in float64."""
    return torch.logaddexp(z, torch.zeros_like(z))


def _masked_logsumexp(values: Tensor, mask: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Log-sum-exp of ``values`` over the entries where ``mask`` is true.

    Returns ``(lse, nonempty)``. Slices without any kept entry give a finite placeholder
    (the log-sum-exp of zeros, never ``-inf``) and ``nonempty = False``: the caller masks
    them out with :func:`torch.where`, so no ``NaN`` reaches the gradient.
    """
    nonempty = mask.any(dim=dim)
    filled = values.masked_fill(~mask, float("-inf"))
    safe = torch.where(nonempty.unsqueeze(dim), filled, torch.zeros_like(values))
    return torch.logsumexp(safe, dim=dim), nonempty


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
        fused: the fused kernel (default ``True``) or the op-by-op reference path.
    """

    def __init__(self, m: float = 0.25, gamma: float = 16.0, reduction: str = "global", fused: bool = True) -> None:
        super().__init__()
        self.m = check_interval("m", m, "[0, 1)")
        self.gamma = check_positive("gamma", gamma)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.fused = bool(fused)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        if isinstance(output, Tensor):
            return self._one_modality(output, labels)
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        return self._one_modality(image, labels) + self._one_modality(text, labels)

    def _one_modality(self, features: Tensor, labels: Tensor) -> Tensor:
        return circle_loss(features, labels, self.m, self.gamma, self.reduction, self.fused)

    def from_similarities(self, pairs: PairwiseInputs) -> Tensor:
        """The same loss from the batch's shared similarity matrices (see :func:`cosine_similarities`)."""
        loss = circle_from_similarity if self.fused else circle_op_by_op
        with autocast_off(pairs.image_image.device):
            image = loss(pairs.image_image, pairs.positive, pairs.negative, self.m, self.gamma, self.reduction)
            text = loss(pairs.text_text, pairs.positive, pairs.negative, self.m, self.gamma, self.reduction)
        return image + text

    def extra_repr(self) -> str:
        return f"m={self.m}, gamma={self.gamma}, reduction={self.reduction!r}, fused={self.fused}"
