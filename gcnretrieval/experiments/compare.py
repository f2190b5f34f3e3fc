"""``compare``: methods side by side over seeds, with a table, paired differences and a bar chart.

The compared methods are label encoders (``encoders``: the recipe with another ``encoder.name``),
classical baselines, and the registered methods of :mod:`gcnretrieval.methods` (``methods``: each
one's preset laid over the recipe by :func:`~gcnretrieval.methods.apply_method`, or its closed form).
Every cell (method x seed) is a run directory ``<out>/<method>_seed<k>/`` of the same recipe
and overrides: only the encoder (or the method), ``run.seed`` and ``run.name`` differ.
Within a seed every cell sees the same data, validation split and label graph; seeds also
redraw those. ``compare.{json,csv,md,png}`` show per method the mean ± sample standard
deviation (``ddof=1``) over seeds, parameters, FLOPs per sample
(:mod:`gcnretrieval.experiments.complexity`) and seconds per epoch (or the fitting time), and
each method's paired difference from a reference method over the same seeds, with a 95 %
paired-t interval and a verdict (:func:`~gcnretrieval.experiments.summary.paired_difference`).

With ``tune=N`` every method first gets a study of N trials (:mod:`gcnretrieval.experiments.tune`)
on the validation split of the first seed, in ``<out>/tune/<method>/``: an encoder over the
recipe's search space, a baseline over its number of components (and CCA's ridge). The seeds then
run with each method's best values, recorded per method in ``compare.{json,csv,md}``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gcnretrieval.checks import check_count
from gcnretrieval.config import RecipeLike
from gcnretrieval.encoders import available_encoders
from gcnretrieval.errors import ConfigError, UnknownNameError, did_you_mean
from gcnretrieval.methods import METHODS, apply_method, available_methods
from gcnretrieval.models.baselines import available_baselines
from gcnretrieval.experiments.cells import Cell, CellResult, cell_recipe, run_cells
from gcnretrieval.experiments.complexity import experiment_complexity
from gcnretrieval.experiments.plots import grouped_bars
from gcnretrieval.experiments.summary import (CONFIDENCE, METRICS, format_difference, format_mean_std,
                                              paired_difference, summarise, write_summary)
from gcnretrieval.experiments.sweep import ExperimentPlan, prepare
from gcnretrieval.experiments.tune import (StudyResult, params_text, search_space, tune_baseline, tune_recipe,
                                           write_study)
from gcnretrieval.formatting import METRIC_TITLES, map_number, markdown_table as table, significant
from gcnretrieval.training import RunDirectory

log = logging.getLogger(__name__)

__all__ = ["ComparisonResult", "check_names", "compare"]

DEFAULT_RECIPE = "demo"
DEFAULT_ENCODERS = ("gcn", "gat", "l2gcn")
#: the row key ``<metric>_<suffix>`` of each entry of a paired difference
DIFFERENCE_KEYS = {"mean": "diff", "low": "diff_low", "high": "diff_high", "verdict": "verdict"}
CSV_COLUMNS = ["method", "kind", "seeds"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + [
    "reference"] + [f"{m}_{s}" for m in METRICS for s in DIFFERENCE_KEYS.values()] + [
    "parameters", "flops_per_sample", "flops_batch_of_one", "seconds_per_epoch", "fit_seconds", "tuned_values"]


@dataclass
class ComparisonResult:
    """What :func:`compare` returns: the directory, one summary row per method, one dict per cell, the table."""

    out_dir: Path
    rows: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    table: str


def check_names(names: Sequence[str], kind: str = "encoders") -> list[str]:
    """Lower-case names, order kept, duplicates dropped, each known: encoders and baselines
    (``kind="encoders"``) or registered methods (``kind="methods"``)."""
    if isinstance(names, str):
        raise TypeError(f"{kind} are a list of names, e.g. ['gcn', 'l2gcn']")
    checked = list(dict.fromkeys(name.strip().lower() for name in names if name.strip()))
    if not checked:
        example = "gcn,gat,l2gcn" if kind == "encoders" else "dscmr,l2gcn"
        raise ConfigError(f"no {kind} given; write e.g. --{kind} {example}")
    what, known = (("encoder or baseline", sorted({*available_encoders(), *available_baselines()}))
                   if kind == "encoders" else ("method", available_methods()))
    for name in checked:
        if name not in known:
            raise UnknownNameError(did_you_mean(what, name, known))
    return checked


def _cells(plan: ExperimentPlan, encoders: Sequence[str], methods: Sequence[str]) -> tuple[list[str], list[Cell]]:
    """The compared names (encoders first; a name in both runs once) and one cell per name and seed: an
    encoder swaps ``encoder.name``, a baseline fits, a method trains its preset laid over the recipe."""
    encoder_names = check_names(encoders, "encoders") if encoders else []
    method_names = [m for m in (check_names(methods, "methods") if methods else []) if m not in encoder_names]
    cells = []
    for name in [*encoder_names, *method_names]:
        method = METHODS.get(name) if name in method_names else None
        baseline = method.baseline if method else (name if name in available_baselines() else None)
        recipe = plan.recipe.with_tree(apply_method(plan.recipe.tree, name)) if method and not baseline else None
        swap = {} if method or baseline else {"encoder.name": name}
        cells += [Cell(f"{name}_seed{seed}", name, seed, {}, swap, baseline, recipe) for seed in plan.seeds]
    return [*encoder_names, *method_names], cells


def _kind(cell: Cell) -> str:
    return "baseline" if cell.baseline else "method" if cell.recipe is not None else "encoder"


def markdown_table(rows: list[dict[str, Any]], reference: str) -> str:
    """The comparison table (one row per method), with the paired difference of the mean mAP from ``reference``."""
    header = ["method", *METRIC_TITLES.values(), f"Δ mean vs {reference} ({CONFIDENCE * 100:g} % CI)", "seeds",
              "parameters (M)", "MFLOPs / sample", "s / epoch"]
    lines = []
    for row in rows:
        difference = {key: row[f"avg_map_{suffix}"] for key, suffix in DIFFERENCE_KEYS.items()}
        seconds = (significant(row["seconds_per_epoch"], 3) if row["kind"] != "baseline"
                   else f"{significant(row['fit_seconds'], 3)} (fit)")
        lines.append([row["method"], *(format_mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in METRICS),
                      "reference" if row["method"] == reference else format_difference(difference),
                      len(row["seeds"]), significant(row["parameters"], 4, 1e6),
                      significant(row["flops_per_sample"], 4, 1e6), seconds])
    return table(header, lines)


def add_paired_differences(rows: list[dict[str, Any]], cells: list[dict[str, Any]], reference: str) -> None:
    """Each row's paired difference from ``reference`` over the same seeds (``<metric>_diff``,
    ``_diff_low``, ``_diff_high``, ``_verdict``; the reference's own row has the verdict ``"reference"``)."""
    def by_seed(method: str, metric: str) -> dict[int, float]:
        return {cell["seed"]: cell[metric] for cell in cells if cell["method"] == method}

    for row in rows:
        row["reference"] = reference
        for metric in METRICS:
            if row["method"] == reference:
                difference = {"mean": None, "low": None, "high": None, "verdict": "reference"}
            else:
                difference = paired_difference(by_seed(row["method"], metric), by_seed(reference, metric))
            row.update({f"{metric}_{suffix}": difference[key] for key, suffix in DIFFERENCE_KEYS.items()})


def choose_reference(plan: ExperimentPlan, methods: list[str], reference: str | None) -> str:
    """``reference`` (one of ``methods``), by default the recipe's encoder when it is compared, else the
    first method."""
    if reference is not None:
        name = reference.strip().lower()
        if name not in methods:
            raise ConfigError(f"reference '{reference}' is not among the compared methods ({', '.join(methods)}); "
                              "add it to the encoders or choose one of them")
        return name
    recipe_encoder = plan.recipe.config.encoder.name
    if recipe_encoder in methods:
        return recipe_encoder
    log.info("the recipe's encoder '%s' is not compared: differences are taken from '%s'", recipe_encoder, methods[0])
    return methods[0]


def _complexity(result: CellResult) -> dict[str, Any]:
    """Parameters and FLOPs of a cell's model (a baseline's projection applies to one pair as to a batch)."""
    baseline = result.final.get("baseline")
    info = ({**baseline, "flops_batch_of_one": baseline["flops_per_sample"]} if baseline
            else experiment_complexity(RunDirectory(result.run_dir).config()))
    return {key: info[key] for key in ("parameters", "flops_per_sample", "flops_batch_of_one")}


def _tuned(plan: ExperimentPlan, cells: list[Cell], trials: int, baseline_options: Mapping[str, Any] | None,
           folder: Path, progress: bool | None, callback: Callable[[str, int, int, dict[str, Any]], None] | None
           ) -> tuple[list[Cell], dict[str, Any], dict[str, StudyResult]]:
    """A study of ``trials`` trials per method (its first seed's cell: recipe, overrides, baseline) on
    that seed's validation split, every search space checked before the first trial runs; then the
    cells with each method's best values (a baseline's as its options)."""
    check_count("tune", trials)
    given = [cell.baseline for cell in cells if cell.baseline and (baseline_options or {}).get(cell.baseline)]
    if given:
        raise ConfigError(f"options of baseline '{given[0]}' are both given and tuned; drop them (or --components) "
                          "or tuning")
    seed = plan.seeds[0]
    firsts = {cell.method: cell for cell in cells if cell.seed == seed}
    recipes = {m: cell_recipe(plan.recipe, cell) for m, cell in firsts.items()}  # run.name: the study's own
    if "encoder.name" in plan.recipe.config.tune.space:
        raise ConfigError("compare tunes each encoder in turn; remove 'encoder.name' from [tune.space]")
    for method, cell in firsts.items():
        if cell.baseline is None:
            search_space(recipes[method])
    studies = {}
    for method, cell in firsts.items():
        report = None if callback is None else (lambda done, total, trial, m=method: callback(m, done, total, trial))
        if cell.baseline is not None:
            study = tune_baseline(recipes[method], cell.baseline, folder / method, trials, callback=report)
        else:
            study = tune_recipe(recipes[method], folder / method, trials, progress=progress, callback=report)
        write_study(folder / method, f"Tuning `{method}` for comparison `{plan.name}`", study,
                    {"method": method, "overrides": dict(plan.recipe.changes), "trials_budget": trials})
        log.info("%s: best of %d trials on the validation split of seed %d: %s (val mean mAP %.4f)", method, trials,
                 seed, study.best_params, study.best["val_avg_map"])
        studies[method] = study
    tuned = [replace(cell, overrides={**cell.overrides, **studies[cell.method].best_params})
             if cell.baseline is None else cell for cell in cells]
    options = {cell.baseline: studies[cell.method].best_params for cell in cells if cell.baseline}
    return tuned, options, studies


def compare(
    recipe: RecipeLike = DEFAULT_RECIPE,
    encoders: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    methods: Sequence[str] | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    baseline_options: Mapping[str, Mapping[str, Any]] | None = None,
    tune: int | None = None,
    reference: str | None = None,
    progress: bool | None = None,
    callback: Callable[[int, int, CellResult], None] | None = None,
    tune_callback: Callable[[str, int, int, dict[str, Any]], None] | None = None,
) -> ComparisonResult:
    """Run one recipe with several encoders and methods, over seeds; tabulate and plot.

    Args:
        recipe: a :class:`~gcnretrieval.config.Recipe`, a TOML recipe, a packaged recipe's name
            (default ``"demo"``), or a dict.
        encoders: encoder and baseline names (``["gcn", "gat", "l2gcn", "cca"]``); default, when no
            ``methods`` are given either: ``gcn``, ``gat``, ``l2gcn``.
        methods: registered methods (:func:`~gcnretrieval.methods.available_methods`), after the encoders;
            a name in both runs once.
        seeds: ``run.seed`` of each repetition (default: the recipe's seed).
        overrides: ``--set`` overrides of every cell (not ``encoder.name``, ``run.seed``, ``run.name``).
        out: the comparison directory (default ``<run.out_dir>/compare_<name>``); ``name``: default ``run.name``.
        baseline_options: per-baseline options, ``{"cca": {"n_components": 32}}``.
        tune: trials of every method's study before the seeds run (default: none, no tuning);
            the cells then run with each method's best values (see the module docstring).
        reference: the method the others are compared with, seed by seed (default: the recipe's
            encoder when it is compared, else the first method).
        callback: called as ``callback(index, total, cell_result)`` after each cell.
        tune_callback: called as ``tune_callback(method, finished, trials, trial)`` after each trial.
    """
    plan = prepare(recipe, seeds, overrides, name, forbidden=("encoder.name",))
    names, cells = _cells(plan, DEFAULT_ENCODERS if encoders is None and methods is None else encoders or [],
                          methods or [])
    reference = choose_reference(plan, names, reference)
    out_dir = Path(out) if out is not None else plan.recipe.out_dir("compare_", plan.name)
    studies: dict[str, StudyResult] = {}
    if tune is not None:
        cells, baseline_options, studies = _tuned(plan, cells, tune, baseline_options, out_dir / "tune", progress,
                                                  tune_callback)
    results = run_cells(plan.recipe, cells, out_dir, baseline_options=baseline_options, progress=progress,
                        callback=callback)
    cell_dicts = [r.to_dict() for r in results]
    rows = []
    for summary in summarise(cell_dicts, key=lambda c: c["method"]):
        method = summary.pop("group")
        first = next(r for r in results if r.cell.method == method)
        tuned = studies[method].best_params if method in studies else None
        rows.append({"method": method, "kind": _kind(first.cell), **summary, **_complexity(first), "tuned": tuned,
                     "tuned_values": params_text(tuned, "; ") if tuned else None})
    add_paired_differences(rows, cell_dicts, reference)
    table_text = markdown_table(rows, reference)
    _write(plan, out_dir, names, reference, rows, cell_dicts, table_text, studies, tune)
    return ComparisonResult(out_dir, rows, cell_dicts, table_text)


def _write(plan: ExperimentPlan, out_dir: Path, names: list[str], reference: str, rows: list[dict[str, Any]],
           cells: list[dict[str, Any]], table_text: str, studies: Mapping[str, StudyResult],
           trials: int | None) -> None:
    """``compare.{json,csv,md,png}``."""
    figure = grouped_bars([{**row, "group": row["method"]} for row in rows], out_dir / "compare.png",
                          title=f"{plan.name}: test mAP over {len(plan.seeds)} seed(s)", reference=reference)
    interval = f"{CONFIDENCE * 100:g} % paired t interval"
    summary = {"recipe": plan.recipe.label(), "overrides": dict(plan.recipe.changes),
               "methods": names, "seeds": plan.seeds, "reference": reference,
               "differences": f"paired over the same seeds: mean of (method - {reference}) with a {interval}; "
                              "verdict better / worse when the interval excludes 0, indistinguishable when it "
                              "contains 0, 'one seed' without an interval",
               "flops": "forward pass of one training step divided by the batch size (label encoder once per "
                        "batch); flops_batch_of_one: forward pass on one pair", "rows": rows, "cells": cells}
    notes = [f"Δ: paired difference of the mean mAP from `{reference}` over the same seeds, with its {interval}; "
             "*better* / *worse* when the interval excludes 0, *indistinguishable* when it contains it. In the "
             "figure the bars' error bars are the sample standard deviation over seeds and the right panel's the "
             f"{CONFIDENCE * 100:g} % paired t intervals of the differences."]
    if studies:
        summary["tune"] = {"trials": trials, "seed": plan.seeds[0], "split": "validation",
                           "methods": {m: {"values": study.best_params, "val_avg_map": study.best["val_avg_map"],
                                           "best_trial": study.best["number"], "tune_dir": str(study.folder)}
                                       for m, study in studies.items()}}
        notes.append(f"Values tuned for each method: {trials} trial(s) on the validation split of seed "
                     f"{plan.seeds[0]} (`tune/<method>/tune.md`), used by every seed.\n\n" +
                     table(["method", "val mean mAP", "values"],
                           [[m, map_number(study.best["val_avg_map"]), params_text(study.best_params, "; ")]
                            for m, study in studies.items()]))
    write_summary(out_dir, "compare", f"Comparison `{plan.name}`", summary, rows, CSV_COLUMNS, table_text, [figure],
                  notes)
