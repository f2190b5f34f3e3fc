"""gcnretrieval: label-graph cross-modal retrieval (image <-> text) on PyTorch Geometric.

The public API is imported lazily so that ``import gcnretrieval`` stays fast and the
CLI starts quickly; ``gcnretrieval.build_label_graph`` and friends resolve on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "GcnRetrievalError": "gcnretrieval.errors",
    "Registry": "gcnretrieval.registry",
    "build_label_graph": "gcnretrieval.graphs",
    "load_label_vocabulary": "gcnretrieval.graphs",
    "AdaptiveLabelGraph": "gcnretrieval.graphs",
    "LabelEncoder": "gcnretrieval.encoders",
    "register_encoder": "gcnretrieval.encoders",
    "build_encoder": "gcnretrieval.encoders",
    "available_encoders": "gcnretrieval.encoders",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gcnretrieval' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
