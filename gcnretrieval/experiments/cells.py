"""Cells of an experiment: one run directory per (method, seed, swept values), run, resumed or skipped.

A cell trains a model (:func:`gcnretrieval.runner.run`) or fits a classical baseline
(:func:`~gcnretrieval.experiments.baselines.run_baseline`). Re-running an experiment skips
the complete cells (after checking that each ran with the configuration asked for now, any
difference but ``train.device`` refused), resumes a trained cell from its ``last.pt``,
and deletes and reruns a partial cell with nothing to resume from. A folder in a cell's
place that is not a run directory is never deleted. The experiment's folder is locked while
its cells run (:class:`~gcnretrieval.locks.FolderLock`): a second process stops at once with
a line naming the first and the command that continues the experiment.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcnretrieval.config import Config, Recipe, check_same_config, with_absolute_paths
from gcnretrieval.defaults import LAST_CHECKPOINT
from gcnretrieval.errors import ConfigError, WriteFailed
from gcnretrieval.files import OTHER_FOLDER, check_not_in_the_way
from gcnretrieval.formatting import maps_text
from gcnretrieval.metrics import METRIC_KEYS
from gcnretrieval.experiments.baselines import run_baseline
from gcnretrieval.locks import FolderLock, current_command
from gcnretrieval.runner import run
from gcnretrieval.training import RunDirectory
from gcnretrieval.training.rundir import RunExists

log = logging.getLogger(__name__)

__all__ = ["Cell", "CellResult", "cell_recipe", "check_seeds", "check_shared_overrides", "run_cells", "slug"]

#: keys a finished cell may differ in from the experiment's configuration (besides the run's identity)
_MAY_DIFFER = ("train.device", "train.keep_last_checkpoint")
#: keys an experiment sets per cell (not allowed in the shared overrides)
MANAGED_KEYS = ("run.seed", "run.name")
#: what a second process that finds an experiment's folder locked is told
BUSY_ADVICE = "wait for it to finish, or stop it; then `{command}` continues it (finished cells are skipped)"


@dataclass(frozen=True)
class Cell:
    """One run of an experiment: its directory name, method (the encoder's, the baseline's or the
    method's name), seed, swept values, its own overrides (encoder, swept values: the experiment's
    recipe carries the shared ones, and :func:`cell_recipe` adds the seed and the name, :data:`MANAGED_KEYS`),
    the ``baseline`` it fits instead of training (or ``None``), and the ``recipe`` it trains when it is not
    the experiment's (a method's preset laid over it)."""

    name: str
    method: str
    seed: int
    values: dict[str, Any]
    overrides: dict[str, Any]
    baseline: str | None = None
    recipe: Recipe | None = None


@dataclass
class CellResult:
    """A finished cell: status (``"ran"``, ``"resumed"``, ``"skipped"``), test mAPs, selected epoch, mean
    ``seconds`` of its epochs (training and validation; a baseline's fitting time instead), ``final_metrics.json``."""

    cell: Cell
    run_dir: Path
    status: str
    test: dict[str, float]
    selected_epoch: int | None
    seconds_per_epoch: float | None
    fit_seconds: float | None = None
    final: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form."""
        return {
            "name": self.cell.name, "method": self.cell.method, "seed": self.cell.seed,
            "values": dict(self.cell.values), "run_dir": str(self.run_dir), "status": self.status,
            **{key: self.test[key] for key in METRIC_KEYS},
            "selected_epoch": self.selected_epoch, "seconds_per_epoch": self.seconds_per_epoch,
            "fit_seconds": self.fit_seconds,
        }


def cell_recipe(recipe: Recipe, cell: Cell) -> Recipe:
    """The recipe a cell runs: the experiment's (or its method's) with the cell's overrides, its seed and its name."""
    return (cell.recipe or recipe).with_changes({**cell.overrides, "run.seed": cell.seed, "run.name": cell.name})


def _finished(cell: Cell, run_dir: RunDirectory, status: str) -> CellResult:
    final = run_dir.read_json(RunDirectory.FINAL)
    baseline = final.get("baseline")
    seconds = [row["seconds"] for row in run_dir.metrics() if isinstance(row.get("seconds"), (int, float))]
    per_epoch = None if baseline or not seconds else sum(seconds) / len(seconds)
    return CellResult(cell, run_dir.path, status, dict(final["test"]), final.get("selected_epoch"), per_epoch,
                      baseline.get("fit_seconds") if baseline else None, final)


def run_cells(
    recipe: Recipe,
    cells: Sequence[Cell],
    root: Path,
    *,
    baseline_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool | None = None,
    callback: Callable[[int, int, CellResult], None] | None = None,
) -> list[CellResult]:
    """Run (or skip, or resume) every cell under ``root``, in order, after checking every cell's
    configuration; ``baseline_options`` maps a baseline to its options (``{"cca": {"n_components": 32}}``)."""
    recipes = [cell_recipe(recipe, cell) for cell in cells]  # each checked once, here
    expected = [with_absolute_paths(own.config) for own in recipes]
    options = baseline_options or {}
    root.mkdir(parents=True, exist_ok=True)
    results: list[CellResult] = []
    with FolderLock(root, "experiment folder", BUSY_ADVICE):
        for index, (cell, own, config) in enumerate(zip(cells, recipes, expected), start=1):
            result = _run_cell(cell, own, config, root / cell.name, options.get(cell.baseline or "", {}),
                               progress)
            log.info("cell %d/%d %s: %s; test mAP %s", index, len(cells), cell.name, result.status,
                     maps_text(result.test))
            results.append(result)
            if callback is not None:
                callback(index, len(cells), result)
    return results


def _run_cell(cell: Cell, recipe: Recipe, expected: Config, path: Path, options: Mapping[str, Any],
              progress: bool | None) -> CellResult:
    """One cell (``recipe``: its own, :func:`cell_recipe`): skipped when finished with the values asked for,
    resumed from ``last.pt``, else (re)run."""
    check_not_in_the_way(path, "a run directory", RunDirectory.CONFIG)
    status = "ran"
    if path.exists() and any(path.iterdir()):
        run_dir = RunDirectory.open(path)
        if run_dir.finished():
            check_same_config(run_dir.config(), expected, where=f"{path} was run", fix=OTHER_FOLDER,
                              may_differ=_MAY_DIFFER)
            if cell.baseline is not None:
                _check_baseline_options(path, run_dir.read_json(RunDirectory.FINAL).get("baseline", {}), options)
            return _finished(cell, run_dir, "skipped")
        if cell.baseline is None and run_dir.checkpoint_path(LAST_CHECKPOINT).is_file():
            status = "resumed"
        else:
            log.info("cell %s: partial with nothing to resume, restarting it", cell.name)
            run_dir.remove()
    again = f"`{current_command()}` continues it (finished cells are skipped, a stopped one resumes)"
    try:
        if cell.baseline is not None:
            run_baseline(recipe, out=path, method=cell.baseline, **dict(options))
        else:
            run(recipe, out=path, resume=status == "resumed", progress=progress)
    except WriteFailed as err:
        raise WriteFailed(f"cell {cell.name}: {err.problem}", f"free space, then {again}") from None
    except RunExists:  # appeared since it was checked: another writer that takes no lock
        raise ConfigError(f"cell {path} was written by another process meanwhile; {again}") from None
    return _finished(cell, RunDirectory(path), status)


def _check_baseline_options(path: Path, recorded: Mapping[str, Any], asked: Mapping[str, Any]) -> None:
    """A finished baseline cell was fitted with the options the experiment asks for now."""
    fitted = {"n_components": recorded.get("n_components"), **recorded.get("options", {})}
    for key, value in asked.items():
        if value is not None and fitted.get(key) != value:
            raise ConfigError(f"{path} was fitted with {key} = {fitted.get(key)!r} but the experiment now asks for "
                              f"{value!r}; {OTHER_FOLDER}")


def slug(value: Any) -> str:
    """A file-name-safe spelling of a value (``[0.5, 0.999]`` -> ``0.5_0.999``)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "_".join(slug(v) for v in value)
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+\-]+", "_", text).strip("_") or "empty"


def check_seeds(seeds: Sequence[int] | None, default: int | None) -> list[int]:
    """The distinct seeds of an experiment (``None``: the recipe's ``run.seed``), each a non-negative integer."""
    if seeds is None:
        if default is None:
            raise ConfigError("the recipe has no run.seed; give the seeds explicitly, e.g. --seeds 0,1,2")
        return [default]
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seeds must be non-negative integers (e.g. --seeds 0,1,2), got {seed!r}")
    if not seeds:
        raise ConfigError("no seeds given; write e.g. --seeds 0,1,2")
    return list(dict.fromkeys(seeds))


def check_shared_overrides(overrides: Mapping[str, Any] | None, forbidden: tuple[str, ...]) -> dict[str, Any]:
    """The overrides every cell shares; keys the experiment sets per cell are refused."""
    for key in overrides or {}:
        if key in forbidden:
            raise ConfigError(f"'{key}' is set per cell by the experiment; do not --set it (use the command's own options)")
    return dict(overrides or {})
