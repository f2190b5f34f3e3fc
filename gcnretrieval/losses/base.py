"""The common shape of every loss term."""
from __future__ import annotations

from typing import Any, ClassVar

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


class MethodObjective(nn.Module):
    r"""Base of a registered objective: a weighted sum of loss terms.

    ``forward(output, labels)`` returns ``(total, parts)``: ``total`` carries the gradient,
    ``parts`` holds a detached scalar for every name in :attr:`parts` (``"total"`` included),
    logged per epoch as ``loss_<name>``. Keyword parameters are the ``[loss]`` recipe keys.
    """

    #: the names of the logged parts, ``"total"`` first
    parts: ClassVar[tuple[str, ...]] = ("total",)
    #: further parts averaged over an epoch and logged under their own name
    averaged: ClassVar[tuple[str, ...]] = ()

    def project_(self) -> None:
        """Called after each optimizer step (nothing by default)."""

    def epoch_values(self, means: dict[str, float], epoch: int) -> dict[str, float]:
        """Values logged once per epoch ``epoch`` (1-based) besides the loss ``means`` (none by default)."""
        return {}

    def forward(self, output: Any, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:  # pragma: no cover
        raise NotImplementedError
