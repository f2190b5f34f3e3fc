"""From a checked recipe to what a run is made of: data, label graph, model and objective.

:func:`build_experiment` reads the data, builds the label graph from the training labels
only, and constructs the model and the objective from their recipe tables
(the model and the objective ``[model]`` and ``[loss]`` name, by default ``CrossModalModel`` and
``Objective``, the encoder from ``config.encoder``); a model that takes no label graph gets none. Every user error of a recipe surfaces here, before anything is
written.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch_geometric import seed_everything

from gcnretrieval.config import Config, construct
from gcnretrieval.data import (CrossModalDataset, available_datasets, carve_validation, load_bundled,
                               load_catalog_dataset, load_dataset, make_synthetic)
from gcnretrieval.errors import ConfigError
from gcnretrieval.graphs import AdaptiveLabelGraph, build_label_graph, label_node_features
from gcnretrieval.losses.registry import OBJECTIVES
from gcnretrieval.models.registry import MODELS, uses_label_graph
from gcnretrieval.training.ranking import validation_fraction

log = logging.getLogger(__name__)

__all__ = ["Experiment", "build_experiment", "build_label_graph_for", "load_data", "resolve_device"]


@dataclass
class Experiment:
    """Everything a run is made of, built from one recipe by :func:`build_experiment`.

    Attributes:
        config: the recipe (``run.seed`` resolved).
        dataset: the data, with the validation split the run selects on.
        graph: the label graph (``Data``) or an ``AdaptiveLabelGraph``; ``None`` for a model without one.
        model: the model ``[model] name`` selects (:class:`~gcnretrieval.models.CrossModalModel`), on ``device``.
        objective: the objective ``[loss] name`` selects (:class:`~gcnretrieval.losses.Objective`), on ``device``.
        device: where training runs.
    """

    config: Config
    dataset: CrossModalDataset
    graph: Any
    model: nn.Module
    objective: nn.Module
    device: torch.device


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other names are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device '{name}'; use \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but CUDA is not available here; use \"auto\" or \"cpu\"")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device '{name}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device '{name}' requested but MPS is not available here; use \"auto\" or \"cpu\"")
    return device


def load_data(config: Config) -> CrossModalDataset:
    """The dataset a recipe names, validated, with the validation split it selects on.

    ``eval.select_on = "val"`` carves ``eval.val_fraction`` of the training pairs (seeded
    by ``run.seed``), raised up to 30 % when that gives too few pairs to rank epochs
    (:func:`~gcnretrieval.training.ranking.validation_fraction`), unless the data ship their
    own validation split.
    """
    data = config.data
    if data.source == "synthetic":
        dataset = construct("data.synthetic", make_synthetic, {"seed": config.run.seed, **data.synthetic}).validate()
    elif data.source == "bundled":
        dataset = load_bundled(data.dataset)
    elif data.dataset is not None and data.dataset.lower() in available_datasets():
        dataset = load_catalog_dataset(data.dataset.lower(), data.path)
    elif data.path is None:
        raise ConfigError(f"data.dataset = '{data.dataset}' is not a catalog dataset "
                          f"({', '.join(available_datasets())}); give data.path as well")
    else:
        dataset = load_dataset(data.path, name=data.dataset)
    if config.eval.select_on == "val":
        fraction = config.eval.val_fraction
        if dataset.val is None:
            fraction = validation_fraction(len(dataset.train), fraction)
            if fraction != config.eval.val_fraction:
                log.warning("eval.val_fraction = %g carves %d of %d training pairs, too few to rank epochs; carving "
                            "%.0f %% instead (set eval.val_fraction to choose)", config.eval.val_fraction,
                            round(config.eval.val_fraction * len(dataset.train)), len(dataset.train), 100 * fraction)
        dataset = carve_validation(dataset, fraction, seed=config.run.seed)
    return dataset


def build_label_graph_for(config: Config, dataset: CrossModalDataset) -> Any:
    """The label graph of a recipe, from the *training* labels only.

    A ``torch_geometric.data.Data`` (kinds ``cooccurrence``, ``embedding``) or an
    ``AdaptiveLabelGraph`` (kind ``adaptive``); ``graph.drop_edges`` keeps the self-loops only.
    """
    g, names = config.graph, list(dataset.label_names)
    features = label_node_features(names, g.node_features, vocabulary=g.vocabulary, word_vectors=g.word_vectors,
                                   dim=g.node_feature_dim, seed=[config.run.seed, 1]).features
    if g.kind == "adaptive":
        return construct("graph.options", AdaptiveLabelGraph, g.options, node_features=features,
                         threshold=g.threshold, label_names=names)
    labels = dataset.train.labels if g.kind == "cooccurrence" else None
    graph = construct("graph.options", build_label_graph, g.options, labels=labels, node_features=features,
                      kind=g.kind, threshold=g.threshold, label_names=names)
    loops = graph.edge_index[0] == graph.edge_index[1]
    if g.drop_edges:
        graph.edge_index, graph.edge_weight = graph.edge_index[:, loops], graph.edge_weight[loops]
        log.info("graph.drop_edges: kept the %d self-loops only", int(loops.sum()))
    else:
        log.info("label graph '%s': %d labels, %d edges between labels, %d self-loops", g.kind, len(names),
                 int((~loops).sum()), int(loops.sum()))
    return graph


def build_experiment(config: Config, device: torch.device | str | None = None,
                     dataset: CrossModalDataset | None = None) -> Experiment:
    """Data (``dataset`` if given, with its validation split), label graph, model and objective of
    a recipe, seeded; nothing is written. ``run.seed`` must be set (:func:`gcnretrieval.config.with_seed`).
    The experiment's ``config`` has ``train.batch_size = "auto"`` resolved to a number of pairs
    (:meth:`~gcnretrieval.options.TrainOptions.batch_size_for`)."""
    if config.run.seed is None:
        raise ValueError("build_experiment needs run.seed; resolve it with gcnretrieval.config.with_seed")
    device = resolve_device(config.train.device) if device is None else torch.device(device)
    dataset = load_data(config) if dataset is None else dataset
    batch_size = config.train.batch_size_for(len(dataset.train), carved=config.eval.select_on == "val")
    if batch_size != config.train.batch_size:
        log.info("train.batch_size = \"auto\": %d pairs per batch (%d training pairs)", batch_size, len(dataset.train))
        config = replace(config, train=replace(config.train, batch_size=batch_size))
    seed_everything(config.run.seed)
    model_options = dict(config.model)
    model_class = MODELS.get(model_options.pop("name"))
    supplied: dict[str, Any] = {"image_dim": dataset.image_dim, "text_dim": dataset.text_dim,
                                "num_labels": dataset.num_labels}
    graph = None
    if uses_label_graph(model_class):
        graph = build_label_graph_for(config, dataset)
        encoder = dict(config.encoder)
        supplied.update(label_graph=graph, encoder=encoder.pop("name"), encoder_options=encoder)
    wanted = inspect.signature(model_class).parameters
    model = construct("model", model_class, model_options, owners={"encoder": supplied.get("encoder_options", ())},
                      **{key: value for key, value in supplied.items() if key in wanted})
    loss_options = dict(config.loss)
    objective = construct("loss", OBJECTIVES.get(loss_options.pop("name")), loss_options)
    return Experiment(config, dataset, graph, model.to(device), objective.to(device), device)
