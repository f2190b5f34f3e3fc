"""The common shape of every loss term and the loss registry."""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gcnretrieval.registry import Registry

LOSSES: Registry[type["LossTerm"]] = Registry("loss", entry_point_group="gcnretrieval.losses")


def register_loss(name: str):
    """Class decorator adding a :class:`LossTerm` subclass to the loss registry."""
    return LOSSES.register(name)


def build_loss(name: str, **options: Any) -> "LossTerm":
    """Instantiate the registered loss term ``name`` with keyword ``options``."""
    return LOSSES.get(name)(**options)


def available_losses() -> list[str]:
    """Names of all registered loss terms."""
    return LOSSES.names()


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
