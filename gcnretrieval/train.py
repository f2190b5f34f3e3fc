"""The trainer: recipe -> data, label graph, model, objective -> epochs -> selected model.

:func:`build_experiment` turns a :class:`~gcnretrieval.config.Config` into everything a
run needs (and raises every user error before anything is written). :class:`Trainer`
runs the epochs: shuffled mini-batches from a seeded ``torch.Generator``, one optimizer
over the model's and the objective's parameters (the Circle-Soft weight :math:`\\lambda`
included), a validation retrieval report after every epoch, the best epoch kept by its
mean mAP, and, when given a run directory, ``metrics.jsonl`` and the checkpoints
``last.pt`` / ``best.pt`` written after every epoch.

Batches: the training pairs are shuffled each epoch; the last incomplete batch is kept
unless ``train.drop_last`` is set or it holds a single pair (BatchNorm cannot train on
one row), in which case it is dropped for that epoch.

Several processes (``torchrun``): each rank takes its shard of every global batch and
model + objective train as one ``DistributedDataParallel`` module with the per-pair outputs
gathered before the loss, so the run equals one process with the same batch size (see
:mod:`gcnretrieval.training.distributed`); rank 0 alone evaluates, logs and saves.

Determinism: every random draw is seeded from ``run.seed``. With
``train.deterministic = true`` PyTorch is also switched to deterministic algorithms for
the duration of training (``warn_only=True``: an operation without a deterministic
implementation warns instead of failing), so that a run resumed from ``last.pt`` ends
exactly where an uninterrupted run does.
"""
from __future__ import annotations

import importlib
import inspect
import json
import logging
import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from gcnretrieval.config import Config, unknown_key
from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.data.rows import is_lazy
from gcnretrieval.training import distributed
from gcnretrieval.training.checkpoints import capture_rng_state, restore_rng_state, save_checkpoint
from gcnretrieval.training.progress import ProgressBar

log = logging.getLogger(__name__)

__all__ = [
    "Experiment",
    "Trainer",
    "build_experiment",
    "build_label_graph_for",
    "build_optimizer",
    "embed_split",
    "evaluate_split",
    "import_plugins",
    "load_data",
    "resolve_device",
    "resolve_seed",
    "seed_everything",
]

LOSS_KEYS = ("total", "circle_soft", "circle", "soft", "classification", "adversarial")


# --- setup ----------------------------------------------------------------------------


def resolve_seed(config: Config) -> Config:
    """``config`` with ``run.seed`` set (a fresh random seed when the recipe has none)."""
    if config.run.seed is not None:
        return config
    seed = int.from_bytes(os.urandom(4), "little")
    log.info("no run.seed in the recipe; drew seed %d", seed)
    return replace(config, run=replace(config.run, seed=seed))


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


def import_plugins(names: tuple[str, ...] | list[str]) -> None:
    """Import the recipe's ``plugins`` modules (they register encoders on import)."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ConfigError(f"cannot import plugin '{name}' listed in 'plugins' ({err}); install it or fix the recipe") from None


def _synthetic_options(config: Config) -> dict[str, Any]:
    from gcnretrieval.data import make_synthetic

    accepted = list(inspect.signature(make_synthetic).parameters)
    options = dict(config.data.synthetic)
    for key in options:
        if key not in accepted:
            raise unknown_key(key, accepted, prefix="data.synthetic.")
    options.setdefault("seed", config.run.seed)
    return options


def load_data(config: Config) -> Any:
    """The dataset a recipe names, validated, with the validation split it selects on.

    ``eval.select_on = "val"`` carves ``eval.val_fraction`` of the training pairs (seeded
    by ``run.seed``) unless the data ship their own validation split.
    """
    from gcnretrieval.data import available_datasets, carve_validation, load_catalog_dataset, load_dataset, make_synthetic

    data = config.data
    if data.source == "synthetic":
        options = _synthetic_options(config)
        try:
            dataset = make_synthetic(**options)
        except TypeError as err:
            raise ConfigError(f"bad value in [data.synthetic]: {err}") from None
        dataset.validate()
    elif data.source == "bundled":
        from gcnretrieval.data import load_bundled

        dataset = load_bundled(data.dataset)
    elif data.dataset is not None and data.dataset.lower() in available_datasets():
        dataset = load_catalog_dataset(data.dataset.lower(), data.path)
    else:
        if data.path is None:
            raise ConfigError(
                f"data.dataset = '{data.dataset}' is not a catalog dataset ({', '.join(available_datasets())}); "
                "give data.path as well"
            )
        dataset = load_dataset(data.path, name=data.dataset)
    if config.eval.select_on == "val":
        dataset = carve_validation(dataset, config.eval.val_fraction, seed=config.run.seed)
    return dataset


def _node_features(config: Config, dataset: Any) -> np.ndarray:
    from gcnretrieval.graphs.word_vectors import label_node_features

    graph = config.graph
    return label_node_features(list(dataset.label_names), graph.node_features, vocabulary=graph.vocabulary,
                               word_vectors=graph.word_vectors, dim=graph.node_feature_dim,
                               seed=[config.run.seed, 1]).features


def build_label_graph_for(config: Config, dataset: Any) -> Any:
    """The label graph of a recipe, from the *training* labels only.

    Returns a ``torch_geometric.data.Data`` (kinds ``cooccurrence``/``embedding``) or an
    ``AdaptiveLabelGraph`` (kind ``adaptive``). ``graph.drop_edges`` keeps only the
    self-loops (the same nodes and features, no message between labels).
    """
    from gcnretrieval.graphs import AdaptiveLabelGraph, build_label_graph

    g = config.graph
    features = _node_features(config, dataset)
    names = list(dataset.label_names)
    options = dict(g.options)
    try:
        if g.kind == "adaptive":
            if g.drop_edges:
                raise ConfigError("graph.drop_edges applies to fixed graphs, not graph.kind = \"adaptive\"")
            graph = AdaptiveLabelGraph(features, g.threshold, label_names=names, **options)
        else:
            labels = dataset.train.labels if g.kind == "cooccurrence" else None
            graph = build_label_graph(labels, features, g.kind, g.threshold, label_names=names, **options)
    except TypeError as err:
        raise ConfigError(f"bad option in [graph.options]: {err}") from None
    if g.drop_edges:
        keep = graph.edge_index[0] == graph.edge_index[1]
        graph.edge_index = graph.edge_index[:, keep]
        graph.edge_weight = graph.edge_weight[keep]
        log.info("graph.drop_edges: kept the %d self-loops only", int(keep.sum()))
    else:
        edges = getattr(graph, "edge_index", None)
        if edges is not None:
            loops = int((edges[0] == edges[1]).sum())
            log.info("label graph '%s': %d labels, %d edges between labels, %d self-loops",
                     g.kind, len(names), edges.size(1) - loops, loops)
    return graph


def build_optimizer(config: Config, parameters: Any) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD over ``parameters`` with the recipe's settings."""
    t = config.train
    params = [p for p in parameters if p.requires_grad]
    # ``fused`` does the whole update in one pass over the parameters; ``foreach`` runs
    # each elementwise op over all tensors at once (bit-identical to the per-tensor loop).
    if t.fused_optimizer:
        try:
            return _optimizer(t, params, fused=True)
        except (RuntimeError, TypeError) as err:  # no fused kernel for this device or dtype
            log.info("fused %s update unavailable (%s); using the foreach one", t.optimizer, err)
    return _optimizer(t, params, foreach=True)


def _optimizer(t: Any, params: list, **kernel: bool) -> torch.optim.Optimizer:
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay, **kernel)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay, **kernel)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.betas[0], weight_decay=t.weight_decay, **kernel)


@dataclass
class Experiment:
    """Everything a run is made of, built from one recipe by :func:`build_experiment`.

    Attributes:
        config: the recipe, with ``run.seed`` resolved.
        dataset: the data (with the validation split the run selects on).
        graph: the label graph (``Data``) or ``AdaptiveLabelGraph``.
        model: the :class:`~gcnretrieval.models.CrossModalModel`, on ``device``.
        objective: the :class:`~gcnretrieval.losses.Objective`, on ``device``.
        device: where training runs.
    """

    config: Config
    dataset: Any
    graph: Any
    model: nn.Module
    objective: nn.Module
    device: torch.device


def build_experiment(config: Config, device: torch.device | str | None = None) -> Experiment:
    """Data, label graph, model and objective of a recipe (seeded; nothing written).

    Every user error of a recipe surfaces here: bad data, a graph that cannot be built,
    an unknown encoder or option, a batch larger than the training split.
    """
    from gcnretrieval.losses import Objective
    from gcnretrieval.models import CrossModalModel

    config = resolve_seed(config)
    device = resolve_device(config.train.device) if device is None else torch.device(device)
    import_plugins(config.plugins)
    dataset = load_data(config)
    num_train = len(dataset.train)
    if config.train.batch_size > num_train:
        raise ConfigError(
            f"train.batch_size = {config.train.batch_size} exceeds the {num_train} training pairs"
            f"{' left after carving the validation split' if config.eval.select_on == 'val' else ''}; "
            "lower train.batch_size"
        )
    seed_everything(config.run.seed)
    graph = build_label_graph_for(config, dataset)
    encoder_options = dict(config.encoder.options, num_layers=config.encoder.num_layers)
    model = CrossModalModel(
        dataset.image_dim,
        dataset.text_dim,
        graph,
        encoder=config.encoder.name,
        encoder_options=encoder_options,
        common_dim=config.model.common_dim,
        projector_layers=config.model.projector_layers,
        grl_coefficient=config.model.grl_coefficient,
    )
    loss = config.loss
    objective = Objective(
        alpha=loss.alpha, beta=loss.beta, theta=loss.theta, condition=loss.condition,
        lambda_mode=loss.lambda_mode, theta_on=loss.theta_on, m=loss.m, gamma=loss.gamma,
        reduction=loss.reduction, temperature=loss.temperature, intra_weight=loss.intra_weight,
        view_weight=loss.view_weight,
    )
    return Experiment(config, dataset, graph, model.to(device), objective.to(device), device)


# --- batches and evaluation -----------------------------------------------------------


def _writable_float32(array: np.ndarray) -> np.ndarray:
    out = np.asarray(array, dtype=np.float32)
    return out if out.flags.writeable and out.flags.c_contiguous else np.array(out, order="C")


class _Rows:
    """One split as tensors: resident on the device, or gathered per batch from a memory map."""

    def __init__(self, split: Any, device: torch.device) -> None:
        self.device = device
        arrays = (split.image, split.text, split.labels)
        self.mapped = any(is_lazy(a) for a in arrays)
        if self.mapped:
            self.arrays = arrays
        else:
            self.tensors = tuple(torch.from_numpy(_writable_float32(a)).to(device) for a in arrays)
        self.size = len(split)

    def take(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.mapped:
            rows = np.sort(index.cpu().numpy())
            return tuple(torch.from_numpy(np.asarray(a[rows], dtype=np.float32)).to(self.device) for a in self.arrays)
        index = index.to(self.device)
        return tuple(t.index_select(0, index) for t in self.tensors)


@torch.no_grad()
def embed_split(model: nn.Module, split: Any, device: torch.device | None = None,
                batch_size: int = 1024) -> tuple[Tensor, Tensor]:
    """Image and text embeddings of a split (eval mode, batched, no gradient)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    images, texts = [], []
    try:
        for start in range(0, len(split), batch_size):
            stop = min(start + batch_size, len(split))
            image = torch.from_numpy(np.array(split.image[start:stop], dtype=np.float32)).to(device)
            text = torch.from_numpy(np.array(split.text[start:stop], dtype=np.float32)).to(device)
            images.append(model.embed_image(image))
            texts.append(model.embed_text(text))
    finally:
        model.train(was_training)
    return torch.cat(images), torch.cat(texts)


def evaluate_split(model: nn.Module, split: Any, device: torch.device | None = None,
                   batch_size: int = 1024) -> dict[str, float]:
    """``{"i2t_map", "t2i_map", "avg_map"}`` of a split (each modality queries the other)."""
    from gcnretrieval.metrics import retrieval_report

    image, text = embed_split(model, split, device, batch_size)
    labels = torch.from_numpy(np.array(split.labels, dtype=np.float32)).to(image.device)
    return {key: float(value) for key, value in retrieval_report(image, text, labels).items()}


@contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


# --- the loop -------------------------------------------------------------------------


class Trainer:
    """Epochs of mini-batch training with per-epoch selection and checkpoints.

    Args:
        experiment: from :func:`build_experiment`.
        run_dir: where ``metrics.jsonl`` and ``checkpoints/{last,best}.pt`` go; ``None``
            keeps everything in memory (default).
        progress: show a progress bar; ``None`` shows it when stderr is a terminal.

    Attributes:
        epoch: completed epochs.
        best_epoch, best_score: the selected epoch so far and its mean mAP on the
            selection split (``eval.select_on``).
        history: one dict per completed epoch (the rows of ``metrics.jsonl``).
    """

    def __init__(self, experiment: Experiment, run_dir: str | Path | None = None, progress: bool | None = None) -> None:
        self.experiment = experiment
        self.config = experiment.config
        self.model = experiment.model
        self.objective = experiment.objective
        self.device = experiment.device
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress
        self.optimizer = build_optimizer(self.config, list(self.model.parameters()) + list(self.objective.parameters()))
        seed = self.config.run.seed
        self.batch_generator = torch.Generator().manual_seed(seed)
        self.numpy_generator = np.random.default_rng([seed, 2])
        self.select_on = self.config.eval.select_on
        dataset = experiment.dataset
        self.selection_split = dataset.val if self.select_on == "val" else dataset.test
        if self.selection_split is None:  # pragma: no cover - load_data always carves one
            raise DataError("no validation split to select on; set eval.select_on = \"test\" or eval.val_fraction")
        self._train_rows = _Rows(dataset.train, self.device)
        # several processes (torchrun): each takes its shard of every global batch; model
        # and objective train as one DistributedDataParallel module (see training.distributed)
        self.world_size = distributed.world_size()
        self.rank = distributed.rank()
        self.step_module = (distributed.wrap(self.model, self.objective, self.device)
                            if self.world_size > 1 else None)
        self.epoch = 0
        self.best_epoch: int | None = None
        self.best_score = -math.inf
        self.history: list[dict[str, Any]] = []

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training (tensors and plain containers only)."""
        return {
            "format": 1,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": capture_rng_state(self.batch_generator, self.numpy_generator),
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "select_on": self.select_on,
            "history": self.history,
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore model, objective (lambda), optimizer, epoch, selection and RNG states."""
        self.model.load_state_dict(state["model"])
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.best_epoch = state["best_epoch"]
        self.best_score = float(state["best_score"])
        self.history = [dict(row) for row in state["history"]]
        restore_rng_state(state["rng"], self.batch_generator, self.numpy_generator)

    # -- one epoch ---------------------------------------------------------------------
    def _batches(self) -> list[Tensor]:
        n = self._train_rows.size
        size = self.config.train.batch_size
        order = torch.randperm(n, generator=self.batch_generator)
        batches = list(order.split(size))
        smallest = 2 * self.world_size  # BatchNorm needs two rows on every rank
        if batches and len(batches[-1]) < size and (self.config.train.drop_last or len(batches[-1]) < smallest):
            batches.pop()
        return batches

    def _loss(self, index: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The objective of one global batch (this rank's shard gathered with the others')."""
        if self.step_module is None:
            image, text, labels = self._train_rows.take(index)
            return self.objective(self.model(image, text), labels)
        sizes = tuple(len(part) for part in index.tensor_split(self.world_size))
        image, text, labels = self._train_rows.take(distributed.shard(index, self.world_size, self.rank))
        return self.step_module(image, text, labels, sizes)

    def train_epoch(self) -> dict[str, float]:
        """One pass over the shuffled training pairs; returns the epoch means of every loss term."""
        self.model.train()
        self.objective.train()
        batches = self._batches()
        sums: dict[str, Tensor] = {}
        seen = 0
        bar = ProgressBar(len(batches), f"epoch {self.epoch + 1}/{self.config.train.epochs}",
                          enabled=self.progress if self.rank == 0 else False)
        with bar:
            for step, index in enumerate(batches):
                total, parts = self._loss(index)
                if not torch.isfinite(total):
                    raise ConfigError(
                        f"the training loss became {float(total)} at epoch {self.epoch + 1}, batch {step + 1}; "
                        "lower train.lr or check the features' scale"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                self.optimizer.step()
                self.objective.project_()
                rows = len(index)
                seen += rows
                for key in LOSS_KEYS:
                    value = parts[key].detach() * rows
                    sums[key] = value if key not in sums else sums[key] + value
                bar.update(1, f"loss {float(total):.4f}" if bar.enabled else "")
        means = {f"loss_{key}": float(value) / seen for key, value in sums.items()}
        means["lambda"] = float(self.objective.weight.detach())
        return means

    # -- the run -----------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        """Train from ``self.epoch`` up to ``train.epochs``; returns the history."""
        epochs = self.config.train.epochs
        info = log.info if self.rank == 0 else log.debug
        if self.epoch >= epochs:
            info("already trained for %d epoch(s) (train.epochs = %d); nothing to do", self.epoch, epochs)
            return self.history
        info("training %s on %s: %d train / %d %s pairs, batch %d, epochs %d..%d",
                 self.config.encoder.name, self.device, len(self.experiment.dataset.train),
                 len(self.selection_split), self.select_on, self.config.train.batch_size, self.epoch + 1, epochs)
        with _deterministic(self.config.train.deterministic):
            while self.epoch < epochs:
                started = time.perf_counter()
                row: dict[str, Any] = {"epoch": self.epoch + 1}
                row.update(self.train_epoch())
                self.epoch += 1
                scores = self._evaluate_selection()
                row.update({f"{self.select_on}_{key}": value for key, value in scores.items()})
                improved = scores["avg_map"] > self.best_score
                if improved:
                    self.best_epoch, self.best_score = self.epoch, scores["avg_map"]
                row["selected"] = improved
                row["seconds"] = time.perf_counter() - started
                row = {key: _json_number(v) if isinstance(v, float) else v for key, v in row.items()}
                self.history.append(row)
                info("epoch %d/%d: loss %.4f, lambda %.3f, %s mAP i2t %.4f t2i %.4f avg %.4f%s (%.1f s)",
                         self.epoch, epochs, _or_nan(row["loss_total"]), _or_nan(row["lambda"]), self.select_on,
                         scores["i2t_map"], scores["t2i_map"], scores["avg_map"], " *" if improved else "",
                         row["seconds"])
                self._save(row, improved)
        return self.history

    def _evaluate_selection(self) -> dict[str, float]:
        """Selection-split mAPs, computed on rank 0 and shared with the other ranks."""
        scores = None
        if self.rank == 0:
            scores = evaluate_split(self.model, self.selection_split, self.device, self.config.eval.batch_size)
        if self.world_size > 1:
            scores = distributed.broadcast_object(scores)
        return scores

    def _save(self, row: dict[str, Any], improved: bool) -> None:
        if self.run_dir is None or self.rank != 0:
            return
        with (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        state = self.state_dict()
        if improved:
            save_checkpoint(state, self.run_dir / "checkpoints" / "best.pt")
        save_checkpoint(state, self.run_dir / "checkpoints" / "last.pt")
