"""The recipe tables the application consumes: ``[run]``, ``[data]``, ``[graph]``, ``[train]``, ``[eval]``, ``[tune]``.

Each class is its table's constructor: the fields are the keys with their defaults and
types, and ``__post_init__`` checks the values by those types (a ``Literal``'s choices, the
checks an ``Annotated`` type lists) and then by ``_check``, the rules one field's type cannot
state; ``ignored_arguments`` names the keys that the chosen options would ignore, and
``table_target`` names the callable a nested table feeds.
"""
from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Annotated, Any, Literal

from gcnretrieval.checks import check_choice, check_interval, check_non_negative, check_positive, check_positive_int
from gcnretrieval.data import make_synthetic
from gcnretrieval.defaults import DEFAULT_DEVICE, DEFAULT_THRESHOLD, EMBED_BATCH_SIZE
from gcnretrieval.errors import ConfigError, InvalidArgument
from gcnretrieval.graphs import AdaptiveLabelGraph, build_label_graph

__all__ = ["DataOptions", "EvalOptions", "GraphOptions", "RunOptions", "SearchKey", "TrainOptions", "TuneOptions"]

Ignored = Iterator[tuple[str, str]]
#: the ``Annotated`` check of an integer >= 0 (an interval is written as a string: ``"(0, 1]"``)
_COUNT = partial(check_positive_int, minimum=0)
#: pairs per batch: the paper's, the default of ``train.batch_size``, and what ``"auto"`` takes ...
DEFAULT_BATCH_SIZE = 100
#: ... or a share of the training pairs small enough to give an epoch this many steps
AUTO_BATCHES_PER_EPOCH = 4


class _Checked:
    """A table whose ``__post_init__`` checks every field by its type, then runs :meth:`_check`."""

    def __post_init__(self) -> None:
        for name, hint in typing.get_type_hints(type(self), include_extras=True).items():
            value = getattr(self, name)
            if typing.get_origin(hint) is Literal:
                check_choice(name, value, hint)
            for check in getattr(hint, "__metadata__", ()) if value is not None else ():
                check_interval(name, value, check) if isinstance(check, str) else check(name, value)
        self._check()

    def _check(self) -> None:
        """The rules that no single field's type states (none by default)."""


@dataclass(frozen=True)
class RunOptions(_Checked):
    """``[run]``: the run directory ``<out_dir>/<name>/`` and ``seed``, the seed of every random draw
    (left out, one is drawn and recorded in ``config.resolved.json``)."""

    name: str = "run"
    seed: int | None = None
    out_dir: str = "runs"

    def _check(self) -> None:
        if not self.name or re.search(r"[/\\]", self.name) or self.name in (".", ".."):
            raise InvalidArgument("name", f"must be a non-empty name without path separators, got {self.name!r}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise InvalidArgument("seed", f"must be a non-negative integer below 2**63, got {self.seed!r}")


@dataclass(frozen=True)
class DataOptions(_Checked):
    """``[data]``: where the pairs come from.

    Args:
        source: ``"files"`` reads ``path`` (default ``data/<dataset>/`` for a catalog name:
            ``mirflickr``, ``nuswide``, ``mscoco``); ``"bundled"`` loads the dataset shipped
            with the package named ``dataset``; ``"synthetic"`` generates data with
            :func:`~gcnretrieval.data.make_synthetic` (keyword arguments in ``synthetic``;
            ``seed`` defaults to ``run.seed``).
    """

    source: Literal["files", "bundled", "synthetic"] = "files"
    dataset: str | None = None
    path: str | None = None
    synthetic: Mapping[str, Any] = field(default_factory=dict)

    def _check(self) -> None:
        if self.source == "files" and self.path is None and self.dataset is None:
            raise ConfigError("recipe needs 'data.path' (a .npz file or a data directory), 'data.dataset' "
                              "(a catalog name) or data.source = \"synthetic\"")
        if self.source == "bundled" and self.dataset is None:
            raise ConfigError("data.source = \"bundled\" needs data.dataset, the name of a bundled dataset "
                              "(e.g. \"mirflickr-mini\")")

    @staticmethod
    def table_target(name: str, section: Mapping[str, Any]) -> tuple[Callable, tuple[str, ...]]:
        return make_synthetic, ()

    @staticmethod
    def ignored_arguments(given: Mapping[str, Any]) -> Ignored:
        source = given.get("source", "files")
        if source != "files" and "path" in given:
            yield "path", f"with data.source = \"{source}\" (only \"files\" reads a path)"
        if source != "synthetic" and "synthetic" in given:
            yield "synthetic", f"with data.source = \"{source}\" (it configures \"synthetic\" data)"
        if source == "synthetic" and "dataset" in given:
            yield "dataset", "with data.source = \"synthetic\" (name generated data with data.synthetic.name)"


@dataclass(frozen=True)
class GraphOptions(_Checked):
    """``[graph]``: the label graph, built from the training labels only.

    Args:
        kind: ``"cooccurrence"``, ``"embedding"`` or ``"adaptive"`` (I-GNN's learned graph).
        threshold: binarisation threshold :math:`t` in (0, 1].
        node_features: ``"auto"`` (word vectors of the label names when a source has them
            all, else seeded random rows, with a warning), ``"glove"`` (word vectors, or an
            error naming the labels no source has), ``"random"`` (``node_feature_dim``
            Gaussian columns) or ``"onehot"``.
        vocabulary, word_vectors: the shipped vocabulary, or a GloVe-format file of your
            own, to take the word vectors from (default: every shipped source).
        drop_edges: keep only the self-loops (an edgeless-graph ablation).
        options: keyword arguments of :func:`~gcnretrieval.graphs.build_label_graph`, or of
            :class:`~gcnretrieval.graphs.AdaptiveLabelGraph` for ``kind = "adaptive"``.
    """

    kind: Literal["cooccurrence", "embedding", "adaptive"] = "cooccurrence"
    threshold: Annotated[float, "(0, 1]"] = DEFAULT_THRESHOLD
    node_features: Literal["auto", "glove", "random", "onehot"] = "auto"
    node_feature_dim: Annotated[int, check_positive_int] = 300
    vocabulary: str | None = None
    word_vectors: str | None = None
    drop_edges: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def _check(self) -> None:
        if self.drop_edges and self.kind == "adaptive":
            raise InvalidArgument("drop_edges", "applies to fixed graphs, not graph.kind = \"adaptive\"")

    @staticmethod
    def table_target(name: str, section: Mapping[str, Any]) -> tuple[Callable, tuple[str, ...]]:
        if section.get("kind") == "adaptive":
            return AdaptiveLabelGraph, ("node_features", "threshold", "prior", "label_names")
        return build_label_graph, ("labels", "node_features", "kind", "threshold", "label_names", "cooccurrence")

    @staticmethod
    def ignored_arguments(given: Mapping[str, Any]) -> Ignored:
        features = given.get("node_features", "auto")
        if features != "random" and "node_feature_dim" in given:
            yield "node_feature_dim", f"with graph.node_features = \"{features}\" (it sizes \"random\" features)"
        for key in ("vocabulary", "word_vectors"):
            if features in ("random", "onehot") and key in given:
                yield key, f"with graph.node_features = \"{features}\" (no word vectors are read)"


@dataclass(frozen=True)
class TrainOptions(_Checked):
    """``[train]``: the optimisation loop.

    Args:
        epochs, steps: how long to train: ``epochs`` passes over the training split, or
            ``steps`` optimisation steps (the last epoch then stops part-way).
        schedule: the learning rate over the steps (:mod:`gcnretrieval.training.schedules`):
            ``"constant"``, ``"cosine"`` (decay to 0) or ``"onecycle"``, after a linear warm-up
            over the first ``warmup`` share of the steps (one-cycle: its rise, default 0.3).
        patience, min_delta: stop early after ``patience`` epochs in which the selection
            mAP did not improve on its best by more than ``min_delta``; the selected epoch is
            the last one that did (so a run that stopped early never selects its last epoch).
        batch_size: pairs per mini-batch, over all processes, or ``"auto"``: 100 pairs, or a
            quarter of the training pairs when that is fewer (at least 2), so that a small
            training set still takes four steps per epoch and early stopping, which counts
            epochs, does not end the run after a few steps (:meth:`batch_size_for`).
        betas: Adam's betas; for ``sgd`` the first is the momentum.
        device: ``"auto"`` (CUDA when available, else CPU) or a torch device string.
        deterministic: deterministic algorithms, so that a resumed run equals an uninterrupted one.
        drop_last: drop the last incomplete batch (one of fewer than two pairs per process
            always is: BatchNorm needs two).
        fused_optimizer: the optimizer's fused kernel (one pass over all parameters) where the
            device has one; ``false`` selects the ``foreach`` kernel.
        precision: ``"32"``, or the model's forward pass under ``torch.autocast`` in bfloat16
            (``"bf16-mixed"``) or float16 with a gradient scaler (``"16-mixed"``); losses,
            metrics, parameters and checkpoints stay float32. In ``"32"`` on a CPU where oneDNN
            beats the BLAS library (AVX-512, not Intel) the linear layers run through oneDNN
            (:mod:`gcnretrieval.models.onednn`).
        compile: ``torch.compile`` the forward pass and the loss (CUDA: ``mode="reduce-overhead"``,
            CUDA graphs); where compilation fails the run warns and trains without it. On the
            CPU a compiled float32 step uses the BLAS library's products, not oneDNN's.
        tf32: TensorFloat-32 matrix products on CUDA while training.
        keep_last_checkpoint: keep ``checkpoints/last.pt`` (weights, optimizer and RNG state: what
            ``--resume`` continues from) once the run has finished, so that ``--resume`` can
            extend it with more epochs. By default a finished run keeps only
            ``checkpoints/best.pt``, the selected weights (about a third of ``last.pt`` with Adam).
    """

    epochs: Annotated[int, check_positive_int] = 40
    steps: Annotated[int | None, check_positive_int] = None
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"
    warmup: Annotated[float, "[0, 1)"] = 0.0
    patience: Annotated[int | None, check_positive_int] = None
    min_delta: Annotated[float, check_non_negative] = 0.0
    batch_size: int | Literal["auto"] = DEFAULT_BATCH_SIZE
    lr: Annotated[float, check_positive] = 5e-5
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: Annotated[float, check_non_negative] = 0.0
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    device: str = DEFAULT_DEVICE
    deterministic: bool = False
    drop_last: bool = False
    fused_optimizer: bool = True
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    compile: bool = False
    tf32: bool = False
    keep_last_checkpoint: bool = False

    def _check(self) -> None:
        if self.batch_size != "auto":
            check_positive_int("batch_size", self.batch_size, minimum=2)
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise InvalidArgument("betas", f"must be two numbers in [0, 1), got {list(self.betas)!r}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise InvalidArgument("device", f"must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")

    def batch_size_for(self, num_train: int, carved: bool = False) -> int:
        r"""The batch size on ``num_train`` training pairs: ``batch_size``, or for ``"auto"``

        .. math::
            B = \min\bigl(100,\ \max(2,\ \lfloor n_\text{train} / 4 \rfloor)\bigr)

        Raises:
            ConfigError: a number larger than ``num_train`` (the message gives the value to set, and says
                that the pairs are those left after carving the validation split when ``carved``).
        """
        auto = min(DEFAULT_BATCH_SIZE, max(2, num_train // AUTO_BATCHES_PER_EPOCH))
        if self.batch_size == "auto":
            return auto
        if self.batch_size > num_train:
            left = " left after carving the validation split" if carved else ""
            raise ConfigError(f"train.batch_size = {self.batch_size} exceeds the {num_train} training pairs{left}; "
                              f"use --set train.batch_size={auto} (or train.batch_size = \"auto\" in the recipe)")
        return self.batch_size

    @staticmethod
    def ignored_arguments(given: Mapping[str, Any]) -> Ignored:
        if "steps" in given and "epochs" in given:
            yield "epochs", "with train.steps set (the steps say how long to train)"
        if "patience" not in given and "min_delta" in given:
            yield "min_delta", "without train.patience (it is early stopping's threshold)"
        why = TrainOptions.tf32_ignored_on(given.get("device", DEFAULT_DEVICE))
        if "tf32" in given and why:
            yield "tf32", why

    @staticmethod
    def tf32_ignored_on(device: str) -> str | None:
        """Why ``train.tf32`` has no effect on ``device`` (a device string, or a resolved device's), else ``None``:
        the one tf32 rule, applied to the recipe's device when it is read and to the resolved one when training."""
        return None if str(device).split(":")[0] in ("cuda", "auto") else f"on {device} (TensorFloat-32 is a CUDA mode)"


@dataclass(frozen=True)
class EvalOptions(_Checked):
    """``[eval]``: model selection on ``select_on``, ``"val"`` (``val_fraction`` of the training pairs,
    or the validation split shipped with the data) or ``"test"`` (the reference code's practice,
    for paper parity only); ``batch_size`` rows per forward pass when embedding a split."""

    select_on: Literal["val", "test"] = "val"
    val_fraction: Annotated[float, "(0, 1)"] = 0.1
    batch_size: Annotated[int, check_positive_int] = EMBED_BATCH_SIZE

    @staticmethod
    def ignored_arguments(given: Mapping[str, Any]) -> Ignored:
        if given.get("select_on") == "test" and "val_fraction" in given:
            yield "val_fraction", "with eval.select_on = \"test\" (no validation split is carved)"


#: recipe keys a search space may not tune: the run's identity and seed, the selection split
_UNTUNABLE = ("run.", "tune.", "plugins", "eval.select_on")
_RANGE_KEYS = ("low", "high", "log", "step")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, (list, tuple)) else value


def _thaw(value: Any) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class SearchKey:
    """One key of a search space: a choice among ``choices`` (``kind="choice"``), or a range from
    ``low`` to ``high`` of integers (``"int"``) or numbers (``"float"``), log-uniform or on a ``step`` grid."""

    key: str
    kind: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @classmethod
    def from_entry(cls, key: str, entry: Any, value: Any = None) -> SearchKey:
        """A search-space entry, checked (:class:`InvalidArgument` names ``space."<key>"``);
        ``value`` is the key's value in the recipe, which says whether a range is of integers
        (without one: when its bounds and step are)."""
        name = f'space."{key}"'
        if isinstance(entry, (list, tuple)):
            if not entry:
                raise InvalidArgument(name, "lists no values; give at least one, e.g. [256, 512]")
            return cls(key, "choice", tuple(_freeze(c) for c in entry))
        if not isinstance(entry, Mapping):
            raise InvalidArgument(name, f"must be an array of values or a range {{low = ..., high = ...}}, got {entry!r}")
        for option in entry:
            if option not in _RANGE_KEYS:
                raise InvalidArgument(name, f"has an unknown range option '{option}'; a range has {', '.join(_RANGE_KEYS)}")
        if "low" not in entry or "high" not in entry:
            raise InvalidArgument(name, "needs both low and high, e.g. {low = 1e-5, high = 1e-2}")
        low, high, log, step = entry["low"], entry["high"], entry.get("log", False), entry.get("step")
        if not (_is_number(low) and _is_number(high)):
            raise InvalidArgument(name, f"must have numbers as low and high, got {low!r} and {high!r}")
        if not low < high:
            raise InvalidArgument(name, f"must have low < high, got low = {low!r}, high = {high!r}")
        if not isinstance(log, bool):
            raise InvalidArgument(name, f"must have log = true or false, got {log!r}")
        if log and low <= 0:
            raise InvalidArgument(name, f"is log-uniform and needs low > 0, got {low!r}")
        if step is not None and (not _is_number(step) or step <= 0):
            raise InvalidArgument(name, f"must have a step > 0, got {step!r}")
        if step is not None and log:
            raise InvalidArgument(name, "cannot have both log = true and a step; keep one")
        whole = all(isinstance(v, int) for v in (low, high, step or 1))
        integers = whole if value is None else isinstance(value, int) and not isinstance(value, bool)
        if integers and not whole:
            raise InvalidArgument(name, f"ranges over an integer key; write low, high and step as integers, got {entry!r}")
        return cls(key, "int" if integers else "float", (), low, high, log, step)

    def _labels(self) -> list[Any]:
        return [c if c is None or isinstance(c, (bool, int, float, str)) else repr(_thaw(c)) for c in self.choices]

    def suggest(self, trial: Any) -> Any:
        """This key's value for an Optuna trial (arrays among the choices are proposed by their spelling)."""
        if self.kind == "choice":
            return self.decode(trial.suggest_categorical(self.key, self._labels()))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def decode(self, value: Any) -> Any:
        """A value as Optuna records it -> the recipe value."""
        if self.kind != "choice":
            return value
        return _thaw(self.choices[self._labels().index(value)])

    def describe(self) -> str:
        """``"log-uniform in [1e-05, 0.01]"``, ``"one of 256, 512, 1024"``."""
        if self.kind == "choice":
            return "one of " + ", ".join(str(_thaw(c)) for c in self.choices)
        shape = "log-uniform" if self.log else "uniform"
        what = "integers" if self.kind == "int" else "numbers"
        grid = f", step {self.step:g}" if self.step else ""
        return f"{what}, {shape} in [{self.low:g}, {self.high:g}]{grid}"

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form."""
        return {**asdict(self), "choices": [_thaw(c) for c in self.choices]}


@dataclass(frozen=True)
class TuneOptions(_Checked):
    r"""``[tune]``: the search of ``gcnretrieval tune`` and ``compare --tune`` (a plain run ignores it).

    Every trial trains the recipe with one value per key of ``space`` and is scored by its
    best validation mean mAP; Optuna's TPE sampler proposes the values, and a trial whose
    validation mean mAP after an epoch is below the median of the earlier trials' at that
    epoch is stopped (Optuna's ``MedianPruner``).

    Args:
        space: the recipe keys to tune (dotted, quoted in TOML), each with its values: an
            array is a choice among them (``"model.common_dim" = [256, 512, 1024]``); a table
            ``{low, high}`` is a range, uniform, log-uniform with ``log = true``, or on a grid
            with ``step``. A range draws integers for a key whose value (in the recipe, else its
            default) is an integer, or, for a key without a value, when both bounds are
            integers; numbers otherwise. Empty (default): the learning rate, the common
            dimension, ``train.epochs`` (or ``train.steps``), ``loss.alpha``, ``loss.beta``,
            ``loss.theta`` and ``loss.temperature``, over ranges around the paper's values
            (:func:`gcnretrieval.experiments.tune.default_space`).
        pruning: stop unpromising trials early (default ``true``).
        startup_trials: trials that complete before any trial is pruned (default ``5``).
        warmup_epochs: epochs at the start of every trial that are never pruned (default ``1``).
    """

    space: Mapping[str, Any] = field(default_factory=dict)
    pruning: bool = True
    startup_trials: Annotated[int, _COUNT] = 5
    warmup_epochs: Annotated[int, _COUNT] = 1

    def _check(self) -> None:
        for key, entry in self.space.items():
            parts = str(key).split(".")
            if len(parts) < 2 or not all(part.isidentifier() for part in parts):
                raise InvalidArgument(f'space."{key}"', "must name a dotted recipe key, e.g. \"train.lr\"")
            if str(key).startswith(_UNTUNABLE):
                raise InvalidArgument(f'space."{key}"', "cannot be tuned (the run's name and seed and the selection "
                                      "split are fixed)")
            SearchKey.from_entry(str(key), entry)

    @staticmethod
    def ignored_arguments(given: Mapping[str, Any]) -> Ignored:
        if given.get("pruning") is False:
            for key in ("startup_trials", "warmup_epochs"):
                if key in given:
                    yield key, "with tune.pruning = false (it configures the pruning)"

