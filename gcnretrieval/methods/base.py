"""A *method*: a named, documented unit that ``gcnretrieval compare --methods`` runs.

A deep method is a preset of the toolkit's building blocks: dotted recipe keys that name its model
(``model.name``), its objective (``loss.name``), its label graph and encoder (or none) and its paper's
training defaults. :func:`apply_method` lays a preset over a recipe; the result trains like any
recipe. A closed-form method names a fit/transform baseline of :mod:`gcnretrieval.models.baselines`.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gcnretrieval.errors import ConfigError
from gcnretrieval.registry import Registry

__all__ = ["METHODS", "Method", "apply_method", "available_methods", "register_method"]


@dataclass(frozen=True)
class Method:
    """One comparable method.

    Args:
        name: the name on the command line (lower case).
        paper: the publication it reproduces (authors, title, venue and year).
        summary: one line on what it is, listed by ``gcnretrieval methods``.
        preset: the dotted recipe keys the method sets (``{"model.name": "dscmr", "train.lr": 1e-4}``),
            its paper's defaults, written once here.
        replaces: the recipe tables the preset replaces whole (default ``("model", "loss")``: the
            recipe's own model and objective keys never reach another method's model); empty: the
            preset's keys are set on top of the recipe's.
        uses_label_graph: ``False`` drops the recipe's ``[graph]`` and ``[encoder]`` tables.
        baseline: for a closed-form method, the name of its fit/transform in
            :data:`~gcnretrieval.models.baselines.BASELINES` (it then has no preset).
        space: the search space of ``compare --tune`` (``[tune.space]`` entries, around its paper's
            values); empty: :func:`~gcnretrieval.experiments.tune.default_space` less the keys the
            method's recipe refuses.
    """

    name: str
    paper: str
    summary: str
    preset: Mapping[str, Any] = field(default_factory=dict)
    replaces: tuple[str, ...] = ("model", "loss")
    uses_label_graph: bool = True
    baseline: str | None = None
    space: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"closed form"`` or ``"trained"``."""
        return "closed form" if self.baseline is not None else "trained"


METHODS: Registry[Method] = Registry("method", entry_point_group="gcnretrieval.methods")


def register_method(method: Method) -> Method:
    """Register ``method`` under its name (a second method of the same name is refused)."""
    if method.baseline is not None and (method.preset or method.space):
        raise ValueError(f"method '{method.name}' is closed-form (baseline '{method.baseline}'); it has no preset "
                         "or search space")
    return METHODS.register(method.name)(method)


def available_methods() -> list[str]:
    """Sorted names of the registered methods."""
    return METHODS.names()


def apply_method(recipe: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A copy of a recipe (a nested dict) with the preset of method ``name`` laid over it.

    The tables the method ``replaces`` (and the recipe's ``[tune.space]``, written for the recipe's
    model, when it replaces ``[model]``) are dropped; so are ``[graph]`` and ``[encoder]`` for a
    method without a label graph; then every preset key is set. ``[run]``, ``[data]`` and
    ``[eval]`` stay the recipe's, and the method's search space becomes ``[tune.space]``. A closed-form
    method leaves the recipe as it is.
    """
    method = METHODS.get(name)
    tree = copy.deepcopy(dict(recipe))
    if method.baseline is not None:
        return tree
    for table in method.replaces:
        tree.pop(table, None)
    if "model" in method.replaces and isinstance(tree.get("tune"), Mapping):
        tree["tune"] = {key: value for key, value in tree["tune"].items() if key != "space"}
    if not method.uses_label_graph:
        tree.pop("graph", None)
        tree.pop("encoder", None)
    if method.space:
        tree.setdefault("tune", {})["space"] = copy.deepcopy(dict(method.space))
    for key, value in method.preset.items():
        *tables, last = key.split(".")
        table = tree
        for part in tables:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"method '{name}' sets {key}, but the recipe's '{part}' is a value, not a table")
        table[last] = copy.deepcopy(value)
    return tree
