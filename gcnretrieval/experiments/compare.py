"""``compare``: a sweep over ``encoder.name``, with classical baselines beside it, a table and a bar chart.

Every cell (method x seed) is a run directory ``<out>/<method>_seed<k>/`` of the same recipe
and overrides: only the encoder (or the baseline), ``run.seed`` and ``run.name`` differ.
Within a seed every cell sees the same data, validation split and label graph; seeds also
redraw those. ``compare.{json,csv,md,png}`` show per method the mean ± sample standard
deviation (``ddof=1``) over seeds, parameters, FLOPs per sample
(:mod:`gcnretrieval.experiments.complexity`) and seconds per epoch (or the fitting time).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcnretrieval.config import load_config
from gcnretrieval.encoders import available_encoders
from gcnretrieval.errors import ConfigError, UnknownNameError, did_you_mean
from gcnretrieval.models.baselines import available_baselines
from gcnretrieval.experiments.cells import Cell, CellResult, run_cells
from gcnretrieval.experiments.complexity import experiment_complexity
from gcnretrieval.experiments.plots import grouped_bars
from gcnretrieval.experiments.summary import METRICS, format_mean_std, summarise, write_summary
from gcnretrieval.experiments.sweep import grid_cells, prepare
from gcnretrieval.training import RunDirectory

log = logging.getLogger(__name__)

__all__ = ["ComparisonResult", "compare", "parse_methods"]

DEFAULT_RECIPE = "demo"
CSV_COLUMNS = ["method", "kind", "seeds"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + [
    "parameters", "flops_per_sample", "flops_batch_of_one", "seconds_per_epoch", "fit_seconds"]


@dataclass
class ComparisonResult:
    """What :func:`compare` returns: the directory, one summary row per method, one dict per cell, the table."""

    out_dir: Path
    rows: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    table: str


def parse_methods(methods: str | Sequence[str]) -> list[str]:
    """``"gcn,gat"`` or ``["gcn", "gat"]`` -> lower-case names, order kept, duplicates dropped, each known."""
    parts = methods.split(",") if isinstance(methods, str) else list(methods)
    names = list(dict.fromkeys(p.strip().lower() for p in parts if p and p.strip()))
    if not names:
        raise ConfigError("no encoders given; write e.g. --encoders gcn,gat,bagfn,l2gcn")
    choices = sorted({*available_encoders(), *available_baselines()})
    for name in names:
        if name not in choices:
            raise UnknownNameError(did_you_mean("encoder or baseline", name, choices))
    return names


def _number(value: float | None, scale: float, digits: int) -> str:
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


def _complexity(result: CellResult) -> dict[str, Any]:
    baseline = result.final.get("baseline")
    if baseline:
        return {"parameters": baseline["parameters"], "flops_per_sample": baseline["flops_per_sample"],
                "flops_batch_of_one": baseline["flops_per_sample"]}
    info = experiment_complexity(RunDirectory(result.run_dir).config())
    return {key: info[key] for key in ("parameters", "flops_per_sample", "flops_batch_of_one")}


def compare(
    recipe: str | Path | Mapping[str, Any] = DEFAULT_RECIPE,
    encoders: str | Sequence[str] = ("gcn", "gat", "l2gcn"),
    seeds: str | Sequence[int] | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    baseline_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool | None = None,
    callback: Callable[[int, int, CellResult], None] | None = None,
) -> ComparisonResult:
    """Run one recipe with several encoders (and baselines) and seeds; tabulate and plot.

    Args:
        recipe: a TOML recipe, a packaged recipe's name (default ``"demo"``), or a dict.
        encoders: encoder and baseline names, a list or comma-separated (``"gcn,gat,l2gcn,cca,pls"``).
        seeds: ``run.seed`` of each repetition (default: the recipe's seed).
        overrides: ``--set`` overrides of every cell (not ``encoder.name``, ``run.seed``, ``run.name``).
        out: the comparison directory (default ``<run.out_dir>/compare_<name>``); ``name``: default ``run.name``.
        baseline_options: per-baseline options, ``{"cca": {"n_components": 32}}``.
        callback: called as ``callback(index, total, cell_result)`` after each cell.
    """
    plan = prepare(recipe, seeds, overrides, name, forbidden=("encoder.name",))
    methods = parse_methods(encoders)
    trained = [m for m in methods if m not in available_baselines()]
    cells = grid_cells(plan, {"encoder.name": trained}, naming=lambda keys, point, seed: f"{point[0]}_seed{seed}") \
        if trained else []
    for method in methods:
        if method in available_baselines():
            cells += [Cell(f"{method}_seed{seed}", method, seed, {}, {**plan.changes, "run.seed": seed,
                                                                      "run.name": f"{method}_seed{seed}"}, method)
                      for seed in plan.seeds]
    cells.sort(key=lambda cell: methods.index(cell.method))
    out_dir = Path(out) if out is not None else Path(load_config(plan.raw).run.out_dir) / f"compare_{plan.name}"
    results = run_cells(recipe, plan.raw, cells, out_dir, baseline_options=baseline_options, progress=progress,
                        callback=callback)

    cell_dicts = [r.to_dict() for r in results]
    rows = []
    for summary in summarise(cell_dicts, key=lambda c: c["method"]):
        method = summary.pop("group")
        first = next(r for r in results if r.cell.method == method)
        kind = "baseline" if first.cell.baseline else "encoder"
        rows.append({"method": method, "kind": kind, **summary, **_complexity(first)})
    table = markdown_table(rows)
    figure = grouped_bars([{**row, "group": row["method"]} for row in rows], out_dir / "compare.png",
                          title=f"{plan.name}: test mAP over {len(plan.seeds)} seed(s)")
    summary = {"recipe": str(recipe) if isinstance(recipe, (str, Path)) else None, "overrides": plan.changes,
               "methods": methods, "seeds": plan.seeds,
               "flops": "forward pass of one training step divided by the batch size (label encoder once per "
                        "batch); flops_batch_of_one: forward pass on one pair", "rows": rows, "cells": cell_dicts}
    write_summary(out_dir, "compare", f"Comparison `{plan.name}`", summary, rows, CSV_COLUMNS, table, [figure])
    return ComparisonResult(out_dir, rows, cell_dicts, table)
