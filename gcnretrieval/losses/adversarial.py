"""Adversarial loss of the two modality discriminators."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.errors import DataError
from gcnretrieval.losses._checks import check_non_negative, require_field
from gcnretrieval.losses.base import LossTerm

LOGIT_FIELDS = ("image_real_logits", "image_fake_logits", "text_fake_logits", "text_real_logits")


def adversarial_loss(
    image_real_logits: Tensor | Any,
    image_fake_logits: Tensor | None = None,
    text_fake_logits: Tensor | None = None,
    text_real_logits: Tensor | None = None,
    view_weight: float = 1.0,
) -> Tensor:
    r"""Adversarial loss (eq. 25).

    .. math::
        \mathcal{L}_{adv} = \mathrm{CE}(D_v(\mathbf{x}^v), 1) + \mathrm{CE}(D_v(G_{tv}(\mathbf{t})), 0)
            + \mu\big[\mathrm{CE}(D_t(G_{vt}(\mathbf{v})), 1) + \mathrm{CE}(D_t(\mathbf{x}^t), 0)\big]

    Class 1 marks image-side inputs and class 0 text-side inputs for both discriminators;
    each cross-entropy is averaged over the batch. The model applies gradient reversal in
    front of the discriminators, so one backward pass trains both players.

    The first argument may also be a model output carrying the four ``*_logits`` fields
    (the other three are then omitted).

    Args:
        image_real_logits: :math:`D_v(\mathbf{x}^v)`.
        image_fake_logits: :math:`D_v(G_{tv}(\mathbf{t}))`.
        text_fake_logits: :math:`D_t(G_{vt}(\mathbf{v}))`.
        text_real_logits: :math:`D_t(\mathbf{x}^t)`.
        view_weight: :math:`\mu \ge 0` (default ``1.0``).

    Shapes:
        - **input:** four :math:`(n, 2)` logit tensors
        - **output:** scalar
    """
    view_weight = check_non_negative("view_weight", view_weight)
    if not isinstance(image_real_logits, Tensor):
        output = image_real_logits
        if any(x is not None for x in (image_fake_logits, text_fake_logits, text_real_logits)):
            raise DataError("pass either a model output or four logit tensors to adversarial_loss, not both")
        image_real_logits, image_fake_logits, text_fake_logits, text_real_logits = (
            require_field(output, field) for field in LOGIT_FIELDS
        )
    logits = dict(zip(LOGIT_FIELDS, (image_real_logits, image_fake_logits, text_fake_logits, text_real_logits)))
    for name, value in logits.items():
        if not isinstance(value, Tensor) or value.dim() != 2 or value.size(1) != 2:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise DataError(f"{name} must be an (n, 2) tensor of discriminator logits, got {shape}")

    image_view = _ce(image_real_logits, 1) + _ce(image_fake_logits, 0)
    text_view = _ce(text_fake_logits, 1) + _ce(text_real_logits, 0)
    return image_view + view_weight * text_view


def _ce(logits: Tensor, target: int) -> Tensor:
    targets = torch.full((logits.size(0),), target, dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, targets)


class AdversarialLoss(LossTerm):
    r"""Adversarial loss (:func:`adversarial_loss`) on the four discriminator logits of the
    model output; ``labels`` are not used.

    Args:
        view_weight: :math:`\mu \ge 0`, weight of the text discriminator (default ``1.0``).
    """

    def __init__(self, view_weight: float = 1.0) -> None:
        super().__init__()
        self.view_weight = check_non_negative("view_weight", view_weight)

    def forward(self, output: Any, labels: Tensor | None = None) -> Tensor:
        return adversarial_loss(*(require_field(output, field) for field in LOGIT_FIELDS), view_weight=self.view_weight)

    def extra_repr(self) -> str:
        return f"view_weight={self.view_weight}"
