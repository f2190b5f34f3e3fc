"""Model registry: the cross-modal models a recipe's ``[model] name`` selects.

``"label_graph"`` is :class:`~gcnretrieval.models.CrossModalModel` (the L2-GCN / I-GNN family); the
published methods of :mod:`gcnretrieval.methods` register their own. A model is an ``nn.Module`` with
``forward(image, text) -> output``, ``embed_image(image)`` and ``embed_text(text)`` (the retrieval
embeddings, ranked by cosine similarity) and keyword parameters: those named in :data:`SUPPLIED` come from
the data and the label graph, every other one is a ``[model]`` recipe key.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

from torch import nn

from gcnretrieval.models.cross_modal import CrossModalModel
from gcnretrieval.registry import Registry

M = TypeVar("M", bound=type[nn.Module])

#: the model a recipe uses when ``[model]`` names none
DEFAULT_MODEL = "label_graph"
#: constructor parameters the pipeline supplies (a model takes those its signature names)
SUPPLIED = ("image_dim", "text_dim", "num_labels", "label_graph", "encoder", "encoder_options")

MODELS: Registry[type[nn.Module]] = Registry("model", entry_point_group="gcnretrieval.models")


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator registering a cross-modal model under ``name``."""
    return MODELS.register(name)


def uses_label_graph(cls: type[nn.Module]) -> bool:
    """Whether a model class takes a label graph (and so reads the ``[graph]`` and ``[encoder]`` tables)."""
    return "label_graph" in inspect.signature(cls).parameters


register_model(DEFAULT_MODEL)(CrossModalModel)
