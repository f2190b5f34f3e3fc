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

import tomli_w

import gcnretrieval.methods  # noqa: F401  (registers the methods' models and objectives)
from gcnretrieval.checks import check_choice
from gcnretrieval.encoders import DEFAULT_ENCODER, ENCODERS
from gcnretrieval.errors import ConfigError, GcnRetrievalError, InvalidArgument
from gcnretrieval.losses.registry import DEFAULT_OBJECTIVE, OBJECTIVES
from gcnretrieval.models.registry import DEFAULT_MODEL, MODELS, SUPPLIED, uses_label_graph
from gcnretrieval.options import DataOptions, EvalOptions, GraphOptions, RunOptions, TrainOptions, TuneOptions
from gcnretrieval.readers import read_toml

__all__ = ["IDENTITY_KEYS", "Config", "Recipe", "Table", "check_same_config", "construct", "flatten",
           "import_plugins", "load_config", "packaged_recipes", "parse_overrides", "read_recipe", "recipe_file",
           "space_samples", "to_toml", "unknown_key", "with_seed", "with_absolute_paths"]

SECTIONS = ("run", "data", "graph", "encoder", "model", "loss", "train", "eval", "tune")
_OPTION_CLASSES = {"run": RunOptions, "data": DataOptions, "graph": GraphOptions, "train": TrainOptions,
                   "eval": EvalOptions, "tune": TuneOptions}
#: the tables that name a registered class: its registry, default name and the arguments a recipe cannot give
_NAMED = {"encoder": (ENCODERS, DEFAULT_ENCODER, ()), "model": (MODELS, DEFAULT_MODEL, SUPPLIED),
          "loss": (OBJECTIVES, DEFAULT_OBJECTIVE, ())}
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
        skip = () if uses_label_graph(MODELS.get(self.model.name)) else ("graph", "encoder")
        return _copy({name: getattr(self, name) for name in ("plugins", *SECTIONS) if name not in skip})

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
    """A recipe file, or a packaged recipe by name, read into a plain dict (not checked)."""
    return read_toml(recipe_file(recipe), "TOML recipe", "write the recipe as UTF-8 TOML (see recipes/README.md)",
                     ConfigError)


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


def _check(raw: Mapping[str, Any], changes: Mapping[str, Any], folder: Path | None = None) -> Config:
    """Apply the overrides to a recipe's tables and check every table (plugins also found in ``folder``)."""
    tree = _apply_overrides(raw, changes)
    top = _read_table("", tree, {**dict.fromkeys(SECTIONS, (Mapping[str, Any], {})), "plugins": (Any, [])})
    plugins = [top["plugins"]] if isinstance(top["plugins"], str) else top["plugins"]
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"recipe key 'plugins' must be a list of module names, got {plugins!r}")
    import_plugins(plugins, folder)
    sections = {name: _section(name, top[name]) for name in SECTIONS}
    model = sections["model"].name
    for table in ("graph", "encoder"):
        if tree.get(table) and not uses_label_graph(MODELS.get(model)):
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


def import_plugins(names: Iterable[str], folder: Path | None = None) -> None:
    """Import the recipe's ``plugins`` modules (they register encoders on import).

    A module is found as Python finds a script's modules: an installed module, else a module
    (``name.py`` or a package folder) in ``folder`` (the recipe file's, :attr:`Recipe.folder`) or
    in the working directory. Those folders are on ``sys.path``, after the installed modules,
    only while the modules are imported."""
    saved = list(sys.path)
    beside = [str(path) for path in dict.fromkeys([folder, Path.cwd().resolve()]) if path is not None]
    sys.path.extend(beside)
    try:
        for name in names:
            try:
                importlib.import_module(name)
            except ImportError as err:  # not found at all, or found but importing something missing
                absent = isinstance(err, ModuleNotFoundError) and err.name == name.split(".")[0]
                where = f"it is neither installed nor a module in {' or '.join(beside)}; " if absent else ""
                raise ConfigError(f"cannot import plugin '{name}' listed in 'plugins' ({err}); {where}install it or "
                                  "fix the recipe") from None
    finally:
        sys.path[:] = saved


def _section(name: str, given: Mapping[str, Any]) -> Any:
    """Table ``name`` checked: an option class constructed, else a :class:`Table` of the named class's
    keyword arguments (``[loss]``'s also checked by constructing the objective)."""
    if name in _OPTION_CLASSES:
        target, context = _OPTION_CLASSES[name], ""
        params = parameters(target)
    else:
        registry, default, skip = _NAMED[name]
        chosen = _coerce(f"{name}.name", given.get("name", default), str)
        target = registry.get(chosen)
        params = {"name": (str, default), **(target.option_types() if name == "encoder" else parameters(target, skip))}
        context = f" of {registry.kind} '{chosen}'" if name == "encoder" or chosen != default else ""
    values = _read_table(f"{name}.", given, params, context)
    for key, value in values.items():
        # a nested table: keyword arguments of another callable, as given (a table without one checks its own)
        if isinstance(value, Mapping) and hasattr(target, "table_target"):
            inner, skip = target.table_target(key, given)
            values[key] = Table(_read_table(f"{name}.{key}.", value, parameters(inner, skip), defaults=False))
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
    hints = typing.get_type_hints(target.__init__ if isinstance(target, type) else target)
    factories = {f.name: f.default_factory for f in dataclasses.fields(target)
                 if f.default_factory is not dataclasses.MISSING} if dataclasses.is_dataclass(target) else {}
    return {p.name: (hints.get(p.name, Any), factories[p.name]() if p.name in factories else p.default)
            for p in inspect.signature(target).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in skip}


def _read_table(prefix: str, given: Mapping[str, Any], params: Mapping[str, tuple[Any, Any]],
                context: str = "", defaults: bool = True) -> dict[str, Any]:
    """Check the keys (``prefix`` + key) and value types of one table; with ``defaults``, fill in the keys left out."""
    for key in given:
        if key not in params:
            raise unknown_key(str(key), list(params), prefix=prefix, context=context)
    return {key: _coerce(prefix + key, given[key], hint) if key in given else default
            for key, (hint, default) in params.items() if key in given or (defaults and default is not _REQUIRED)}


def unknown_key(key: str, choices: list[str], prefix: str = "", context: str = "") -> ConfigError:
    """``ConfigError("unknown key 'prefix.key' — did you mean 'prefix.choice'?")`` (or listing the keys)."""
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    hint = f" — did you mean '{prefix}{close[0]}'?" if close else f"; known keys: {', '.join(prefix + c for c in choices)}"
    return ConfigError(f"unknown key '{prefix}{key}'{context}{hint}")


_ARRAY = (list, tuple)
#: how an error names the values of each annotation (or its origin) and of each type, and the recipe values of it
_KINDS = {bool: ("a boolean", bool), int: ("an integer", int), float: ("a number", (int, float)),
          str: ("a string", str), dict: ("a table", Mapping), Mapping: ("a table", Mapping),
          tuple: ("an array", _ARRAY), list: ("an array", _ARRAY), Sequence: ("an array", _ARRAY)}


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the annotation ``hint`` (ints are accepted for floats, arrays become
    tuples); ``TypeError`` for an annotation no recipe value can meet (a class, a callable)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for member in args:  # the first member that takes the value; else the first member's complaint
            try:
                return None if value is None and member is type(None) else _coerce(key, value, member)
            except (ConfigError, TypeError) as err:
                errors.append(err)
        raise next((err for err in errors if isinstance(err, ConfigError)), errors[0])
    if origin is typing.Literal:  # precision = 32 for "32"
        given = str(value) if value not in args and not isinstance(value, bool) and str(value) in args else value
        try:
            return check_choice(key, given, args)
        except InvalidArgument as err:
            raise ConfigError(f"recipe key '{key}' {err.rule}") from None
    if (origin or hint) not in _KINDS:
        raise TypeError(f"recipe key {key}: unsupported annotation {hint!r}")  # a constructor a recipe cannot feed
    what, accepted = _KINDS[origin or hint]
    if isinstance(value, bool) != (hint is bool) or not isinstance(value, accepted):
        got = _KINDS[type(value)][0] if type(value) in _KINDS else type(value).__name__
        raise ConfigError(f"recipe key '{key}' must be {what}, got {got} ({value!r})")
    if accepted is not _ARRAY:
        return _copy(value) if accepted is Mapping else float(value) if hint is float else value
    fixed = origin is tuple and args and args[-1] is not Ellipsis
    if fixed and len(value) != len(args):
        raise ConfigError(f"recipe key '{key}' must be an array of {len(args)} values, got {list(value)!r}")
    return tuple(_coerce(key, item, args[i] if fixed else args[0] if args else Any) for i, item in enumerate(value))


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
    old, new = flatten(saved.to_dict()), flatten(asked.to_dict())
    for key in sorted(set(old) | set(new)):  # the first differing dotted key, in sorted order
        if key not in ignore and old.get(key) != new.get(key):
            raise ConfigError(f"{where} with '{key}' = {old.get(key)!r} but now asks for {new.get(key)!r}; {fix}")


def to_toml(raw: Mapping[str, Any]) -> str:
    """A nested recipe dict as TOML (``None`` values are left out: TOML has no null)."""
    return tomli_w.dumps(_copy(raw, drop_none=True))


def _copy(value: Any, drop_none: bool = False) -> Any:
    """A deep copy of nested tables, option classes and arrays as plain dicts and lists (JSON- and
    TOML-ready), with ``drop_none`` without the keys set to ``None``."""
    value = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    if isinstance(value, Mapping):
        return {str(k): _copy(v, drop_none) for k, v in value.items() if not (drop_none and v is None)}
    if isinstance(value, (list, tuple)):
        return [_copy(v, drop_none) for v in value]
    return value


# --- the recipe as the library takes it -----------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """A recipe as every entry point of the library takes it: its tables as read (``tree``), the
    dotted overrides laid over them (``changes``), the file it was read from (``source``; ``None``
    for a recipe given as a dict) and the folder its plugins are found in besides the working
    directory (``folder``: the file's, kept when other tables are laid over it). :meth:`of` is the
    only place a recipe is normalised; :attr:`config` checks it once."""

    tree: Mapping[str, Any]
    changes: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None
    folder: Path | None = None

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
            base = cls(read_recipe(path), {}, path, path.resolve().parent)
        elif isinstance(recipe, Mapping):
            base = cls(_copy(recipe))
        else:
            raise ConfigError(f"a recipe must be a table of sections, got {type(recipe).__name__}")
        return base.with_changes(overrides or {})

    def with_changes(self, changes: Mapping[str, Any]) -> Recipe:
        """The same recipe with more overrides (later ones win)."""
        return dataclasses.replace(self, changes={**self.changes, **changes}) if changes else self

    def with_tree(self, tree: Mapping[str, Any]) -> Recipe:
        """Other tables (a method's preset laid over these) with the same overrides and plugin folder, read from
        no file."""
        return dataclasses.replace(self, tree=tree, source=None)

    @cached_property
    def config(self) -> Config:
        """The checked configuration (the overrides applied)."""
        return _check(self.tree, self.changes, self.folder)

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
