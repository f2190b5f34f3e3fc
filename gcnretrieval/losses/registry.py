"""Objective registry: the training objectives a recipe's ``[loss] name`` selects.

``"circle_soft"`` is :class:`~gcnretrieval.losses.Objective` (eq. 26 of the L2-GCN paper); the published
methods of :mod:`gcnretrieval.methods` register their own composites of the terms in this package.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

from gcnretrieval.losses.base import MethodObjective
from gcnretrieval.losses.objective import Objective
from gcnretrieval.registry import Registry

O = TypeVar("O", bound=type[nn.Module])

#: the objective a recipe uses when ``[loss]`` names none
DEFAULT_OBJECTIVE = "circle_soft"

OBJECTIVES: Registry[type[nn.Module]] = Registry("objective", entry_point_group="gcnretrieval.objectives")


def register_objective(name: str) -> Callable[[O], O]:
    """Class decorator registering an objective under ``name``."""
    return OBJECTIVES.register(name)


register_objective(DEFAULT_OBJECTIVE)(Objective)
