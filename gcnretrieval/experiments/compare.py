"""``compare``: several encoders (and baselines) on one recipe, over several seeds.

Every cell (method x seed) is a normal run directory, ``<out>/<method>_seed<k>/``, made
by :func:`gcnretrieval.runner.run` (or :func:`~gcnretrieval.experiments.baselines.run_baseline`
for ``cca``/``pls``) from the same recipe and overrides: only ``encoder.name``,
``run.seed`` and ``run.name`` differ between cells. Within one seed every cell sees the
same data, validation split and label graph; a different seed also redraws the synthetic
data (``data.synthetic.seed`` defaults to ``run.seed``) and the validation split, so the
spread over seeds covers those draws as well as initialisation and batch order.

An interrupted comparison resumes: see :mod:`gcnretrieval.experiments.cells`.

Outputs, in ``<out>/``: ``compare.json`` (every cell and the per-method summary),
``compare.csv`` (the summary), ``compare.md`` (the table) and ``compare.png`` (grouped
bars with error bars). Means are over seeds; ``±`` is the *sample* standard deviation
(``ddof=1``), left out with one seed. Complexity columns: model parameters, FLOPs per
sample (see :mod:`gcnretrieval.experiments.complexity`: forward pass of a training step
divided by the batch size, label encoder counted once per batch) and seconds per epoch
(the mean ``seconds`` of ``metrics.jsonl``: training plus the per-epoch validation pass).
For ``cca``/``pls`` these are the projection's numbers and the closed-form fitting time.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcnretrieval.config import load_config, read_recipe
from gcnretrieval.errors import ConfigError
from gcnretrieval.experiments.cells import (
    MANAGED_KEYS, Cell, CellResult, check_methods, method_kind, parse_seeds, resolved_config, run_cells,
    shared_overrides,
)
from gcnretrieval.experiments.io import write_csv, write_json, write_text
from gcnretrieval.experiments.summary import METRICS, format_mean_std, summarise

log = logging.getLogger(__name__)

__all__ = ["ComparisonResult", "compare", "parse_methods"]

CSV_COLUMNS = ["method", "kind", "seeds"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + [
    "parameters", "flops_per_sample", "flops_batch_of_one", "seconds_per_epoch", "fit_seconds"]


@dataclass
class ComparisonResult:
    """What :func:`compare` returns.

    Attributes:
        out_dir: the comparison directory.
        rows: one summary dict per method (keys of ``compare.csv``).
        cells: one dict per cell.
        table: the markdown table of ``compare.md``.
    """

    out_dir: Path
    rows: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    table: str


def parse_methods(methods: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"gcn,gat"`` or ``["gcn", "gat"]`` -> names, order kept, duplicates dropped."""
    parts = methods.split(",") if isinstance(methods, str) else list(methods)
    names = [p.strip().lower() for p in parts if p and p.strip()]
    if not names:
        raise ConfigError("no encoders given; write e.g. --encoders gcn,gat,bagfn,l2gcn")
    return list(dict.fromkeys(names))


def _complexity(method: str, run_dir: Path, baseline: dict[str, Any]) -> dict[str, Any]:
    if baseline:
        return {"parameters": baseline.get("parameters"), "flops_per_sample": baseline.get("flops_per_sample"),
                "flops_batch_of_one": baseline.get("flops_per_sample")}
    from gcnretrieval.experiments.complexity import experiment_complexity

    info = experiment_complexity(resolved_config(run_dir))
    return {key: info[key] for key in ("parameters", "flops_per_sample", "flops_batch_of_one")}


def _number(value: float | None, scale: float, digits: int) -> str:
    """``value / scale`` with ``digits`` significant digits (``—`` when missing)."""
    return "—" if value is None else f"{value / scale:.{digits}g}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The comparison table (one row per method)."""
    lines = ["| method | image → text | text → image | mean | seeds | parameters (M) | MFLOPs / sample | s / epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        maps = " | ".join(format_mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in METRICS)
        seconds = (_number(row["seconds_per_epoch"], 1, 3) if row["kind"] == "encoder"
                   else f"{_number(row['fit_seconds'], 1, 3)} (fit)")
        lines.append(f"| {row['method']} | {maps} | {len(row['seeds'])} | {_number(row['parameters'], 1e6, 4)} | "
                     f"{_number(row['flops_per_sample'], 1e6, 4)} | {seconds} |")
    return "\n".join(lines)


def compare(
    recipe: str | Path | Mapping[str, Any],
    encoders: str | list[str] | tuple[str, ...],
    seeds: str | list[int] | tuple[int, ...] | None = None,
    overrides: Mapping[str, Any] | list[str] | tuple[str, ...] | None = None,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    baseline_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool | None = None,
    callback: Callable[[int, int, CellResult], None] | None = None,
) -> ComparisonResult:
    """Run one recipe with several encoders (and baselines) and seeds; tabulate and plot.

    Args:
        recipe: path of a TOML recipe or the same structure as a dict.
        encoders: registered encoder names and/or baselines (``cca``, ``pls``), as a list
            or comma-separated (``"gcn,gat,bagfn,l2gcn,none,cca,pls"``).
        seeds: ``run.seed`` of each repetition (default: the recipe's seed).
        overrides: shared ``--set`` overrides (dotted keys or ``"key=value"`` strings);
            ``encoder.name``, ``run.seed`` and ``run.name`` are set per cell.
        out: the comparison directory (default ``<run.out_dir>/compare_<name>``).
        name: comparison name (default: the recipe's ``run.name``).
        baseline_options: per-baseline options, ``{"cca": {"n_components": 32}}``.
        progress: progress bars of the training runs (``None``: when stderr is a terminal).
        callback: called as ``callback(index, total, cell_result)`` after each cell.

    Raises:
        GcnRetrievalError: an unknown encoder name, a bad recipe or override — before any
            cell runs — or a cell's own error.
    """
    raw = read_recipe(recipe) if isinstance(recipe, (str, Path)) else dict(recipe)
    changes = shared_overrides(overrides, MANAGED_KEYS + ("encoder.name",))
    base = load_config(raw, changes)
    from gcnretrieval.train import import_plugins

    import_plugins(base.plugins)
    methods = check_methods(parse_methods(encoders))
    seed_list = parse_seeds(seeds, base.run.seed)
    name = name or base.run.name
    out_dir = Path(out) if out is not None else Path(base.run.out_dir) / f"compare_{name}"

    cells = []
    for method in methods:
        for seed in seed_list:
            cell_name = f"{method}_seed{seed}"
            cell_overrides = {**changes, "encoder.name": method, "run.seed": seed, "run.name": cell_name}
            cells.append(Cell(cell_name, method, seed, {}, cell_overrides))
    results = run_cells(recipe, raw, cells, out_dir, baseline_options=dict(baseline_options or {}),
                        progress=progress, callback=callback)

    cell_dicts = [r.to_dict() for r in results]
    rows = []
    for summary in summarise(cell_dicts, key=lambda c: c["method"]):
        method = summary.pop("group")
        first = next(r for r in results if r.cell.method == method)
        rows.append({"method": method, "kind": method_kind(method), **summary,
                     **_complexity(method, first.run_dir, first.extra.get("baseline", {}))})
    table = markdown_table(rows)
    write_json(out_dir / "compare.json", {
        "recipe": str(recipe) if isinstance(recipe, (str, Path)) else None, "overrides": changes,
        "methods": methods, "seeds": seed_list, "std": "sample standard deviation over seeds (ddof=1)",
        "flops": "forward pass of one training step divided by the batch size (label encoder once per batch); "
                 "flops_batch_of_one: forward pass on one pair",
        "rows": rows, "cells": cell_dicts,
    })
    write_csv(out_dir / "compare.csv", [{**row, "seeds": " ".join(map(str, row["seeds"]))} for row in rows],
              CSV_COLUMNS)
    header = [f"# Comparison `{name}`", "",
              f"Test mAP@all, mean ± sample standard deviation over seeds {', '.join(map(str, seed_list))}.", ""]
    write_text(out_dir / "compare.md", "\n".join(header + [table, "", "![comparison](compare.png)", ""]))
    from gcnretrieval.experiments.plots import grouped_bars

    grouped_bars([{**row, "group": row["method"]} for row in rows], out_dir / "compare.png",
                 title=f"{name}: test mAP over {len(seed_list)} seed(s)")
    return ComparisonResult(out_dir, rows, cell_dicts, table)
