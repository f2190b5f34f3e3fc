"""Cells of an experiment: one run directory per (method, seed, swept values), run or skipped.

A *cell* is one normal run directory under the experiment directory. Re-running an
experiment skips the cells already complete and finishes the others:

- **complete** (``final_metrics.json`` present): skipped, after checking that its
  ``config.resolved.json`` is the configuration the experiment asks for now (any other
  difference than ``train.device`` is refused, so a table never mixes settings);
- **partial** (a run directory without ``final_metrics.json``): a trained model's cell
  with ``checkpoints/last.pt`` is *resumed* from it (:func:`gcnretrieval.runner.run`
  with ``resume=True``; the saved configuration must match), which with the runner's
  seeded RNG state continues where the interruption left it; a partial cell with
  nothing to resume from (stopped during its first epoch) is deleted and run again;
- **absent**: run.

A directory in a cell's place that is not a run directory (no ``config.resolved.json``)
is never deleted: the experiment stops with an error naming it.
"""
from __future__ import annotations

import json
import logging
import math
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcnretrieval.config import Config, config_from_dict, load_config
from gcnretrieval.errors import ConfigError, UnknownNameError, did_you_mean

log = logging.getLogger(__name__)

__all__ = ["Cell", "CellResult", "check_methods", "method_kind", "run_cells"]

#: keys a finished cell may differ in from the experiment's configuration
_IGNORED_KEYS = ("train.device", "run.out_dir")
#: keys an experiment sets per cell (not allowed in the shared overrides)
MANAGED_KEYS = ("run.seed", "run.name")


@dataclass(frozen=True)
class Cell:
    """One run of an experiment.

    Attributes:
        name: the directory name under the experiment directory.
        method: encoder or baseline name (``encoder.name`` of the cell).
        seed: ``run.seed`` of the cell.
        values: the swept keys and their values (empty in a comparison).
        overrides: every dotted override of the cell (shared ones included).
    """

    name: str
    method: str
    seed: int
    values: dict[str, Any]
    overrides: dict[str, Any]


@dataclass
class CellResult:
    """A finished cell: its test mAPs and timings.

    Attributes:
        cell: the :class:`Cell`.
        run_dir: its run directory.
        status: ``"ran"``, ``"resumed"`` or ``"skipped"`` (complete already).
        test: ``{"i2t_map", "t2i_map", "avg_map"}``.
        selected_epoch: the selected epoch (``None`` for a closed-form baseline).
        seconds_per_epoch: mean ``seconds`` of ``metrics.jsonl`` (training plus the
            per-epoch validation pass); ``None`` for a baseline.
        fit_seconds: a baseline's fitting time (``None`` for trained models).
    """

    cell: Cell
    run_dir: Path
    status: str
    test: dict[str, float]
    selected_epoch: int | None
    seconds_per_epoch: float | None
    fit_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form."""
        return {
            "name": self.cell.name, "method": self.cell.method, "seed": self.cell.seed,
            "values": dict(self.cell.values), "run_dir": str(self.run_dir), "status": self.status,
            **{key: self.test[key] for key in ("i2t_map", "t2i_map", "avg_map")},
            "selected_epoch": self.selected_epoch, "seconds_per_epoch": self.seconds_per_epoch,
            "fit_seconds": self.fit_seconds,
        }


def method_kind(name: str) -> str:
    """``"baseline"`` for a registered baseline (cca, pls), else ``"encoder"``."""
    from gcnretrieval.experiments.baselines import BASELINES

    return "baseline" if name in BASELINES else "encoder"


def check_methods(names: list[str]) -> list[str]:
    """Lower-cased ``names`` if each is a registered encoder or baseline; else one error.

    Import the recipe's plugins first so that their encoders are registered.
    """
    from gcnretrieval.encoders import available_encoders
    from gcnretrieval.experiments.baselines import available_baselines

    choices = sorted(set(available_encoders()) | set(available_baselines()))
    checked = []
    for name in names:
        key = name.strip().lower()
        if key not in choices:
            raise UnknownNameError(did_you_mean("encoder or baseline", name, choices))
        checked.append(key)
    return checked


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def expected_config(recipe_raw: Mapping[str, Any], cell: Cell) -> Config:
    """The configuration a cell runs with (data paths resolved as the runner does)."""
    from gcnretrieval.runner import resolve_paths

    return resolve_paths(load_config(recipe_raw, cell.overrides))


def _check_same(run_dir: Path, saved: dict[str, Any], expected: Config) -> None:
    try:  # keys added to the recipe format since the cell ran take their defaults
        saved = config_from_dict(saved).to_dict()
    except ConfigError as err:
        raise ConfigError(f"{run_dir} has a configuration this version cannot read ({err}); "
                          "choose another --out/--name or delete that directory") from None
    a = _flatten(saved)
    b = _flatten(expected.to_dict())
    for key in sorted(set(a) | set(b)):
        if key in _IGNORED_KEYS:
            continue
        if a.get(key) != b.get(key):
            raise ConfigError(
                f"{run_dir} was run with '{key}' = {a.get(key)!r} but the experiment now asks for "
                f"{b.get(key)!r}; choose another --out/--name or delete that directory"
            )


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def seconds_per_epoch(run_dir: Path) -> float | None:
    """Mean ``seconds`` over the rows of ``metrics.jsonl`` (``None`` without rows)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    values = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            seconds = json.loads(line).get("seconds")
            if isinstance(seconds, (int, float)) and math.isfinite(seconds):
                values.append(float(seconds))
    return sum(values) / len(values) if values else None


def _finished(cell: Cell, run_dir: Path, status: str) -> CellResult:
    final = _read_json(run_dir / "final_metrics.json")
    baseline = final.get("baseline") or {}
    return CellResult(cell, run_dir, status, dict(final["test"]), final.get("selected_epoch"),
                      None if baseline else seconds_per_epoch(run_dir), baseline.get("fit_seconds"),
                      {"baseline": baseline} if baseline else {})


def _run_one(recipe: Any, cell: Cell, run_dir: Path, resume: bool, options: dict[str, Any],
             progress: bool | None) -> None:
    if method_kind(cell.method) == "baseline":
        from gcnretrieval.experiments.baselines import run_baseline

        run_baseline(recipe, cell.overrides, out=run_dir, **options)
    else:
        from gcnretrieval.runner import run

        run(recipe, cell.overrides, out=run_dir, resume=resume, progress=progress)


def run_cells(
    recipe: str | Path | Mapping[str, Any],
    recipe_raw: Mapping[str, Any],
    cells: list[Cell],
    root: Path,
    *,
    baseline_options: dict[str, Any] | None = None,
    progress: bool | None = None,
    callback: Callable[[int, int, CellResult], None] | None = None,
) -> list[CellResult]:
    """Run (or skip, or resume) every cell under ``root``, in order; see the module docstring.

    ``baseline_options`` maps a baseline name to its options
    (``{"cca": {"n_components": 32, "regularization": 1.0}}``).

    Every cell's configuration is checked before the first one runs.
    """
    configs = [expected_config(recipe_raw, cell) for cell in cells]
    root.mkdir(parents=True, exist_ok=True)
    results: list[CellResult] = []
    for index, (cell, expected) in enumerate(zip(cells, configs), start=1):
        run_dir = root / cell.name
        config_path = run_dir / "config.resolved.json"
        status = "ran"
        if run_dir.exists():
            if not config_path.is_file():
                raise ConfigError(f"{run_dir} is in the way of a cell and is not a run directory; move or delete it")
            saved = _read_json(config_path)
            if (run_dir / "final_metrics.json").is_file():
                _check_same(run_dir, saved, expected)
                result = _finished(cell, run_dir, "skipped")
                log.info("cell %d/%d %s: complete, skipped", index, len(cells), cell.name)
                results.append(result)
                if callback is not None:
                    callback(index, len(cells), result)
                continue
            if method_kind(cell.method) == "encoder" and (run_dir / "checkpoints" / "last.pt").is_file():
                status = "resumed"
            else:
                log.info("cell %d/%d %s: partial with nothing to resume, restarting it", index, len(cells), cell.name)
                shutil.rmtree(run_dir)
        log.info("cell %d/%d %s: %s", index, len(cells), cell.name, "resuming" if status == "resumed" else "running")
        options = dict((baseline_options or {}).get(cell.method, {}))
        _run_one(recipe, cell, run_dir, status == "resumed", options, progress)
        result = _finished(cell, run_dir, status)
        results.append(result)
        if callback is not None:
            callback(index, len(cells), result)
    return results


def slug(value: Any) -> str:
    """A file-name-safe spelling of a value (``[0.5, 0.999]`` -> ``0.5_0.999``)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "_".join(slug(v) for v in value)
    else:
        text = str(value)
    text = re.sub(r"[^A-Za-z0-9.+\-]+", "_", text).strip("_")
    return text or "empty"


def parse_seeds(seeds: Any, default: int | None) -> list[int]:
    """``"0,1,2"``, ``[0, 1, 2]`` or ``None`` (the recipe's ``run.seed``) -> a list of seeds."""
    if seeds is None:
        if default is None:
            raise ConfigError("the recipe has no run.seed; give the seeds explicitly, e.g. --seeds 0,1,2")
        return [default]
    if isinstance(seeds, str):
        parts = [p.strip() for p in seeds.split(",")]
    elif isinstance(seeds, int):
        parts = [seeds]
    else:
        parts = list(seeds)
    out: list[int] = []
    for part in parts:
        try:
            seed = int(part)
            if isinstance(part, float) or isinstance(part, bool) or seed < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"seeds must be non-negative integers separated by commas (e.g. 0,1,2), got {seeds!r}") from None
        if seed not in out:
            out.append(seed)
    if not out:
        raise ConfigError("no seeds given; write e.g. --seeds 0,1,2")
    return out


def shared_overrides(overrides: Any, forbidden: tuple[str, ...]) -> dict[str, Any]:
    """``--set`` strings or a mapping -> a dotted dict; keys the experiment sets itself are refused."""
    from gcnretrieval.config import parse_override

    if overrides is None:
        changes: dict[str, Any] = {}
    elif isinstance(overrides, Mapping):
        changes = {str(k).replace("__", "."): v for k, v in overrides.items()}
    else:
        changes = dict(parse_override(text) for text in overrides)
    for key in changes:
        if key in forbidden:
            raise ConfigError(f"'{key}' is set per cell by the experiment; do not --set it (use the command's own options)")
    return changes


def resolved_config(run_dir: Path) -> Config:
    """A cell's saved configuration."""
    return config_from_dict(_read_json(run_dir / "config.resolved.json"))
