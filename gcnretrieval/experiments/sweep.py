"""``sweep``: a recipe over the cartesian product of values of recipe keys, and seeds.

``--grid key=v1,v2,...`` (repeatable) lists one key's values, read like ``--set`` values
(``train.betas=[0.5,0.999],[0.9,0.999]``: commas inside brackets or quotes do not split).
Every combination and seed is a run directory under ``<out>/`` named after its values
(``num_layers-3__condition-all__seed0``; see :mod:`gcnretrieval.experiments.cells`), every
combination is checked before anything runs, and ``sweep.{json,csv,md}`` hold one row per
grid point, with ``sweep.png`` (one key) or ``sweep_heatmap.png`` and ``sweep_lines.png`` (two).
"""
from __future__ import annotations

import itertools
import logging
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcnretrieval.config import Recipe, RecipeLike, parse_overrides
from gcnretrieval.errors import ConfigError, GcnRetrievalError
from gcnretrieval.experiments.cells import (MANAGED_KEYS, Cell, CellResult, check_seeds, check_shared_overrides,
                                            run_cells, slug)
from gcnretrieval.formatting import METRIC_TITLES, markdown_table as table, significant
from gcnretrieval.experiments.plots import distinct, heatmap, lines
from gcnretrieval.experiments.summary import METRICS, format_mean_std, summarise, write_summary

log = logging.getLogger(__name__)

__all__ = ["ExperimentPlan", "SweepResult", "check_grid", "grid_cells", "parse_grid", "prepare", "sweep"]


@dataclass
class SweepResult:
    """What :func:`sweep` returns: the directory, the swept keys, one summary row per grid point
    (``values`` holds the point), one dict per cell, and the markdown table."""

    out_dir: Path
    keys: list[str]
    rows: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    table: str


def parse_grid(texts: Sequence[str]) -> dict[str, list[Any]]:
    """Command-line grids (``["encoder.num_layers=1,2,3", ...]``) -> ``{key: values}``, each ``v1,v2,...`` a
    TOML array when it is one (commas inside brackets or quotes do not split), else split at the commas and
    each read like a ``--set`` value. One clear error for a grid without ``=`` or without values."""
    grid: dict[str, list[Any]] = {}
    for text in texts:
        if "=" not in text:
            raise ConfigError(f"--grid {text!r} is not key=v1,v2,...; write e.g. --grid encoder.num_layers=1,2,3")
        key, _, listing = (part.strip() for part in text.partition("="))
        if key in grid:
            raise ConfigError(f"--grid names '{key}' twice; list all its values in one --grid {key}=v1,v2,...")
        try:
            grid[key] = list(tomllib.loads(f"v = [{listing}]")["v"])
        except tomllib.TOMLDecodeError:
            pieces = [p.strip() for p in listing.split(",")]
            if any(p == "" for p in pieces):
                raise ConfigError(f"--grid {key}={listing!r} has an empty value; separate values with single "
                                  "commas") from None
            grid[key] = [parse_overrides([f"{key}={p}"])[key] for p in pieces]
    return grid


def check_grid(grid: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """``{key: values}`` with each key's repeated values dropped; at least one key, each with values."""
    if not grid:
        raise ConfigError("no --grid given; write e.g. --grid encoder.num_layers=1,2,3")
    for key, values in grid.items():
        if not values:
            raise ConfigError(f"--grid {key}= lists no values; write e.g. --grid {key}=v1,v2")
    return {key: distinct(values) for key, values in grid.items()}


def _point_names(keys: list[str], points: list[tuple[Any, ...]]) -> list[str]:
    """Each grid point's name from its values (``num_layers-3__condition-all``; the keys' last parts, or the
    whole keys when two last parts are alike), or ``point000``, ... when two points' values read alike."""
    short = [k.rsplit(".", 1)[-1] for k in keys]
    labels = short if len(set(short)) == len(short) else [k.replace(".", "_") for k in keys]
    names = ["__".join(f"{label}-{slug(value)}" for label, value in zip(labels, point)) for point in points]
    return names if len(set(names)) == len(names) else [f"point{i:03d}" for i in range(len(points))]


@dataclass
class ExperimentPlan:
    """An experiment's recipe with the overrides its cells share, its seeds and its name."""

    recipe: Recipe
    seeds: list[int]
    name: str


def prepare(recipe: RecipeLike, seeds: Sequence[int] | None, overrides: Mapping[str, Any] | None, name: str | None,
            forbidden: tuple[str, ...] = ()) -> ExperimentPlan:
    """Read the recipe and shared overrides (keys managed per cell refused) and the seeds."""
    recipe = Recipe.of(recipe, check_shared_overrides(overrides, MANAGED_KEYS + forbidden))
    base = recipe.config
    return ExperimentPlan(recipe, check_seeds(seeds, base.run.seed), name or base.run.name)


def grid_cells(experiment: ExperimentPlan, grid: Mapping[str, list[Any]]) -> list[Cell]:
    """One cell per grid point and seed, named ``<point>__seed<seed>``; every point's recipe is checked first."""
    keys = list(grid)
    for key in keys:
        if key in MANAGED_KEYS:
            raise ConfigError(f"--grid cannot sweep '{key}': seeds go in --seeds and names are set per cell")
        if key in experiment.recipe.changes:
            raise ConfigError(f"'{key}' is both swept (--grid) and set (--set); keep one")
    points = list(itertools.product(*(grid[k] for k in keys)))
    cells = []
    for point, point_name in zip(points, _point_names(keys, points)):
        assignment = dict(zip(keys, point))
        try:
            config = experiment.recipe.with_changes(assignment).config
        except GcnRetrievalError as err:
            raise ConfigError(f"--grid {', '.join(f'{k}={v!r}' for k, v in assignment.items())}: {err}") from None
        for seed in experiment.seeds:
            cells.append(Cell(f"{point_name}__seed{seed}", config.encoder.name, seed, assignment, assignment))
    return cells


def markdown_table(keys: list[str], rows: list[dict[str, Any]]) -> str:
    """The sweep table (one row per grid point)."""
    return table([*keys, *METRIC_TITLES.values(), "seeds", "s / epoch"],
                 [[*(row["values"][k] for k in keys), *(format_mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in METRICS),
                   len(row["seeds"]), significant(row["seconds_per_epoch"], 3)] for row in rows])


def sweep(
    recipe: RecipeLike,
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    progress: bool | None = None,
    callback: Callable[[int, int, CellResult], None] | None = None,
) -> SweepResult:
    """Run a recipe over a grid of values of recipe keys, and seeds; tabulate and plot.

    Args:
        recipe: a :class:`~gcnretrieval.config.Recipe`, a TOML recipe, a packaged recipe's name, or a dict.
        grid: ``{"key": [v1, v2]}`` (:func:`parse_grid` reads the command line's ``key=v1,v2``).
        seeds: ``run.seed`` of each repetition (default: the recipe's seed).
        overrides: ``--set`` overrides of every cell; a swept key may not also be set.
        out: the sweep directory (default ``<run.out_dir>/sweep_<name>``); ``name``: default ``run.name``.
        callback: called as ``callback(index, total, cell_result)`` after each cell.
    """
    values = check_grid(grid)
    keys = list(values)
    experiment = prepare(recipe, seeds, overrides, name)
    cells = grid_cells(experiment, values)
    out_dir = Path(out) if out is not None else experiment.recipe.out_dir("sweep_", experiment.name)
    results = run_cells(experiment.recipe, cells, out_dir, progress=progress, callback=callback)

    cell_dicts = [r.to_dict() for r in results]
    values_of = {repr(c["values"]): c["values"] for c in cell_dicts}  # a point's values may be lists: keyed by repr
    rows = [{"values": dict(values_of[summary.pop("group")]), **summary}
            for summary in summarise(cell_dicts, lambda cell: repr(cell["values"]))]
    table = markdown_table(keys, rows)
    summary = {"recipe": experiment.recipe.label(), "overrides": dict(experiment.recipe.changes),
               "grid": values, "seeds": experiment.seeds, "rows": rows, "cells": cell_dicts}
    columns = keys + ["seeds"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + ["seconds_per_epoch"]
    write_summary(out_dir, "sweep", f"Sweep `{experiment.name}`", summary, [{**row["values"], **row} for row in rows],
                  columns, table, _plot(keys, rows, out_dir, experiment.name))
    return SweepResult(out_dir, keys, rows, cell_dicts, table)


def _plot(keys: list[str], rows: list[dict[str, Any]], out_dir: Path, name: str) -> list[Path]:
    if len(keys) == 1:
        return [lines(rows, keys[0], out_dir / "sweep.png", title=name)]
    if len(keys) == 2:
        return [heatmap(rows, keys[0], keys[1], out_dir / "sweep_heatmap.png", title=name),
                lines(rows, keys[0], out_dir / "sweep_lines.png", series_key=keys[1], title=name)]
    log.info("%d swept keys: no figure (one key gives a line plot, two a heatmap)", len(keys))
    return []
