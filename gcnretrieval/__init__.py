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
    "LabelVocabulary": "gcnretrieval.graphs",
    "LabelGraphSummary": "gcnretrieval.graphs",
    "available_label_vocabularies": "gcnretrieval.graphs",
    "cooccurrence_counts": "gcnretrieval.graphs",
    "node_features_from_names": "gcnretrieval.graphs",
    "label_node_features": "gcnretrieval.graphs",
    "NodeFeatures": "gcnretrieval.graphs",
    "summarize_label_graph": "gcnretrieval.graphs",
    "plot_label_graph": "gcnretrieval.graphs",
    "LabelEncoder": "gcnretrieval.encoders",
    "register_encoder": "gcnretrieval.encoders",
    "build_encoder": "gcnretrieval.encoders",
    "available_encoders": "gcnretrieval.encoders",
    "describe_encoders": "gcnretrieval.encoders",
    "Objective": "gcnretrieval.losses",
    "CrossModalModel": "gcnretrieval.models",
    "CrossModalOutput": "gcnretrieval.models",
    "count_parameters": "gcnretrieval.models",
    "CrossModalDataset": "gcnretrieval.data",
    "Split": "gcnretrieval.data",
    "load_dataset": "gcnretrieval.data",
    "load_catalog_dataset": "gcnretrieval.data",
    "load_bundled": "gcnretrieval.data",
    "prepare_mirflickr": "gcnretrieval.preparation",
    "prepare_folder": "gcnretrieval.preparation",
    "HistogramFeaturizer": "gcnretrieval.features",
    "VGG19Featurizer": "gcnretrieval.features",
    "EfficientNetLite0Featurizer": "gcnretrieval.features",
    "BagOfWords": "gcnretrieval.features",
    "make_synthetic": "gcnretrieval.data",
    "carve_validation": "gcnretrieval.data",
    "save_npz": "gcnretrieval.data",
    "save_npy_dir": "gcnretrieval.data",
    "mean_average_precision": "gcnretrieval.metrics",
    "precision_at_k": "gcnretrieval.metrics",
    "precision_recall_curve": "gcnretrieval.metrics",
    "retrieval_report": "gcnretrieval.metrics",
    "Config": "gcnretrieval.config",
    "load_config": "gcnretrieval.config",
    "Recipe": "gcnretrieval.config",
    "RunResult": "gcnretrieval.runner",
    "run": "gcnretrieval.runner",
    "evaluate": "gcnretrieval.runner",
    "load_run": "gcnretrieval.runner",
    "Retriever": "gcnretrieval.retrieval",
    "ExactIndex": "gcnretrieval.retrieval",
    "FaissIndex": "gcnretrieval.retrieval",
    "write_report": "gcnretrieval.retrieval",
    "compare": "gcnretrieval.experiments",
    "sweep": "gcnretrieval.experiments",
    "tune": "gcnretrieval.experiments",
    "TuneResult": "gcnretrieval.experiments",
    "run_baseline": "gcnretrieval.experiments",
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
