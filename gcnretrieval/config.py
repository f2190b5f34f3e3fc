"""Recipes: TOML files read into frozen dataclasses, strictly checked.

A recipe has the top-level list ``plugins`` (modules imported before the encoder is
built, so that they can register their own encoders) and the tables ``[run]``,
``[data]``, ``[graph]``, ``[encoder]``, ``[model]``, ``[loss]``, ``[train]`` and
``[eval]``. Every key is checked: an unknown key (at any level) or a value of the wrong
type raises :class:`~gcnretrieval.errors.ConfigError` with a did-you-mean hint, and
impossible hyper-parameters (``train.epochs = 0``, ``loss.theta = 1.5``) are refused
with one line naming the key. Three tables are free-form and passed through as keyword
options, checked later by the code that receives them: ``data.synthetic`` (options of
:func:`gcnretrieval.data.make_synthetic`), ``encoder.options`` (options of
:func:`gcnretrieval.encoders.build_encoder`) and ``graph.options`` (extra options of
:func:`gcnretrieval.graphs.build_label_graph`).

Overrides (``--set key=value`` on the command line, ``overrides`` in Python) use dotted
keys. Their values are parsed as TOML values (``train.lr=1e-4``, ``train.betas=[0.9,
0.999]``, ``encoder.name="gcn"``); a value that is not valid TOML is taken as a plain
string, so ``encoder.name=gcn`` and ``data.path=data/x.npz`` work without quotes. A value
that starts like a TOML string, array or table but does not parse is an error.

The resolved configuration (:meth:`Config.to_dict`) is plain JSON: ``None`` stands for
an unset optional key (TOML has no null; leave the key out of a recipe instead).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcnretrieval.errors import ConfigError

__all__ = [
    "Config",
    "DataConfig",
    "EncoderConfig",
    "EvalConfig",
    "GraphConfig",
    "LossConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "load_config",
    "parse_override",
    "read_recipe",
    "to_toml",
    "unknown_key",
]


# --- sections -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: naming and seeding.

    Args:
        name: run name; the run directory is ``<out_dir>/<name>/`` (default ``"run"``).
        seed: seed of every random draw (model init, validation split, batches,
            synthetic data); leave it out to draw one at random, recorded in
            ``config.resolved.json`` (default ``None``).
        out_dir: parent folder of run directories (default ``"runs"``).
    """

    name: str = "run"
    seed: int | None = None
    out_dir: str = "runs"


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the pairs come from.

    Args:
        source: ``"files"`` (default) reads ``path``; ``"synthetic"`` generates data
            with :func:`gcnretrieval.data.make_synthetic` from the ``synthetic`` table;
            ``"bundled"`` loads the dataset shipped with the package named ``dataset``
            (``mirflickr-mini``, see :func:`gcnretrieval.data.load_bundled`).
        dataset: dataset name. A catalog name (``mirflickr``, ``nuswide``, ``mscoco``)
            loads through the catalog (label count checked, label names from the shipped
            vocabulary) from ``path`` or, by default, ``data/<dataset>/``.
        path: a ``.npz`` file or a directory of ``.mat``/``.npy`` files.
        synthetic: options of :func:`~gcnretrieval.data.make_synthetic` (``seed``
            defaults to ``run.seed``).
    """

    source: str = "files"
    dataset: str | None = None
    path: str | None = None
    synthetic: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GraphConfig:
    """``[graph]``: the label graph, built from the training labels only.

    Args:
        kind: ``"cooccurrence"`` (default), ``"embedding"`` or ``"adaptive"`` (the learned
            graph of I-GNN on an embedding prior).
        threshold: binarisation threshold :math:`t` in (0, 1] (default ``0.4``).
        node_features: ``"glove"`` (word vectors of the label names:
            ``word_vectors``, else the shipped 300-d GloVe vocabularies, else GloVe-6B
            50-d; see :func:`~gcnretrieval.graphs.label_node_features`), ``"random"``
            (seeded Gaussian rows of ``node_feature_dim`` columns), ``"onehot"``
            (identity rows) or ``"auto"`` (default: ``glove`` when a word-vector source
            covers every label name, else ``random`` with a warning).
        node_feature_dim: columns of ``random`` node features (default ``300``).
        vocabulary: the one shipped vocabulary ``glove`` looks names up in (default:
            all of them, by name).
        word_vectors: a word-vector file in GloVe's text format (``word v1 v2 ...``),
            then the only source of ``glove`` vectors (default ``None``).
        drop_edges: keep only the self-loops (an edgeless-graph ablation) (default ``false``).
        options: extra options of :func:`~gcnretrieval.graphs.build_label_graph`
            (``reweight``, ``edge_value``, ``self_loops``) or of ``AdaptiveLabelGraph``.
    """

    kind: str = "cooccurrence"
    threshold: float = 0.4
    node_features: str = "auto"
    node_feature_dim: int = 300
    vocabulary: str | None = None
    word_vectors: str | None = None
    drop_edges: bool = False
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EncoderConfig:
    """``[encoder]``: the label encoder (a registered name).

    Args:
        name: registered encoder name (default ``"l2gcn"``).
        num_layers: depth :math:`L` (default ``5``).
        options: further keyword options of the encoder (``hidden_channels``, ``act``,
            ``dropout``, ``jk``, encoder-specific ones).
    """

    name: str = "l2gcn"
    num_layers: int = 5
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: the cross-modal model around the encoder.

    Args:
        common_dim: common dimension :math:`d` (default ``1024``).
        projector_layers: Linear-ReLU layers per projector (default ``1``).
        grl_coefficient: gradient reversal coefficient (default ``1.0``).
    """

    common_dim: int = 1024
    projector_layers: int = 1
    grl_coefficient: float = 1.0


@dataclass(frozen=True)
class LossConfig:
    """``[loss]``: the objective :math:`L_{CS} + \\alpha L_{cla} + \\beta L_{adv}`.

    Args:
        alpha: classification weight (default ``1.1``).
        beta: adversarial weight (default ``2.2``).
        theta: initial (or fixed) Circle-Soft weight :math:`\\lambda` in [0, 1] (default ``0.6``).
        condition: ``"all"`` (default), ``"cs_only"``, ``"no_cla"``, ``"no_adv"``, ``"no_cs"``.
        lambda_mode: ``"learned"`` (default) or ``"fixed"``.
        theta_on: ``"circle"`` (default) or ``"soft"``.
        m: Circle margin (default ``0.25``).
        gamma: Circle scale (default ``16.0``).
        reduction: Circle reduction ``"global"`` (default) or ``"per_anchor"``.
        temperature: soft contrastive :math:`\\tau` (default ``0.22``).
        intra_weight: soft contrastive :math:`\\gamma_s` (default ``0.14``).
        view_weight: adversarial :math:`\\mu` (default ``1.0``).
    """

    alpha: float = 1.1
    beta: float = 2.2
    theta: float = 0.6
    condition: str = "all"
    lambda_mode: str = "learned"
    theta_on: str = "circle"
    m: float = 0.25
    gamma: float = 16.0
    reduction: str = "global"
    temperature: float = 0.22
    intra_weight: float = 0.14
    view_weight: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """``[train]``: the optimisation loop.

    Args:
        epochs: passes over the training split (default ``40``).
        batch_size: pairs per mini-batch (default ``100``).
        lr: learning rate (default ``5e-5``).
        betas: Adam betas (default ``[0.5, 0.999]``).
        weight_decay: (default ``0.0``).
        optimizer: ``"adam"`` (default), ``"adamw"`` or ``"sgd"`` (``betas[0]`` is then
            the momentum).
        device: ``"auto"`` (CUDA when available, else CPU; default) or a torch device
            string (``"cpu"``, ``"cuda:1"``).
        deterministic: deterministic algorithms and seeded everything, so that a resumed
            run equals an uninterrupted one (default ``false``).
        drop_last: drop the last incomplete batch of each epoch (default ``false``; a
            last batch of a single pair is always dropped, BatchNorm needs two).
        fused_optimizer: use the optimizer's fused kernel, one pass over the ~42 M
            parameters instead of several (default ``true``; 3-5x faster updates on CPU).
            ``false`` selects the ``foreach`` implementation, bit-identical to PyTorch's
            single-tensor loop; the two agree up to float32 rounding. Where a device has
            no fused kernel the ``foreach`` one is used.
        reuse_host_memory: when training on the CPU, let :func:`gcnretrieval.run` make
            glibc keep freed memory for reuse instead of returning it to the system after
            every step (default ``true``; see
            :mod:`gcnretrieval.training.host_memory`). Results are unaffected.
    """

    epochs: int = 40
    batch_size: int = 100
    lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    optimizer: str = "adam"
    device: str = "auto"
    deterministic: bool = False
    drop_last: bool = False
    fused_optimizer: bool = True
    reuse_host_memory: bool = True


@dataclass(frozen=True)
class EvalConfig:
    """``[eval]``: model selection and evaluation.

    Args:
        select_on: ``"val"`` (default: a validation split carved from the training
            split, or the one shipped with the data) or ``"test"`` (the reference code's
            practice, for paper parity only; recorded in the results).
        val_fraction: share of the training pairs carved out for validation (default ``0.1``).
        batch_size: rows per forward pass when embedding a split (default ``1024``).
    """

    select_on: str = "val"
    val_fraction: float = 0.1
    batch_size: int = 1024


@dataclass(frozen=True)
class Config:
    """A whole recipe: see the module docstring and each section's class."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plugins: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable nested dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    def replace(self, **changes: Any) -> Config:
        """A copy with dotted keys changed and checked (``replace(**{"train.epochs": 2})``)."""
        return config_from_dict(apply_overrides(self.to_dict(), changes))


_SECTIONS = ("run", "data", "graph", "encoder", "model", "loss", "train", "eval")
_FREE_FORM = {"data.synthetic", "graph.options", "encoder.options"}

_CHOICES = {
    "data.source": ("files", "synthetic", "bundled"),
    "graph.kind": ("cooccurrence", "embedding", "adaptive"),
    "graph.node_features": ("auto", "glove", "random", "onehot"),
    "loss.condition": ("all", "cs_only", "no_cla", "no_adv", "no_cs"),
    "loss.lambda_mode": ("learned", "fixed"),
    "loss.theta_on": ("circle", "soft"),
    "loss.reduction": ("global", "per_anchor"),
    "train.optimizer": ("adam", "adamw", "sgd"),
    "eval.select_on": ("val", "test"),
}


# --- reading --------------------------------------------------------------------------


def read_recipe(path: str | Path) -> dict[str, Any]:
    """Read a recipe file into a plain dict (no checking)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist; give the path of a .toml recipe (see recipes/)")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"recipe {path} is not valid TOML: {err}") from None


def load_config(
    recipe: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | list[str] | tuple[str, ...] | None = None,
) -> Config:
    """Read and check a recipe.

    Args:
        recipe: path of a TOML file, or a nested dict with the same structure.
        overrides: ``{"train.epochs": 2}`` (values used as given; strings are not
            parsed) or a list of ``"key=value"`` strings (values parsed as TOML, see
            :func:`parse_override`).
    """
    raw = read_recipe(recipe) if isinstance(recipe, (str, Path)) else _copy(dict(recipe))
    return config_from_dict(apply_overrides(raw, overrides))


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``"key=value"``: the value as TOML, else as a plain string (bare words, paths)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value; write e.g. --set train.epochs=2")
    key, _, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)*", key):
        raise ConfigError(f"override key {key!r} is not a dotted recipe key; write e.g. --set train.lr=1e-4")
    if value == "":
        raise ConfigError(f"override {key}= has no value; write e.g. --set {key}=VALUE")
    try:
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        if value[0] in "\"'[{":
            raise ConfigError(f"override {key}={value} is not a valid TOML value; check its quotes and brackets") from None
        return key, value


def apply_overrides(
    raw: dict[str, Any], overrides: Mapping[str, Any] | list[str] | tuple[str, ...] | None
) -> dict[str, Any]:
    """Set dotted keys in a nested recipe dict (a copy); unknown keys are caught later."""
    raw = _copy(raw)
    if not overrides:
        return raw
    items = [parse_override(o) for o in overrides] if isinstance(overrides, (list, tuple)) else list(overrides.items())
    for key, value in items:
        parts = key.split(".")
        table = raw
        for depth, part in enumerate(parts[:-1]):
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"cannot set {key}: '{'.'.join(parts[:depth + 1])}' is a value, not a table")
            table = nxt
        table[parts[-1]] = _plain(value)
    return raw


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """Check a nested recipe dict and build the frozen :class:`Config`."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a recipe must be a table of sections, got {type(raw).__name__}")
    known = list(_SECTIONS) + ["plugins"]
    for key in raw:
        if key not in known:
            raise unknown_key(str(key), known)
    sections: dict[str, Any] = {}
    for name in _SECTIONS:
        cls = {f.name: f for f in dataclasses.fields(Config)}[name].default_factory
        value = raw.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"recipe key '{name}' must be a table ([{name}]), got {_type_name(value)}")
        sections[name] = _build_section(name, cls, value)
    plugins = raw.get("plugins", [])
    if isinstance(plugins, str):
        plugins = [plugins]
    if not isinstance(plugins, (list, tuple)) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"recipe key 'plugins' must be a list of module names, got {plugins!r}")
    config = Config(plugins=tuple(plugins), **sections)
    _check_values(config)
    return config


# --- checking -------------------------------------------------------------------------


def unknown_key(key: str, choices: list[str], prefix: str = "") -> ConfigError:
    """``ConfigError("unknown key 'prefix.key' — did you mean 'prefix.choice'?")`` (or listing the choices)."""
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    known = ", ".join(prefix + c for c in choices)
    hint = f" — did you mean '{prefix}{close[0]}'?" if close else f"; known keys: {known}"
    return ConfigError(f"unknown key '{prefix}{key}'{hint}")


def _build_section(section: str, cls: type, values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            raise unknown_key(str(key), names, prefix=f"{section}.")
    kwargs = {}
    for name in names:
        if name in values:
            kwargs[name] = _coerce(f"{section}.{name}", values[name], hints[name])
    return cls(**kwargs)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", tuple: "an array", dict: "a table"}.get(type(value), type(value).__name__) + f" ({value!r})"


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the annotation ``hint``; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"recipe key '{key}' must be true or false, got {_type_name(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"recipe key '{key}' must be an integer, got {_type_name(value)}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"recipe key '{key}' must be a number, got {_type_name(value)}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"recipe key '{key}' must be a string, got {_type_name(value)}")
    if hint is dict or origin is dict:
        if isinstance(value, Mapping):
            return _copy(dict(value))
        raise ConfigError(f"recipe key '{key}' must be a table, got {_type_name(value)}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"recipe key '{key}' must be an array, got {_type_name(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(key, v, args[0]) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"recipe key '{key}' must be an array of {len(args)} values, got {list(value)!r}")
        return tuple(_coerce(key, v, a) for v, a in zip(value, args))
    raise TypeError(f"unsupported annotation {hint!r} for {key}")  # pragma: no cover - programming error


def _fail(key: str, rule: str, value: Any) -> None:
    raise ConfigError(f"recipe key '{key}' {rule}, got {value!r}")


def _check_values(c: Config) -> None:
    """Refuse impossible values, one key at a time, in recipe order."""
    for key, choices in _CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(c, section), name)
        if value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"recipe key '{key}' must be one of {', '.join(choices)}, got {value!r}{hint}")
    if not c.run.name or "/" in c.run.name or "\\" in c.run.name or c.run.name in (".", ".."):
        _fail("run.name", "must be a non-empty name without path separators", c.run.name)
    if c.run.seed is not None and not 0 <= c.run.seed < 2**63:
        _fail("run.seed", "must be a non-negative integer below 2**63", c.run.seed)
    if c.data.source == "files" and c.data.path is None and c.data.dataset is None:
        raise ConfigError("recipe needs 'data.path' (a .npz file or a data directory), 'data.dataset' "
                          "(a catalog name) or data.source = \"synthetic\"")
    if c.data.source == "bundled" and c.data.dataset is None:
        raise ConfigError("data.source = \"bundled\" needs data.dataset, the name of a bundled dataset (e.g. \"mirflickr-mini\")")
    if not 0.0 < c.graph.threshold <= 1.0:
        _fail("graph.threshold", "must be in (0, 1]", c.graph.threshold)
    if c.graph.node_feature_dim < 1:
        _fail("graph.node_feature_dim", "must be at least 1", c.graph.node_feature_dim)
    if c.encoder.num_layers < 1:
        _fail("encoder.num_layers", "must be at least 1", c.encoder.num_layers)
    if "num_layers" in c.encoder.options:
        raise ConfigError("set the depth with 'encoder.num_layers', not 'encoder.options.num_layers'")
    if c.model.common_dim < 1:
        _fail("model.common_dim", "must be at least 1", c.model.common_dim)
    if c.model.projector_layers < 1:
        _fail("model.projector_layers", "must be at least 1", c.model.projector_layers)
    if not (math.isfinite(c.model.grl_coefficient) and c.model.grl_coefficient >= 0):
        _fail("model.grl_coefficient", "must be a finite number >= 0", c.model.grl_coefficient)
    for key in ("alpha", "beta", "m", "intra_weight", "view_weight"):
        value = getattr(c.loss, key)
        if not (math.isfinite(value) and value >= 0):
            _fail(f"loss.{key}", "must be a finite number >= 0", value)
    if not 0.0 <= c.loss.theta <= 1.0:
        _fail("loss.theta", "must be in [0, 1]", c.loss.theta)
    for key in ("gamma", "temperature"):
        value = getattr(c.loss, key)
        if not (math.isfinite(value) and value > 0):
            _fail(f"loss.{key}", "must be a number > 0", value)
    if c.train.epochs < 1:
        _fail("train.epochs", "must be at least 1", c.train.epochs)
    if c.train.batch_size < 2:
        _fail("train.batch_size", "must be at least 2 (BatchNorm and the pair losses need two pairs)", c.train.batch_size)
    if not (math.isfinite(c.train.lr) and c.train.lr > 0):
        _fail("train.lr", "must be a number > 0", c.train.lr)
    if not all(0.0 <= b < 1.0 for b in c.train.betas):
        _fail("train.betas", "must be two numbers in [0, 1)", list(c.train.betas))
    if not (math.isfinite(c.train.weight_decay) and c.train.weight_decay >= 0):
        _fail("train.weight_decay", "must be a number >= 0", c.train.weight_decay)
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", c.train.device):
        _fail("train.device", "must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", c.train.device)
    if not 0.0 < c.eval.val_fraction < 1.0:
        _fail("eval.val_fraction", "must be in (0, 1)", c.eval.val_fraction)
    if c.eval.batch_size < 1:
        _fail("eval.batch_size", "must be at least 1", c.eval.batch_size)


# --- helpers --------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Nested dicts/lists of JSON scalars (tuples -> lists)."""
    return _copy(value)


def to_toml(raw: Mapping[str, Any]) -> str:
    """Write a nested recipe dict as TOML (``None`` values are left out: TOML has no null)."""
    lines: list[str] = []
    _toml_table(raw, [], lines)
    return "\n".join(lines).strip() + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_\-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def _toml_table(table: Mapping[str, Any], prefix: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping) and v is not None}
    tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    if prefix and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_toml_key(p) for p in prefix) + "]")
    for key, value in scalars.items():
        lines.append(f"{_toml_key(str(key))} = {_toml_value(value)}")
    for key, value in tables.items():
        _toml_table(value, prefix + [str(key)], lines)
