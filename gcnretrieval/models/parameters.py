"""Parameter counting."""
from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``module`` (shared tensors counted once).

    Args:
        module (nn.Module): any module.
        trainable_only (bool, optional): count only parameters with
            ``requires_grad``. (default: :obj:`False`)
    """
    total = 0
    for p in module.parameters():  # parameters() already deduplicates shared tensors
        if trainable_only and not p.requires_grad:
            continue
        total += p.numel()
    return total


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameter counts per part of a model exposing ``parameter_groups()``, plus ``total``."""
    groups = model.parameter_groups()  # type: ignore[operator]
    counts = {name: count_parameters(part) for name, part in groups.items()}
    counts["total"] = count_parameters(model)
    return counts
