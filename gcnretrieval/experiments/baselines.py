"""A baseline (CCA, PLS, chance level; :mod:`gcnretrieval.models.baselines`) run on a recipe's data, as a run directory."""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gcnretrieval.config import Recipe, RecipeLike, with_absolute_paths, with_seed
from gcnretrieval.formatting import maps_text
from gcnretrieval.metrics import retrieval_report
from gcnretrieval.models.baselines import BASELINES, available_baselines, fit_baseline
from gcnretrieval.runner import RunResult, report_text
from gcnretrieval.training import RunDirectory, load_data

log = logging.getLogger(__name__)

__all__ = ["available_baselines", "run_baseline"]


def _report(config: Any, dataset: Any, final: dict[str, Any]) -> str:
    info = final["baseline"]
    line = BASELINES.get(info["method"]).describe(info["n_components"], config.run.seed, info["fit_seconds"])
    return report_text(f"# Run `{config.run.name}` (baseline `{info['method']}`)", dataset, [f"- {line}"],
                       info["method"], final["test"])


def run_baseline(
    recipe: RecipeLike,
    overrides: Mapping[str, Any] | None = None,
    *,
    method: str,
    out: str | Path | None = None,
    n_components: int | None = None,
    **options: Any,
) -> RunResult:
    """Fit a baseline on a recipe's training pairs, score its test split, and write a run directory.

    The data come from the recipe exactly as a trained model's do
    (:func:`gcnretrieval.training.load_data`, validation pairs carved and left out). The run
    directory holds ``recipe.toml``, ``config.resolved.json``, ``environment.json``, an
    empty ``metrics.jsonl``, ``final_metrics.json`` (``selected_epoch`` null, a
    ``baseline`` entry) and ``report.md``, written at once.

    Args:
        recipe: a :class:`~gcnretrieval.config.Recipe`, a TOML recipe, a packaged recipe's name, or a dict.
        overrides: dotted keys with their values.
        method: ``"cca"``, ``"mlcca"`` (multi-label CCA), ``"pls"`` or ``"random"`` (chance level).
        out: the run directory (default ``<run.out_dir>/<run.name>``); must be free.
        n_components: common dimension (default ``min(64, d_v, d_t, n_train)``).
        **options: options of the method (``regularization`` of ``cca``, default ``1e-3``).
    """
    BASELINES.get(method)
    recipe = Recipe.of(recipe, overrides)
    config = with_absolute_paths(with_seed(recipe.config))
    run_dir = Path(out) if out is not None else recipe.out_dir()
    RunDirectory.check_free(run_dir)

    dataset = load_data(config)
    started = time.perf_counter()
    fitted = fit_baseline(method, dataset.train.image, dataset.train.text, n_components,
                          seed=config.run.seed, labels=np.asarray(dataset.train.labels), **options)
    fit_seconds = time.perf_counter() - started
    image, text = fitted.embed(dataset.test.image, dataset.test.text)
    test = retrieval_report(image, text, np.asarray(dataset.test.labels))
    final = {
        "test": test, "selected_epoch": None, "selected_on": None, "epochs_trained": 0,
        "baseline": {"method": method, "n_components": fitted.n_components, "fit_seconds": fit_seconds,
                     "options": dict(options), "parameters": fitted.num_parameters,
                     "flops_per_sample": fitted.flops_per_sample, "train_pairs": len(dataset.train)},
    }
    log.info("%s (%d components, fitted in %.2f s): test mAP %s", method, fitted.n_components, fit_seconds,
             maps_text(test))
    RunDirectory.create(run_dir, config, recipe_text=recipe.text(), folders=(),
                        files={RunDirectory.FINAL: final, RunDirectory.REPORT: _report(config, dataset, final)})
    return RunResult(run_dir, test, None, None, [], config)
