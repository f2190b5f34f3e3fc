"""DSCMR's modality-invariance loss (Zhen et al., CVPR 2019, eq. 4)."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from gcnretrieval.losses._checks import check_choice, check_embedding_pair, require_field
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.norms import NormKind, scaled_norm
from gcnretrieval.losses.pair_kernels import autocast_off, upcast


def modality_invariance_loss(image: Tensor, text: Tensor, labels: Tensor, norm: NormKind = "frobenius") -> Tensor:
    r"""Modality-invariance loss (DSCMR, eq. 4): the distance between the common
    representations of the image and the text of each pair.

    .. math::
        \mathcal{J}_3 = \frac{1}{n}\lVert \mathbf{U} - \mathbf{V} \rVert_F

    ``norm="rows"`` is the authors' public code instead, the mean of the per-pair Euclidean
    distances :math:`\frac{1}{n}\sum_i \lVert \mathbf{u}_i - \mathbf{v}_i \rVert_2`. Where the
    distance is exactly zero the gradient is zero, never ``NaN``. float16 and bfloat16
    representations are computed in float32 (autocast off).

    Args:
        image: image representations :math:`\mathbf{u}_i` in the common space.
        text: text representations :math:`\mathbf{v}_i` of the same pairs.
        labels: multi-hot 0/1 labels (checked for their row count only; the term uses none).
        norm (str, optional): ``"frobenius"`` (the paper) or ``"rows"`` (the public code).
            (default: :obj:`"frobenius"`)

    Shapes:
        - **input:** image and text :math:`(n, d)`, labels :math:`(n, C)`
        - **output:** scalar
    """
    check_choice("norm", norm, NormKind)
    check_embedding_pair(image, text, labels)
    image, text = upcast(image), upcast(text)
    with autocast_off(image.device):
        return scaled_norm(image - text, norm)


class ModalityInvarianceLoss(LossTerm):
    r"""DSCMR's modality-invariance loss (:func:`modality_invariance_loss`) on the
    ``image_embedding`` and ``text_embedding`` of the model output.

    .. math::
        \mathcal{J}_3 = \frac{1}{n}\lVert \mathbf{U} - \mathbf{V} \rVert_F

    Args:
        norm (str, optional): ``"frobenius"`` or ``"rows"``. (default: :obj:`"frobenius"`)
    """

    def __init__(self, norm: NormKind = "frobenius") -> None:
        super().__init__()
        self.norm = check_choice("norm", norm, NormKind)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        return modality_invariance_loss(image, text, labels, self.norm)

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}"
