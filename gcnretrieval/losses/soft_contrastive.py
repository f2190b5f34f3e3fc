"""Soft (label-weighted) contrastive loss of I-GNN."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from gcnretrieval.losses._checks import (
    check_embedding_pair,
    check_non_negative,
    check_positive,
    require_field,
)
from gcnretrieval.losses.base import LossTerm, register_loss
from gcnretrieval.losses.pair_kernels import PairwiseInputs, cosine_similarities, soft_contrastive_from_similarity

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
    exception, and the I-GNN loss it follows normalises over the whole row. The value and
    its gradient come from one fused kernel,
    :func:`~gcnretrieval.losses.pair_kernels.soft_contrastive_from_similarity`.

    Args:
        img: image embeddings.
        txt: text embeddings (same width as ``img``).
        labels: multi-hot 0/1 labels shared by the aligned pairs.
        temperature: :math:`\tau > 0` (default ``0.22``).
        intra_weight: :math:`\gamma_s \ge 0` (default ``0.14``).

    Shapes:
        - **input:** img :math:`(n, d)`, txt :math:`(n, d)`, labels :math:`(n, C)`
        - **output:** scalar
    """
    temperature = check_positive("temperature", temperature)
    intra_weight = check_non_negative("intra_weight", intra_weight)
    check_embedding_pair(img, txt, labels)

    pairs = cosine_similarities(img, txt, labels)
    return soft_contrastive_from_similarity(
        pairs.image_text, pairs.image_image, pairs.text_text, pairs.overlap, temperature, intra_weight, KAPPA
    )


@register_loss("soft_contrastive")
class SoftContrastiveLoss(LossTerm):
    r"""Soft contrastive loss (:func:`soft_contrastive_loss`) on the model's embeddings.

    Uses ``image_embedding`` and ``text_embedding`` of the model output.

    Args:
        temperature: :math:`\tau > 0` (default ``0.22``; 0.20 for MS-COCO).
        intra_weight: :math:`\gamma_s \ge 0` (default ``0.14``).
    """

    def __init__(self, temperature: float = 0.22, intra_weight: float = 0.14) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.intra_weight = check_non_negative("intra_weight", intra_weight)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        return soft_contrastive_loss(image, text, labels, self.temperature, self.intra_weight)

    def from_similarities(self, pairs: PairwiseInputs) -> Tensor:
        """The same loss from the batch's shared similarity matrices (see :func:`cosine_similarities`)."""
        return soft_contrastive_from_similarity(
            pairs.image_text, pairs.image_image, pairs.text_text, pairs.overlap,
            self.temperature, self.intra_weight, KAPPA,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, intra_weight={self.intra_weight}"
