"""Soft (label-weighted) contrastive loss of I-GNN."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.losses._checks import (
    check_embedding_pair,
    check_non_negative,
    check_positive,
    require_field,
)
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.pair_kernels import (
    NORM_EPS,
    PairwiseInputs,
    autocast_off,
    cosine_similarities,
    soft_contrastive_from_similarity,
    upcast,
)

#: Scale applied to the similarities inside the log-partition term,
#: :math:`\ell_{ij} = S_{ij} - \log\sum_k e^{\kappa S_{ik}}`. This is the published
#: constant of the I-GNN soft contrastive loss (Qian et al., TPAMI 2022), kept as is.
KAPPA = 1.06


def soft_contrastive_loss(
    img: Tensor,
    txt: Tensor,
    labels: Tensor,
    temperature: float = 0.22,
    intra_weight: float = 0.14,
    fused: bool = True,
) -> Tensor:
    r"""Soft contrastive loss over inter- and intra-modal pairs.

    Rows are L2-normalised (:math:`\hat{\mathbf{v}}, \hat{\mathbf{t}}`) and

    .. math::
        S^{vt} = \hat{V}\hat{T}^\top / \tau, \quad S^{tv} = (S^{vt})^\top, \quad
        S^{vv} = \hat{V}\hat{V}^\top / \tau, \quad S^{tt} = \hat{T}\hat{T}^\top / \tau

        \bar{Y} = \min(1, Y Y^\top), \quad
        p^{inter} = \mathrm{rownorm}(\bar{Y}), \quad
        p^{intra} = \mathrm{rownorm}([\bar{Y} - I]_+)

        \ell_{ij} = S_{ij} - \log\sum_k e^{\kappa S_{ik}}, \quad
        m_i = \sum_j p_{ij}\,\ell_{ij}

        \mathcal{L}_{soft} = -\overline{m^{vt}} - \overline{m^{tv}}
            - \gamma_s\big(\overline{m^{vv}} + \overline{m^{tt}}\big)

    with :math:`\kappa` = :data:`KAPPA` and bars denoting the mean over all :math:`n`
    rows. The inter-modal targets keep the self-pair (the matching item of the other
    modality); the intra-modal targets drop it, and a row without any other positive keeps
    a zero target, so it adds :math:`0` to the mean. The log-partition runs over every
    :math:`k`, the self-pair included, in all four blocks: METHOD §4 writes the sum without
    exception, and the I-GNN loss it follows normalises over the whole row.

    By default the value and its gradient come from one fused kernel,
    :func:`~gcnretrieval.losses.pair_kernels.soft_contrastive_from_similarity`.
    ``fused=False`` is the reference path: the formulas above op by op, differentiated by
    autograd; both give the same loss and gradient up to rounding.

    float16 and bfloat16 embeddings are upcast to float32 and the loss is computed with
    autocast off (also under :func:`torch.autocast`): the loss is a float32 scalar and the
    gradients reach ``img`` and ``txt`` in their dtype. The fused kernel's backward pass
    runs in float32 even when called inside an autocast region; the reference path's
    backward is autograd's, whose products then run in the autocast dtype (call
    ``backward`` outside the region, as PyTorch recommends).

    Args:
        img: image embeddings.
        txt: text embeddings (same width as ``img``).
        labels: multi-hot 0/1 labels shared by the aligned pairs.
        temperature: :math:`\tau > 0` (default ``0.22``).
        intra_weight: :math:`\gamma_s \ge 0` (default ``0.14``).
        fused: the fused kernel (default ``True``) or the op-by-op reference path.

    Shapes:
        - **input:** img :math:`(n, d)`, txt :math:`(n, d)`, labels :math:`(n, C)`
        - **output:** scalar
    """
    temperature = check_positive("temperature", temperature)
    intra_weight = check_non_negative("intra_weight", intra_weight)
    check_embedding_pair(img, txt, labels)

    if fused:
        pairs = cosine_similarities(img, txt, labels)
        return soft_contrastive_from_similarity(
            pairs.image_text, pairs.image_image, pairs.text_text, pairs.overlap, temperature, intra_weight, KAPPA
        )
    img, txt = upcast(img), upcast(txt)
    with autocast_off(img.device):
        v = F.normalize(img, p=2.0, dim=1, eps=NORM_EPS)
        t = F.normalize(txt, p=2.0, dim=1, eps=NORM_EPS)
        y = labels.to(v.dtype)
        y_bar = (y @ y.t()).clamp(max=1.0)
        return soft_contrastive_op_by_op(v @ t.t(), v @ v.t(), t @ t.t(), y_bar, temperature, intra_weight)


def soft_contrastive_op_by_op(
    image_text: Tensor,
    image_image: Tensor,
    text_text: Tensor,
    overlap: Tensor,
    temperature: float,
    intra_weight: float,
) -> Tensor:
    r"""The reference path of :func:`soft_contrastive_loss`: its formulas op by op,
    differentiated by autograd.

    Takes the cosine matrices :math:`\hat{V}\hat{T}^\top`, :math:`\hat{V}\hat{V}^\top`,
    :math:`\hat{T}\hat{T}^\top` and :math:`\bar{Y} = \min(1, YY^\top)` (``overlap``).
    """
    image_text, image_image, text_text = upcast(image_text), upcast(image_image), upcast(text_text)
    s_vt = image_text / temperature
    s_vv = image_image / temperature
    s_tt = text_text / temperature

    y_bar = overlap.to(s_vt.dtype)
    eye = torch.eye(y_bar.size(0), dtype=y_bar.dtype, device=y_bar.device)
    p_inter = _row_normalise(y_bar)
    p_intra = _row_normalise((y_bar - eye).clamp(min=0.0))

    inter = _mean_log_likelihood(s_vt, p_inter) + _mean_log_likelihood(s_vt.t(), p_inter)
    intra = _mean_log_likelihood(s_vv, p_intra) + _mean_log_likelihood(s_tt, p_intra)
    return -inter - intra_weight * intra


def _row_normalise(weights: Tensor) -> Tensor:
    """Divide each row by its sum; all-zero rows stay zero (entries are 0/1, sums >= 1)."""
    return weights / weights.sum(dim=1, keepdim=True).clamp(min=1.0)


def _mean_log_likelihood(sim: Tensor, target: Tensor) -> Tensor:
    """Mean over rows of ``m_i = sum_j p_ij (S_ij - logsumexp_k(kappa * S_ik))``."""
    log_partition = torch.logsumexp(KAPPA * sim, dim=1, keepdim=True)
    return (target * (sim - log_partition)).sum(dim=1).mean()


class SoftContrastiveLoss(LossTerm):
    r"""Soft contrastive loss (:func:`soft_contrastive_loss`) on the model's embeddings.

    Uses ``image_embedding`` and ``text_embedding`` of the model output.

    Args:
        temperature: :math:`\tau > 0` (default ``0.22``; 0.20 for MS-COCO).
        intra_weight: :math:`\gamma_s \ge 0` (default ``0.14``).
        fused: the fused kernel (default ``True``) or the op-by-op reference path.
    """

    def __init__(self, temperature: float = 0.22, intra_weight: float = 0.14, fused: bool = True) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.intra_weight = check_non_negative("intra_weight", intra_weight)
        self.fused = bool(fused)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        return soft_contrastive_loss(image, text, labels, self.temperature, self.intra_weight, self.fused)

    def from_similarities(self, pairs: PairwiseInputs) -> Tensor:
        """The same loss from the batch's shared similarity matrices (see :func:`cosine_similarities`)."""
        if self.fused:
            return soft_contrastive_from_similarity(
                pairs.image_text, pairs.image_image, pairs.text_text, pairs.overlap,
                self.temperature, self.intra_weight, KAPPA,
            )
        with autocast_off(pairs.image_text.device):
            return soft_contrastive_op_by_op(
                pairs.image_text, pairs.image_image, pairs.text_text, pairs.overlap, self.temperature, self.intra_weight
            )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, intra_weight={self.intra_weight}, fused={self.fused}"
