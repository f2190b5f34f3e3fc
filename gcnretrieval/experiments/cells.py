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

from gcnretrieval.config import Config, first_difference, load_config, parse_overrides, with_absolute_paths
from gcnretrieval.errors import ConfigError, WriteFailed
from gcnretrieval.experiments.baselines import run_baseline
from gcnretrieval.locks import FolderLock, current_command
from gcnretrieval.runner import run
from gcnretrieval.training import RunDirectory
from gcnretrieval.training.rundir import RunExists

log = logging.getLogger(__name__)

__all__ = ["Cell", "CellResult", "parse_seeds", "run_cells", "shared_overrides", "slug"]

#: keys a finished cell may differ in from the experiment's configuration
_IGNORED_KEYS = ("train.device", "run.out_dir", "train.keep_last_checkpoint")
#: keys an experiment sets per cell (not allowed in the shared overrides)
MANAGED_KEYS = ("run.seed", "run.name")
#: what a second process that finds an experiment's folder locked is told
BUSY_ADVICE = "wait for it to finish, or stop it; then `{command}` continues it (finished cells are skipped)"


@dataclass(frozen=True)
class Cell:
    """One run of an experiment: its directory name, method (the encoder's, the baseline's or the
    method's name), seed, swept values, every override, the ``baseline`` it fits instead of training (or
    ``None``), and the ``recipe`` it trains when it is not the experiment's (a method's preset laid over it)."""

    name: str
    method: str
    seed: int
    values: dict[str, Any]
    overrides: dict[str, Any]
    baseline: str | None = None
    recipe: Mapping[str, Any] | None = None


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
            **{key: self.test[key] for key in ("i2t_map", "t2i_map", "avg_map")},
            "selected_epoch": self.selected_epoch, "seconds_per_epoch": self.seconds_per_epoch,
            "fit_seconds": self.fit_seconds,
        }


def expected_config(recipe_raw: Mapping[str, Any], cell: Cell) -> Config:
    """The configuration a cell runs with (data paths resolved as the runner does)."""
    return with_absolute_paths(load_config(recipe_raw if cell.recipe is None else cell.recipe, cell.overrides))


def _finished(cell: Cell, run_dir: RunDirectory, status: str) -> CellResult:
    final = run_dir.read_json("final_metrics.json")
    baseline = final.get("baseline")
    seconds = [row["seconds"] for row in run_dir.metrics() if isinstance(row.get("seconds"), (int, float))]
    per_epoch = None if baseline or not seconds else sum(seconds) / len(seconds)
    return CellResult(cell, run_dir.path, status, dict(final["test"]), final.get("selected_epoch"), per_epoch,
                      baseline.get("fit_seconds") if baseline else None, final)


def run_cells(
    recipe: str | Path | Mapping[str, Any],
    recipe_raw: Mapping[str, Any],
    cells: Sequence[Cell],
    root: Path,
    *,
    baseline_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool | None = None,
    callback: Callable[[int, int, CellResult], None] | None = None,
) -> list[CellResult]:
    """Run (or skip, or resume) every cell under ``root``, in order, after checking every cell's
    configuration; ``baseline_options`` maps a baseline to its options (``{"cca": {"n_components": 32}}``)."""
    configs = [expected_config(recipe_raw, cell) for cell in cells]
    root.mkdir(parents=True, exist_ok=True)
    with FolderLock(root, "experiment folder", BUSY_ADVICE):
        return _run_cells(recipe, cells, configs, root, baseline_options, progress, callback)


def _run_cells(recipe: str | Path | Mapping[str, Any], cells: Sequence[Cell], configs: Sequence[Config], root: Path,
               baseline_options: Mapping[str, Mapping[str, Any]] | None, progress: bool | None,
               callback: Callable[[int, int, CellResult], None] | None) -> list[CellResult]:
    results: list[CellResult] = []
    again = f"`{current_command()}` continues it (finished cells are skipped, a stopped one resumes)"
    for index, (cell, expected) in enumerate(zip(cells, configs), start=1):
        path = root / cell.name
        status = "ran"
        if path.exists():
            run_dir = RunDirectory.open(path) if (path / RunDirectory.CONFIG).is_file() else None
            if run_dir is None:
                raise ConfigError(f"{path} is in the way of a cell and is not a run directory; move or delete it")
            if (path / "final_metrics.json").is_file():
                difference = first_difference(run_dir.config(), expected, _IGNORED_KEYS)
                if difference is not None:
                    key, old, new = difference
                    raise ConfigError(f"{path} was run with '{key}' = {old!r} but the experiment now asks for "
                                      f"{new!r}; choose another --out/--name or delete that directory")
                if cell.baseline is not None:
                    _check_baseline_options(path, run_dir.read_json("final_metrics.json").get("baseline", {}),
                                            (baseline_options or {}).get(cell.baseline, {}))
                log.info("cell %d/%d %s: complete, skipped", index, len(cells), cell.name)
                result = _finished(cell, run_dir, "skipped")
                results.append(result)
                if callback is not None:
                    callback(index, len(cells), result)
                continue
            if cell.baseline is None and run_dir.checkpoint_path("last").is_file():
                status = "resumed"
            else:
                log.info("cell %d/%d %s: partial with nothing to resume, restarting it", index, len(cells), cell.name)
                run_dir.remove()
        log.info("cell %d/%d %s: %s", index, len(cells), cell.name, "resuming" if status == "resumed" else "running")
        try:
            if cell.baseline is not None:
                run_baseline(recipe, cell.overrides, out=path, method=cell.baseline,
                             **dict((baseline_options or {}).get(cell.baseline, {})))
            else:
                run(recipe if cell.recipe is None else cell.recipe, cell.overrides, out=path,
                    resume=status == "resumed", progress=progress)
        except WriteFailed as err:
            raise WriteFailed(f"cell {cell.name}: {err.problem}", f"free space, then {again}") from None
        except RunExists:  # appeared since it was checked: another writer that takes no lock
            raise ConfigError(f"cell {path} was written by another process meanwhile; {again}") from None
        result = _finished(cell, RunDirectory(path), status)
        log.info("cell %d/%d %s: %s; test mAP i2t %.4f t2i %.4f mean %.4f", index, len(cells), cell.name, status,
                 result.test["i2t_map"], result.test["t2i_map"], result.test["avg_map"])
        results.append(result)
        if callback is not None:
            callback(index, len(cells), result)
    return results


def _check_baseline_options(path: Path, recorded: Mapping[str, Any], asked: Mapping[str, Any]) -> None:
    """A finished baseline cell was fitted with the options the experiment asks for now."""
    fitted = {"n_components": recorded.get("n_components"), **recorded.get("options", {})}
    for key, value in asked.items():
        if value is not None and fitted.get(key) != value:
            raise ConfigError(f"{path} was fitted with {key} = {fitted.get(key)!r} but the experiment now asks for "
                              f"{value!r}; choose another --out/--name or delete that directory")


def slug(value: Any) -> str:
    """A file-name-safe spelling of a value (``[0.5, 0.999]`` -> ``0.5_0.999``)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "_".join(slug(v) for v in value)
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+\-]+", "_", text).strip("_") or "empty"


def parse_seeds(seeds: Any, default: int | None) -> list[int]:
    """``"0,1,2"``, ``[0, 1, 2]`` or ``None`` (the recipe's ``run.seed``) -> a list of distinct seeds."""
    if seeds is None:
        if default is None:
            raise ConfigError("the recipe has no run.seed; give the seeds explicitly, e.g. --seeds 0,1,2")
        return [default]
    parts = [p.strip() for p in seeds.split(",")] if isinstance(seeds, str) else (
        [seeds] if isinstance(seeds, int) else list(seeds))
    out: list[int] = []
    for part in parts:
        try:
            if isinstance(part, (bool, float)) or int(part) < 0:
                raise ValueError
            seed = int(part)
        except (TypeError, ValueError):
            raise ConfigError(f"seeds must be non-negative integers separated by commas (e.g. 0,1,2), got {seeds!r}") from None
        if seed not in out:
            out.append(seed)
    if not out:
        raise ConfigError("no seeds given; write e.g. --seeds 0,1,2")
    return out


def shared_overrides(overrides: Mapping[str, Any] | Sequence[str] | None, forbidden: tuple[str, ...]) -> dict[str, Any]:
    """The overrides every cell shares; keys the experiment sets per cell are refused."""
    changes = parse_overrides(overrides)
    for key in changes:
        if key in forbidden:
            raise ConfigError(f"'{key}' is set per cell by the experiment; do not --set it (use the command's own options)")
    return changes
