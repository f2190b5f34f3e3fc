r"""Cross-modal triplet constraints of ACMR (inter-modal invariance)."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gcnretrieval.losses._checks import check_embedding_pair, check_non_negative, require_field
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.pair_kernels import autocast_off, upcast
from gcnretrieval.losses.pairs import multilabel_pair_masks

#: Default margin :math:`\mu` of :func:`cross_modal_triplet_loss` (ACMR's public code: 0.1).
DEFAULT_MARGIN = 0.1
#: Default weight :math:`\lambda` of the negative hinge of :func:`cross_modal_triplet_loss`.
DEFAULT_NEGATIVE_WEIGHT = 1.0


def cross_modal_triplet_loss(
    image: Tensor,
    text: Tensor,
    labels: Tensor,
    margin: float = DEFAULT_MARGIN,
    negative_weight: float = DEFAULT_NEGATIVE_WEIGHT,
) -> Tensor:
    r"""Inter-modal invariance loss of ACMR (Wang et al., ACM MM 2017, eqs. 2-5).

    With :math:`\ell_2(\mathbf{v}, \mathbf{t}) = \lVert \mathbf{v} - \mathbf{t} \rVert_2` in the
    common space, the image-anchored and text-anchored triplet terms are

    .. math::
        \mathcal{L}_{imi,V} &= \frac{1}{|\mathcal{T}|} \sum_{(i,j,k) \in \mathcal{T}}
            \Big(\ell_2(\mathbf{v}_i, \mathbf{t}_j) + \lambda \max\big(0,\ \mu - \ell_2(\mathbf{v}_i, \mathbf{t}_k)\big)\Big)

        \mathcal{L}_{imi,T} &= \frac{1}{|\mathcal{T}|} \sum_{(i,j,k) \in \mathcal{T}}
            \Big(\ell_2(\mathbf{t}_i, \mathbf{v}_j) + \lambda \max\big(0,\ \mu - \ell_2(\mathbf{t}_i, \mathbf{v}_k)\big)\Big)

        \mathcal{L}_{imi} &= \mathcal{L}_{imi,V} + \mathcal{L}_{imi,T}

    over the triplets of the batch
    :math:`\mathcal{T} = \{(i, j, k) : \mathbf{y}_i^\top \mathbf{y}_j > 0,\ \mathbf{y}_i^\top \mathbf{y}_k = 0\}`:
    anchor :math:`i` in one modality, a positive :math:`j` and a negative :math:`k` in the
    other. The paper is single-label ("same label" / "different label"); on multi-label data a
    pair is positive when it shares at least one label and negative when it shares none
    (:func:`~gcnretrieval.losses.multilabel_pair_masks`); :math:`j = i` (the paired item) is a
    positive of a labelled anchor. Image and text rows share their labels, so both directions
    have the same triplet set. The paper sums over the triplets; the mean used here only
    rescales the term (and keeps :math:`\alpha` independent of the batch size). A batch without
    any triplet gives 0.

    The sum over triplets factorises per anchor, so it is computed from the :math:`(n, n)`
    distance matrix without listing the triplets: with :math:`P_i` positives and :math:`N_i`
    negatives of anchor :math:`i`, anchor :math:`i` contributes
    :math:`N_i \sum_{j \in P_i} \ell_2 + \lambda P_i \sum_{k \in N_i} \max(0, \mu - \ell_2)`.
    Distances are computed from the differences, so identical embeddings are at distance exactly
    0, where the gradient of :math:`\ell_2` is taken as 0. Half-precision embeddings
    are upcast to float32 and the loss runs with autocast off.

    Args:
        image: common-space image embeddings :math:`\mathbf{v}`.
        text: common-space text embeddings :math:`\mathbf{t}`, paired row by row.
        labels: multi-hot 0/1 labels, one row per pair.
        margin: :math:`\mu \ge 0`. (default: :obj:`0.1`)
        negative_weight: :math:`\lambda \ge 0`. (default: :obj:`1.0`)

    Shapes:
        - **input:** :math:`(n, d)`, :math:`(n, d)`, :math:`(n, C)`
        - **output:** scalar
    """
    margin = check_non_negative("margin", margin)
    negative_weight = check_non_negative("negative_weight", negative_weight)
    check_embedding_pair(image, text, labels)
    image, text = upcast(image), upcast(text)
    with autocast_off(image.device):
        return _triplet_loss(image, text, labels, margin, negative_weight)


def _triplet_loss(image: Tensor, text: Tensor, labels: Tensor, margin: float, negative_weight: float) -> Tensor:
    positive, negative = multilabel_pair_masks(labels, labels)
    positive = positive.to(image.dtype)
    negative = negative.to(image.dtype)
    num_positive = positive.sum(dim=1)
    num_negative = negative.sum(dim=1)
    num_triplets = (num_positive * num_negative).sum()

    # distance[i, j] = ||v_i - t_j||, from the differences (not from ||v||^2 + ||t||^2 - 2 v.t, whose
    # cancellation would turn a zero distance into a small random one, with a unit-norm gradient)
    distance = torch.cdist(image, text, compute_mode="donot_use_mm_for_euclid_dist")
    image_anchored = _anchor_sums(distance, positive, negative, num_positive, num_negative, margin,
                                  negative_weight)
    text_anchored = _anchor_sums(distance.t(), positive, negative, num_positive, num_negative, margin,
                                 negative_weight)
    return (image_anchored + text_anchored) / num_triplets.clamp(min=1.0)


def _anchor_sums(distance: Tensor, positive: Tensor, negative: Tensor, num_positive: Tensor,
                 num_negative: Tensor, margin: float, negative_weight: float) -> Tensor:
    """Sum over all triplets with anchors on the rows of ``distance``."""
    pull = (distance * positive).sum(dim=1)
    push = ((margin - distance).clamp(min=0.0) * negative).sum(dim=1)
    return (num_negative * pull).sum() + negative_weight * (num_positive * push).sum()


class CrossModalTripletLoss(LossTerm):
    r"""ACMR's inter-modal invariance loss (:func:`cross_modal_triplet_loss`) on
    ``image_embedding`` and ``text_embedding`` of the model output.

    .. math::
        \mathcal{L}_{imi} = \mathcal{L}_{imi,V} + \mathcal{L}_{imi,T}

    Args:
        margin: :math:`\mu \ge 0`. (default: :obj:`0.1`)
        negative_weight: :math:`\lambda \ge 0`. (default: :obj:`1.0`)
    """

    def __init__(self, margin: float = DEFAULT_MARGIN, negative_weight: float = DEFAULT_NEGATIVE_WEIGHT) -> None:
        super().__init__()
        self.margin = check_non_negative("margin", margin)
        self.negative_weight = check_non_negative("negative_weight", negative_weight)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        return cross_modal_triplet_loss(require_field(output, "image_embedding"),
                                        require_field(output, "text_embedding"), labels,
                                        margin=self.margin, negative_weight=self.negative_weight)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, negative_weight={self.negative_weight}"
