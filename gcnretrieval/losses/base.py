"""The common shape of every loss term."""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class LossTerm(nn.Module):
    r"""Base class of the loss terms: one call signature for all of them.

    A term reads what it needs from the model output (an object with the fields of
    ``CrossModalOutput``: ``image_embedding``, ``text_embedding``, ``image_label_scores``,
    ``text_label_scores`` and the four discriminator logits) and returns a scalar.

    Shapes:
        - **input:** ``output`` with ``(n, ·)`` fields, ``labels`` :math:`(n, C)` multi-hot
        - **output:** scalar
    """

    def reset_parameters(self) -> None:
        """Re-initialise learnable state (none by default)."""

    def forward(self, output: Any, labels: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ""
