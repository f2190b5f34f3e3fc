r"""Modality classification loss of ACMR (the adversary of the feature projectors)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.errors import DataError
from gcnretrieval.losses._checks import require_field
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.pair_kernels import autocast_off, upcast

#: Class index of the image modality (the text modality is the other class, 0).
IMAGE_CLASS = 1


def modality_classification_loss(image_logits: Tensor, text_logits: Tensor) -> Tensor:
    r"""Modality classification loss :math:`\mathcal{L}_{adv}` of ACMR (Wang et al., ACM MM 2017,
    eq. 8).

    The modality classifier :math:`D` reads an item of the common space and gives the
    probability that it is an image, :math:`D(\mathbf{x}) = \mathrm{softmax}(\mathbf{d}(\mathbf{x}))_1`
    from two logits :math:`\mathbf{d}(\mathbf{x})`; its loss is the cross-entropy of the
    modality labels (image = class 1, text = class 0):

    .. math::
        \mathcal{L}_{adv} = -\frac{1}{n} \sum_{i=1}^{n}
            \Big(\log D(\mathbf{v}_i) + \log\big(1 - D(\mathbf{t}_i)\big)\Big)

    :math:`D` descends this loss and the feature projectors ascend it (the minimax of eqs. 9-10);
    the model's gradient reversal layer in front of :math:`D` lets one backward pass do both.
    Half-precision logits are upcast to float32 and the loss runs with autocast off.

    Args:
        image_logits: modality logits of the image embeddings, :math:`\mathbf{d}(\mathbf{v})`.
        text_logits: modality logits of the text embeddings, :math:`\mathbf{d}(\mathbf{t})`.

    Shapes:
        - **input:** two :math:`(n, 2)` logit tensors (the row counts may differ)
        - **output:** scalar
    """
    for name, value in (("image modality logits", image_logits), ("text modality logits", text_logits)):
        if not isinstance(value, Tensor) or value.dim() != 2 or value.size(1) != 2 or not value.is_floating_point():
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise DataError(f"{name} must be an (n, 2) floating-point tensor of modality classifier logits, "
                            f"got {shape}")
    image_logits, text_logits = upcast(image_logits), upcast(text_logits)
    with autocast_off(image_logits.device):
        return _ce(image_logits, IMAGE_CLASS) + _ce(text_logits, 1 - IMAGE_CLASS)


def _ce(logits: Tensor, target: int) -> Tensor:
    targets = torch.full((logits.size(0),), target, dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, targets)


class ModalityClassificationLoss(LossTerm):
    r"""ACMR's modality classification loss (:func:`modality_classification_loss`) on
    ``image_modality_logits`` and ``text_modality_logits`` of the model output; ``labels`` are
    not used.

    .. math::
        \mathcal{L}_{adv} = \mathrm{CE}(\mathbf{d}(\mathbf{v}), 1) + \mathrm{CE}(\mathbf{d}(\mathbf{t}), 0)
    """

    def forward(self, output: Any, labels: Tensor | None = None) -> Tensor:
        return modality_classification_loss(require_field(output, "image_modality_logits"),
                                            require_field(output, "text_modality_logits"))
