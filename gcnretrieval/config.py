"""Recipes: a TOML file (or a packaged recipe's name) read into a frozen :class:`Config`.

Every table of a recipe is the keyword arguments of one constructor, which owns the
defaults and validates the values (``[run]``, ``[data]``, ``[graph]``, ``[train]``,
``[eval]``, ``[tune]``: the classes of :mod:`gcnretrieval.options`; ``[encoder]``: ``name`` and the
options of that encoder; ``[model]``: ``name`` (default ``"label_graph"``,
:class:`~gcnretrieval.models.CrossModalModel`) and the options of that model; ``[loss]``: ``name``
(default ``"circle_soft"``, :class:`~gcnretrieval.losses.Objective`) and the options of that
objective). This module knows only keys and
types, read from those signatures. Each mistake is one line: an unknown key (with a
did-you-mean hint), a wrong type, an impossible value (reported by its constructor under
the recipe key), or a key that the chosen options would ignore. Overrides use dotted keys;
command-line values are read as TOML, or else as plain strings (``encoder.name=gcn``).
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.resources
import inspect
import os
import sys
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import gcnretrieval.methods  # noqa: F401  (registers the methods' models and objectives)
from gcnretrieval.encoders import DEFAULT_ENCODER, ENCODERS
from gcnretrieval.errors import ConfigError, GcnRetrievalError, InvalidArgument
from gcnretrieval.losses.registry import DEFAULT_OBJECTIVE, OBJECTIVES
from gcnretrieval.models.registry import DEFAULT_MODEL, MODELS, SUPPLIED, uses_label_graph
from gcnretrieval.options import DataOptions, EvalOptions, GraphOptions, RunOptions, TrainOptions, TuneOptions
from gcnretrieval.readers import read_toml

__all__ = ["IDENTITY_KEYS", "Config", "Recipe", "Table", "check_same_config", "construct", "first_difference", "flatten", "import_plugins", "load_config",
           "packaged_recipes", "parse_overrides", "read_recipe", "recipe_file", "space_samples", "to_toml", "unknown_key",
           "with_seed", "with_absolute_paths"]

SECTIONS = ("run", "data", "graph", "encoder", "model", "loss", "train", "eval", "tune")
_OPTION_CLASSES = {"run": RunOptions, "data": DataOptions, "graph": GraphOptions, "train": TrainOptions,
                   "eval": EvalOptions, "tune": TuneOptions}
_REQUIRED = inspect.Parameter.empty


class Table(Mapping[str, Any]):
    """A read-only table of a recipe: a mapping with attribute access (``config.loss.alpha``)."""

    def __init__(self, values: Mapping[str, Any] = ()) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._values:
            raise AttributeError(name)
        return self._values[name]

    def __repr__(self) -> str:
        return f"Table({self._values!r})"


@dataclass(frozen=True)
class Config:
    """A whole recipe, checked; see the module docstring and each table's constructor."""

    run: RunOptions
    data: DataOptions
    graph: GraphOptions
    encoder: Table
    model: Table
    loss: Table
    train: TrainOptions
    eval: EvalOptions
    tune: TuneOptions = dataclasses.field(default_factory=TuneOptions)
    plugins: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable nested dict (tuples become lists; ``None`` marks an unset key); without
        ``graph`` and ``encoder`` for a model that takes no label graph."""
        tree: dict[str, Any] = {"plugins": list(self.plugins)}
        graphless = not uses_label_graph(MODELS.get(self.model.name))
        for name in SECTIONS:
            if graphless and name in ("graph", "encoder"):
                continue  # a model without a label graph reads neither table
            section = getattr(self, name)
            values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)} \
                if dataclasses.is_dataclass(section) else dict(section)
            tree[name] = _copy(values)
        return tree

    def replace(self, **changes: Any) -> Config:
        """A copy with dotted keys changed and checked (``replace(**{"train.epochs": 2})``)."""
        return load_config(self.to_dict(), changes)


# --- recipes: files or packaged names -------------------------------------------------


def packaged_recipes() -> dict[str, Path]:
    """The recipes shipped in the package, by name (``{"demo": .../demo.toml, ...}``)."""
    folder = importlib.resources.files("gcnretrieval.recipes")
    return {entry.name[:-5]: Path(str(entry)) for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}


def recipe_file(recipe: str | Path) -> Path:
    """The file of a recipe given by path, or by the name of a packaged recipe (``"demo"``)."""
    path = Path(recipe)
    if path.is_file():
        return path
    known = packaged_recipes()
    name = path.name[:-5] if path.name.endswith(".toml") else path.name
    if str(recipe) in (name, f"{name}.toml") and name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" — did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"recipe {recipe} does not exist{hint}; give the path of a .toml file or the name of "
                      f"a packaged recipe: {', '.join(known)} (see gcnretrieval recipes)")


def read_recipe(recipe: str | Path) -> dict[str, Any]:
    """A recipe file, or a packaged recipe by name, read into a plain dict (not checked); its folder
    is then searched for the modules its ``plugins`` name (:func:`import_plugins`)."""
    path = recipe_file(recipe)
    folder = path.resolve().parent
    if folder not in _RECIPE_FOLDERS:
        _RECIPE_FOLDERS.insert(0, folder)
    return read_toml(path, "TOML recipe", "write the recipe as UTF-8 TOML (see recipes/README.md)", ConfigError)


# --- overrides ------------------------------------------------------------------------


def _parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"``: the value as TOML, else as a plain string (bare words, paths)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value; write e.g. --set train.epochs=2")
    key, _, value = (part.strip() for part in text.partition("="))
    if not all(part.isidentifier() for part in key.split(".")):
        raise ConfigError(f"override key {key!r} is not a dotted recipe key; write e.g. --set train.lr=1e-4")
    if value == "":
        raise ConfigError(f"override {key}= has no value; write e.g. --set {key}=VALUE")
    try:
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        if value[0] in "\"'[{":
            raise ConfigError(f"override {key}={value} is not a valid TOML value; check its quotes and brackets") from None
        return key, value


def parse_overrides(texts: Iterable[str]) -> dict[str, Any]:
    """Command-line overrides (``["train.epochs=2", "encoder.name=gcn"]``) as one dict of dotted keys,
    each value read as TOML, else as a plain string; the library takes that dict."""
    return dict(_parse_override(text) for text in texts)


def _apply_overrides(raw: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    tree = _copy(raw)
    for key, value in changes.items():
        parts = key.split(".")
        table = tree
        for depth, part in enumerate(parts[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"cannot set {key}: '{'.'.join(parts[:depth + 1])}' is a value, not a table")
        table[parts[-1]] = _copy(value)
    return tree


# --- loading --------------------------------------------------------------------------


def load_config(recipe: RecipeLike, overrides: Mapping[str, Any] | None = None) -> Config:
    """The checked configuration of a recipe (a path, a packaged name, a nested dict or a :class:`Recipe`)
    with ``overrides`` (dotted keys) laid over it: ``Recipe.of(recipe, overrides).config``."""
    return Recipe.of(recipe, overrides).config


def _check(raw: Mapping[str, Any], changes: Mapping[str, Any]) -> Config:
    """Apply the overrides to a recipe's tables and check every table."""
    tree = _apply_overrides(raw, changes)
    for key in tree:
        if key not in (*SECTIONS, "plugins"):
            raise unknown_key(str(key), [*SECTIONS, "plugins"])
    plugins = tree.get("plugins", [])
    plugins = [plugins] if isinstance(plugins, str) else plugins
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"recipe key 'plugins' must be a list of module names, got {plugins!r}")
    import_plugins(plugins)
    sections = {}
    for name in SECTIONS:
        given = tree.get(name, {})
        if not isinstance(given, Mapping):
            raise ConfigError(f"recipe key '{name}' must be a table ([{name}]), got {_type_name(given)}")
        sections[name] = _section(name, given)
    model = sections["model"].name
    if not uses_label_graph(MODELS.get(model)):
        for table in ("graph", "encoder"):
            if tree.get(table):
                raise ConfigError(f"recipe table [{table}] has no effect with model.name = \"{model}\" (it uses no "
                                  f"label graph); remove it")
    _check_space({key: value for key, value in tree.items() if key != "tune"}, sections["tune"])
    return Config(plugins=tuple(plugins), **sections)


def space_samples(entry: Any) -> list[Any]:
    """The values a search-space entry is checked with: every choice, or both ends of a range."""
    return list(entry) if isinstance(entry, (list, tuple)) else [entry["low"], entry["high"]]


def _check_space(tree: Mapping[str, Any], tune: TuneOptions) -> None:
    """Every key of ``[tune.space]`` is a recipe key that takes each of its sample values."""
    for key, entry in tune.space.items():
        for value in space_samples(entry):
            try:
                load_config(tree, {key: value})
            except GcnRetrievalError as err:
                raise ConfigError(f"recipe key 'tune.space.\"{key}\"' cannot be tuned with {key} = {value!r}: "
                                  f"{err}") from None


#: folders of the recipe files read so far (newest first), searched for plugin modules
_RECIPE_FOLDERS: list[Path] = []


def import_plugins(names: Iterable[str]) -> None:
    """Import the recipe's ``plugins`` modules (they register encoders on import).

    A module is found as Python finds a script's modules: an installed module, else a module
    (``name.py`` or a package folder) in the folder of a recipe file read by :func:`read_recipe`
    or in the working directory. Those folders are on ``sys.path`` only while the module is
    imported."""
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name.split(".")[0]:  # the plugin was found but imports something missing
                raise ConfigError(f"cannot import plugin '{name}' listed in 'plugins' ({err}); install it or fix "
                                  "the recipe") from None
            _import_beside(name)
        except ImportError as err:
            raise ConfigError(f"cannot import plugin '{name}' listed in 'plugins' ({err}); install it or fix the recipe") from None


def _import_beside(name: str) -> None:
    """Import ``name`` from the recipe folders or the working directory."""
    folders = [str(folder) for folder in dict.fromkeys([*_RECIPE_FOLDERS, Path.cwd().resolve()])]
    saved = list(sys.path)
    sys.path[:0] = folders
    try:
        importlib.import_module(name)
    except ImportError as err:
        raise ConfigError(f"cannot import plugin '{name}' listed in 'plugins' ({err}); it is neither installed nor "
                          f"a module in {' or '.join(folders)}; install it or fix the recipe") from None
    finally:
        sys.path[:] = saved


def _target(name: str, given: Mapping[str, Any]) -> tuple[Callable, dict[str, tuple[Any, Any]], str]:
    """The constructor table ``name`` configures, its keyword parameters, and how to name it in errors."""
    if name in _OPTION_CLASSES:
        return _OPTION_CLASSES[name], parameters(_OPTION_CLASSES[name]), ""
    if name == "encoder":
        encoder = _coerce("encoder.name", given.get("name", DEFAULT_ENCODER), str)
        cls = ENCODERS.get(encoder)
        return cls, {"name": (str, DEFAULT_ENCODER), **cls.option_types()}, f" of encoder '{encoder}'"
    registry, default, skip = (MODELS, DEFAULT_MODEL, SUPPLIED) if name == "model" else \
        (OBJECTIVES, DEFAULT_OBJECTIVE, ())
    chosen = _coerce(f"{name}.name", given.get("name", default), str)
    cls = registry.get(chosen)
    context = "" if chosen == default else f" of {registry.kind} '{chosen}'"
    return cls, {"name": (str, default), **parameters(cls, skip)}, context


def _section(name: str, given: Mapping[str, Any]) -> Any:
    target, params, context = _target(name, given)
    values = _read_table(name, given, params, context)
    for key, value in values.items():
        # a nested table: keyword arguments of another callable, as given (a table without one checks its own)
        if isinstance(value, Mapping) and hasattr(target, "table_target"):
            inner, skip = target.table_target(key, given)
            values[key] = Table(_read_table(f"{name}.{key}", value, parameters(inner, skip), defaults=False))
    # keys set to their default change nothing (and every key of a resolved configuration is set)
    changed = {key: value for key, value in values.items() if key in given and value != params[key][1]}
    for key, because in getattr(target, "ignored_arguments", lambda given: ())(changed):
        raise ConfigError(f"recipe key '{name}.{key}' has no effect {because}; remove it")
    if name in _OPTION_CLASSES:
        return construct(name, target, values)
    if name == "loss":  # cheap: an objective's values are checked now, before any data is read
        construct(name, target, {key: value for key, value in values.items() if key != "name"})
    return Table(values)


def construct(section: str, target: Callable, values: Mapping[str, Any], *,
              owners: Mapping[str, Iterable[str]] | None = None, **supplied: Any) -> Any:
    """``target(**supplied, **values)``, with an impossible value reported under its recipe key.

    ``owners`` maps other sections to the argument names that come from them
    (``{"encoder": encoder_options}``), so an error is named after the right table.
    """
    try:
        return target(**supplied, **values)
    except InvalidArgument as err:
        owner = next((name for name, keys in (owners or {}).items() if err.argument in keys), section)
        raise ConfigError(f"recipe key '{owner}.{err.argument}' {err.rule}") from None


# --- keys and types from signatures ---------------------------------------------------


def parameters(target: Callable, skip: Iterable[str] = ()) -> dict[str, tuple[Any, Any]]:
    """``{name: (type, default)}`` of the keyword parameters of ``target`` (``skip`` left out)."""
    function = target.__init__ if isinstance(target, type) else target
    hints = typing.get_type_hints(function)
    factories = {f.name: f.default_factory for f in dataclasses.fields(target)
                 if f.default_factory is not dataclasses.MISSING} if dataclasses.is_dataclass(target) else {}
    out = {}
    for parameter in inspect.signature(target).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or parameter.name in skip:
            continue
        default = factories[parameter.name]() if parameter.name in factories else parameter.default
        out[parameter.name] = (hints.get(parameter.name, Any), default)
    return out


def _read_table(section: str, given: Mapping[str, Any], params: Mapping[str, tuple[Any, Any]],
                context: str = "", defaults: bool = True) -> dict[str, Any]:
    """Check the keys and value types of one table; with ``defaults``, fill in the keys left out."""
    for key in given:
        if key not in params:
            raise unknown_key(str(key), list(params), prefix=f"{section}.", context=context)
    values = {}
    for key, (hint, default) in params.items():
        if key in given:
            values[key] = _coerce(f"{section}.{key}", given[key], hint)
        elif defaults and default is not _REQUIRED:
            values[key] = default
    return values


def unknown_key(key: str, choices: list[str], prefix: str = "", context: str = "") -> ConfigError:
    """``ConfigError("unknown key 'prefix.key' — did you mean 'prefix.choice'?")`` (or listing the keys)."""
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    hint = f" — did you mean '{prefix}{close[0]}'?" if close else f"; known keys: {', '.join(prefix + c for c in choices)}"
    return ConfigError(f"unknown key '{prefix}{key}'{context}{hint}")


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
             tuple: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__) + f" ({value!r})"


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the annotation ``hint`` (ints are accepted for floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        members = [a for a in args if a is not type(None) and _representable(a)]
        errors = []
        for member in members:
            try:
                return _coerce(key, value, member)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if origin is typing.Literal:
        if value in args:
            return value
        if not isinstance(value, bool) and str(value) in args:  # precision = 32 for "32"
            return str(value)
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1, cutoff=0.5)
        hint_text = f" — did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"recipe key '{key}' must be one of {', '.join(map(str, args))}, got {value!r}{hint_text}")
    checks = {bool: ("true or false", lambda v: isinstance(v, bool)),
              int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
              float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
              str: ("a string", lambda v: isinstance(v, str))}
    if hint in checks:
        what, ok = checks[hint]
        if not ok(value):
            raise ConfigError(f"recipe key '{key}' must be {what}, got {_type_name(value)}")
        return float(value) if hint is float else value
    if hint in (dict, Mapping) or origin in (dict, Mapping, typing.Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"recipe key '{key}' must be a table, got {_type_name(value)}")
        return _copy(value)
    if origin in (tuple, list, Sequence, typing.Sequence) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"recipe key '{key}' must be an array, got {_type_name(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"recipe key '{key}' must be an array of {len(args)} values, got {list(value)!r}")
            return tuple(_coerce(key, v, a) for v, a in zip(value, args))
        inner = args[0] if args else Any
        return tuple(_coerce(key, v, inner) for v in value)
    raise TypeError(f"recipe key {key}: unsupported annotation {hint!r}")  # a constructor the recipe cannot feed


def _representable(hint: Any) -> bool:
    """Whether a recipe value (TOML) can be of type ``hint`` (not a module, class or function)."""
    origin = typing.get_origin(hint)
    return hint in (Any, bool, int, float, str, dict, list, tuple, Mapping) or origin in (
        typing.Literal, tuple, list, dict, Sequence, Mapping, typing.Union, types.UnionType)


# --- resolved configurations ----------------------------------------------------------


def with_seed(config: Config) -> Config:
    """``config`` with ``run.seed`` set (a fresh random seed when the recipe has none)."""
    if config.run.seed is not None:
        return config
    return dataclasses.replace(config, run=dataclasses.replace(config.run, seed=int.from_bytes(os.urandom(4), "little")))


def with_absolute_paths(config: Config) -> Config:
    """Data paths made absolute (the catalog default ``data/<dataset>/`` spelled out)."""
    data = config.data
    if data.source != "files":
        return config
    path = data.path if data.path is not None else str(Path("data") / data.dataset.lower())
    return dataclasses.replace(config, data=dataclasses.replace(data, path=str(Path(path).expanduser().resolve())))


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}`` (empty tables stay as values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


#: the keys that name a run rather than say what it computes: its name and its folder
IDENTITY_KEYS = ("run.name", "run.out_dir")


def check_same_config(saved: Config, asked: Config, *, where: str, fix: str, may_differ: Iterable[str] = ()) -> None:
    """Refuse a folder whose saved configuration differs from the asked one in a key other than the
    run's identity (:data:`IDENTITY_KEYS`), ``may_differ`` and, when ``asked`` leaves it unset, the
    seed: ``ConfigError("<where> with '<key>' = <saved> but now asks for <asked>; <fix>")``."""
    ignore = (*IDENTITY_KEYS, *may_differ) + (("run.seed",) if asked.run.seed is None else ())
    difference = first_difference(saved, asked, ignore)
    if difference is not None:
        key, old, new = difference
        raise ConfigError(f"{where} with '{key}' = {old!r} but now asks for {new!r}; {fix}")


def first_difference(a: Config, b: Config, ignore: Iterable[str] = ()) -> tuple[str, Any, Any] | None:
    """The first dotted key (sorted) whose value differs between two configurations, or ``None``."""
    flat_a, flat_b = flatten(a.to_dict()), flatten(b.to_dict())
    for key in sorted(set(flat_a) | set(flat_b)):
        if key not in ignore and flat_a.get(key) != flat_b.get(key):
            return key, flat_a.get(key), flat_b.get(key)
    return None


def to_toml(raw: Mapping[str, Any]) -> str:
    """A nested recipe dict as TOML (``None`` values are left out: TOML has no null)."""
    import tomli_w  # only writing a recipe needs it, so reading and training run without it

    return tomli_w.dumps(_without_none(raw))


def _without_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_none(v) for v in value]
    return value


def _copy(value: Any) -> Any:
    """A deep copy of nested tables and arrays as plain dicts and lists (JSON- and TOML-ready)."""
    if isinstance(value, Mapping):
        return {str(k): _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


# --- the recipe as the library takes it -----------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """A recipe as every entry point of the library takes it: its tables as read (``tree``), the
    dotted overrides laid over them (``changes``) and the file it was read from (``source``;
    ``None`` for a recipe given as a dict). :meth:`of` is the only place a recipe is normalised;
    :attr:`config` checks it once."""

    tree: Mapping[str, Any]
    changes: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @classmethod
    def of(cls, recipe: RecipeLike, overrides: Mapping[str, Any] | None = None) -> Recipe:
        """A path, the name of a packaged recipe (``"demo"``), a nested dict or a :class:`Recipe`,
        with ``overrides`` (``{"train.epochs": 2}``) added to its own."""
        if overrides is not None and not isinstance(overrides, Mapping):
            raise TypeError("overrides are a mapping of dotted recipe keys, e.g. {'train.epochs': 2}; "
                            "parse command-line strings with gcnretrieval.config.parse_overrides")
        if isinstance(recipe, Recipe):
            base = recipe
        elif isinstance(recipe, (str, Path)):
            path = recipe_file(recipe)
            base = cls(read_recipe(path), {}, path)
        elif isinstance(recipe, Mapping):
            base = cls(_copy(recipe))
        else:
            raise ConfigError(f"a recipe must be a table of sections, got {type(recipe).__name__}")
        return base.with_changes(overrides or {})

    def with_changes(self, changes: Mapping[str, Any]) -> Recipe:
        """The same recipe with more overrides (later ones win)."""
        return Recipe(self.tree, {**self.changes, **changes}, self.source) if changes else self

    def with_tree(self, tree: Mapping[str, Any]) -> Recipe:
        """Other tables (a method's preset laid over these) with the same overrides, read from no file."""
        return Recipe(tree, self.changes)

    @cached_property
    def config(self) -> Config:
        """The checked configuration (the overrides applied)."""
        return _check(self.tree, self.changes)

    def text(self) -> str:
        """The recipe as written: the file's text, or the tables as TOML (saved as a run's ``recipe.toml``)."""
        return self.source.read_text(encoding="utf-8") if self.source is not None else to_toml(self.tree)

    def out_dir(self, prefix: str = "", name: str | None = None) -> Path:
        """The default output folder of a command: ``<run.out_dir>/<prefix><name or run.name>``."""
        return Path(self.config.run.out_dir) / f"{prefix}{name or self.config.run.name}"

    def label(self) -> str | None:
        """The recipe's file for summaries (``None`` for a dict)."""
        return None if self.source is None else str(self.source)


#: what the entry points accept as a recipe (normalised by :meth:`Recipe.of`)
RecipeLike = str | Path | Mapping[str, Any] | Recipe
