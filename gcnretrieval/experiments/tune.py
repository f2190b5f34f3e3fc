r"""``tune``: a search over recipe keys with Optuna, selected on the validation split, then one final run.

Every trial trains the recipe with one value per key of the search space (``[tune.space]``, or
:func:`default_space`) and is scored by its selected epoch's validation mean mAP. Optuna's TPE
sampler, seeded by ``run.seed``, proposes the values; its ``MedianPruner`` stops a trial whose
validation mean mAP after an epoch is below the median of the earlier trials' at that epoch
(:class:`ReportToTrial`). A trial builds the experiment and fits it
(:class:`~gcnretrieval.training.Trainer`) without a run's final evaluation, so no trial reads
the test split. The best trial's values are then trained once more as a normal run directory,
``<out>/best/`` (:func:`gcnretrieval.run`): the only time the test split is scored.

The study is stored in ``<out>/study.db`` (SQLite), so rerunning an interrupted tuning continues
it: finished trials (complete, pruned, or ended by a diverging loss) are kept and count toward
the budget of trials, and an interrupted trial is tried again with its values. One process at a
time tunes a directory. Every trial uses the same seed, hence the same data, validation split
and initialisation; a resumed study reseeds the sampler from the seed and the number of trials
so far. ``tune.json`` and ``tune.md`` list every trial (values, validation mAP per epoch, state)
and the best.

:func:`tune_baseline` is the same search for a classical baseline (the search space its registration
carries, :class:`~gcnretrieval.models.baselines.Baseline`: its number of components and, for ``cca`` and
``mlcca``, its ridge), fitted on the training split and scored on the validation split;
``compare(..., tune=N)`` gives every method such a study.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from gcnretrieval.checks import check_count, check_option, check_positive
from gcnretrieval.config import (Config, Recipe, RecipeLike, check_same_config, flatten, load_config, space_samples,
                                 with_absolute_paths, with_seed)
from gcnretrieval.errors import ConfigError, GcnRetrievalError, InvalidArgument, RunFailed
from gcnretrieval.experiments.cells import BUSY_ADVICE, Cell, CellResult, run_cells
from gcnretrieval.files import OTHER_FOLDER, check_not_in_the_way, write_json, write_text
from gcnretrieval.formatting import map_number, maps_text, markdown_table, significant
from gcnretrieval.locks import LOCK_FILE, FolderLock
from gcnretrieval.metrics import METRIC_KEYS, retrieval_report
from gcnretrieval.models.baselines import BASELINES, fit_baseline
from gcnretrieval.options import SearchKey, TuneOptions
from gcnretrieval.training import Callback, Trainer, build_experiment, distributed, load_data, run_callbacks

log = logging.getLogger(__name__)

__all__ = ["ReportToTrial", "SearchKey", "StudyResult", "TuneResult", "default_space",
           "params_text", "search_space", "tune", "tune_baseline", "tune_recipe"]

STUDY_FILE = "study.db"
STUDY_NAME = "tune"
FINAL_RUN = "best"
#: states of a trial that count toward the budget
FINISHED = ("complete", "pruned", "diverged")
#: called as ``callback(finished, trials, trial)`` after each trial (``trial`` as in ``tune.json``)
TrialCallback = Callable[[int, int, dict[str, Any]], None]


def default_space(config: Config) -> dict[str, Any]:
    """The search space when a recipe has no ``[tune.space]``, around the paper's values
    (lr 5e-5, alpha 1.1, beta 2.2, theta 0.6, tau 0.22; the common dimension 1024), with
    the training length from a quarter to twice the recipe's (``train.steps`` when set)."""
    length_key = "train.steps" if config.train.steps else "train.epochs"
    length = config.train.steps or config.train.epochs
    return {
        "train.lr": {"low": 1e-5, "high": 1e-2, "log": True},
        "model.common_dim": [256, 512, 1024],
        length_key: {"low": max(1, length // 4), "high": 2 * length},
        "loss.alpha": {"low": 0.25, "high": 4.0, "log": True},
        "loss.beta": {"low": 0.5, "high": 8.0, "log": True},
        "loss.theta": {"low": 0.1, "high": 0.9},
        "loss.temperature": {"low": 0.05, "high": 1.0, "log": True},
    }


def search_space(recipe: Recipe) -> list[SearchKey]:
    """The search space of a recipe with overrides: its ``[tune.space]`` (a key may not also be
    overridden), else :func:`default_space` less the keys the overrides set and those the recipe
    refuses (``loss.alpha`` with ``loss.condition = "no_cla"``, ...)."""
    changes, config = recipe.changes, recipe.config
    entries = dict(config.tune.space)
    both = next((key for key in entries if key in changes), None)
    if both is not None:
        raise ConfigError(f"'{both}' is both tuned (tune.space) and set (--set); keep one")
    if not entries:
        for key, entry in default_space(config).items():
            if key in changes:
                log.info("default search space: %s is set by the overrides, not tuned", key)
                continue
            try:
                for value in space_samples(entry):
                    recipe.with_changes({key: value}).config
            except GcnRetrievalError as err:
                log.info("default search space: %s left out (%s)", key, err)
                continue
            entries[key] = entry
    if not entries:
        raise ConfigError("nothing to tune: the search space is empty; list keys in [tune.space]")
    values = flatten(config.to_dict())
    try:
        return [SearchKey.from_entry(key, entry, values.get(key)) for key, entry in entries.items()]
    except InvalidArgument as err:  # a range of numbers over an integer key
        raise ConfigError(f"recipe key 'tune.{err.argument}' {err.rule}") from None


class ReportToTrial(Callback):
    """Reports each epoch's selection mean mAP to an Optuna trial and ends the trial
    (``optuna.TrialPruned``) when the study's pruner says so (a study without pruning has Optuna's
    ``NopPruner``, which never does); records the epochs trained and the selected epoch's mAPs as
    the trial's user attributes."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        prefix = f"{trainer.select_on}_"
        self.trial.set_user_attr("epochs_trained", row["epoch"])
        if row.get("selected"):
            self.trial.set_user_attr("selected_epoch", row["epoch"])
            self.trial.set_user_attr("val", {key: row[prefix + key] for key in METRIC_KEYS})
        score = row[f"{prefix}avg_map"]
        if score is not None:
            self.trial.report(score, row["epoch"])
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"validation mean mAP {score:.4f} at epoch {row['epoch']} is below the "
                                         "median of the earlier trials'")


# --- studies --------------------------------------------------------------------------------


@dataclass
class StudyResult:
    """A study after its trials: the folder, the seed, the search space, every trial (dicts as in
    ``tune.json``), the best complete one, and the pruning (``None``: none)."""

    folder: Path
    seed: int
    space: list[SearchKey]
    trials: list[dict[str, Any]]
    best: dict[str, Any]
    pruning: TuneOptions | None

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best["params"])

    def to_dict(self) -> dict[str, Any]:
        pruning = {"enabled": False} if self.pruning is None else {
            "enabled": True, "startup_trials": self.pruning.startup_trials, "warmup_epochs": self.pruning.warmup_epochs,
            "rule": "median of the earlier trials' validation mean mAP at the same epoch"}
        return {"seed": self.seed, "sampler": f"TPE, seed {self.seed}", "pruning": pruning,
                "space": [key.to_dict() for key in self.space], "trials": self.trials, "best": self.best}


def _state(trial: Any) -> str:
    if trial.state == TrialState.FAIL:
        return "diverged" if "error" in trial.user_attrs else "interrupted"
    return trial.state.name.lower()


def _finished(study: optuna.Study) -> int:
    return sum(_state(trial) in FINISHED for trial in study.get_trials(deepcopy=False))


def _trial_dict(trial: Any, space: Sequence[SearchKey]) -> dict[str, Any]:
    keys, attrs = {key.key: key for key in space}, trial.user_attrs
    val = attrs.get("val")
    return {"number": trial.number, "state": _state(trial),
            "params": {name: keys[name].decode(value) for name, value in trial.params.items()},
            "val_avg_map": val["avg_map"] if val and trial.state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
            "val": val, "selected_epoch": attrs.get("selected_epoch"), "epochs_trained": attrs.get("epochs_trained"),
            "val_avg_map_per_epoch": [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)],
            "seconds": None if trial.duration is None else trial.duration.total_seconds(),
            "error": attrs.get("error"), "retry_of": attrs.get("retry_of")}


def _open_study(folder: Path, record: dict[str, Any], seed: int, pruner: Any) -> tuple[optuna.Study, int]:
    """The study in ``folder/study.db``, created or continued (then ``record``, what the search is, must be the
    one it was started with, and its seed is the recorded one); the sampler is seeded by the seed and the
    number of trials so far."""
    study = optuna.create_study(storage=f"sqlite:///{(folder / STUDY_FILE).resolve()}", study_name=STUDY_NAME,
                                direction="maximize", pruner=pruner, load_if_exists=True)
    stored = study.user_attrs.get("search")
    if stored is None:
        study.set_user_attr("search", {**record, "seed": seed})
    elif stored.get("method") != record["method"]:
        raise ConfigError(f"{folder} tunes '{stored.get('method')}', not '{record['method']}'; {OTHER_FOLDER}")
    else:
        check_same_config(_without_tune(stored["config"]), _without_tune(record["config"]),
                          where=f"{folder} was tuned", fix=OTHER_FOLDER, may_differ=("train.device",))
        if sorted(stored["space"], key=lambda key: key["key"]) != sorted(record["space"], key=lambda key: key["key"]):
            keys = ", ".join(entry["key"] for entry in stored["space"])
            raise ConfigError(f"{folder} was tuned over another search space ({keys}); {OTHER_FOLDER}")
        seed = stored["seed"]
    study.sampler = optuna.samplers.TPESampler(
        seed=int(np.random.SeedSequence([seed, len(study.trials)]).generate_state(1)[0]))
    return study, seed


def _without_tune(tree: Mapping[str, Any]) -> Config:
    """A configuration without its ``[tune]`` table (the space is compared on its own; the pruning may change)."""
    return load_config({key: value for key, value in tree.items() if key != "tune"})


def _recover(study: optuna.Study, keys: set[str]) -> None:
    """Trials a stopped process left running are marked failed, and every interrupted trial not yet
    retried is queued again with its values."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {trial.user_attrs.get("retry_of") for trial in trials}
    for trial in trials:
        if _state(trial) == "interrupted" and trial.number not in retried and set(trial.params) == keys:
            log.info("trial %d was interrupted: trying its values again", trial.number)
            study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})


def run_study(folder: Path, method: str, config: Config, space: list[SearchKey],
              objective: Callable[[Any, int, dict[str, Any]], float], trials: int, *,
              pruning: TuneOptions | None = None, timeout: float | None = None,
              callback: TrialCallback | None = None) -> StudyResult:
    """Run (or continue) the study of ``folder`` until ``trials`` trials have finished, or ``timeout``
    seconds have passed; ``config`` (``run.seed`` possibly unset) and ``space`` must be those the study
    was started with. ``objective(trial, seed, params)``, given the values the sampler proposes for the
    search space (``{key: value}``), returns the trial's validation mean mAP, or NaN when
    its loss diverged (the trial then fails, with its reason in the user attribute ``error``).
    With ``pruning``, Optuna's ``MedianPruner`` stops unpromising trials (default: none is stopped).
    ``folder`` is locked meanwhile (:class:`~gcnretrieval.locks.FolderLock`)."""
    check_not_in_the_way(folder, "a tuning folder", STUDY_FILE, ignore=(LOCK_FILE,))
    folder.mkdir(parents=True, exist_ok=True)
    record = {"method": method, "config": config.to_dict(), "space": [key.to_dict() for key in space]}
    pruner = optuna.pruners.NopPruner() if pruning is None else optuna.pruners.MedianPruner(
        n_startup_trials=pruning.startup_trials, n_warmup_steps=pruning.warmup_epochs + 1)
    with FolderLock(folder, "tuning folder", BUSY_ADVICE):
        study, seed = _open_study(folder, record, with_seed(config).run.seed, pruner)
        _recover(study, {key.key for key in space})
        finished = _finished(study)
        if finished < trials:
            log.info("%s: %d of %d trials finished, running %d more", folder, finished, trials, trials - finished)
            report = [] if callback is None else [
                lambda study, trial: callback(_finished(study), trials, _trial_dict(trial, space))]
            study.optimize(lambda trial: objective(trial, seed, {key.key: key.suggest(trial) for key in space}),
                           n_trials=trials - finished, timeout=timeout, callbacks=report)
        records = [_trial_dict(trial, space) for trial in study.get_trials(deepcopy=False)]
    complete = [t for t in records if t["state"] == "complete"]
    if not complete:
        raise RunFailed(f"no trial of {folder} completed ({len(records)} ended pruned, diverged or interrupted); "
                        "narrow the search space or raise the number of trials")
    best = max(complete, key=lambda t: (t["val_avg_map"], -t["number"]))
    return StudyResult(folder, seed, space, records, best, pruning)


def _tunable_config(recipe: Recipe) -> Config:
    """The configuration of a recipe with overrides, refused when it cannot be tuned."""
    config = recipe.config
    if config.eval.select_on != "val":
        raise ConfigError("tuning selects on the validation split; remove eval.select_on = \"test\" from the recipe")
    if distributed.launched():
        raise ConfigError("tuning runs in one process; start it without torchrun")
    return config


def tune_recipe(recipe: Recipe, folder: Path, trials: int, *, timeout: float | None = None,
                progress: bool | None = None, callback: TrialCallback | None = None) -> StudyResult:
    """The study of a trained recipe: ``trials`` trials over :func:`search_space`, each fitted on the
    training split and scored on the validation split (no final run)."""
    config = _tunable_config(recipe)
    space = search_space(recipe)

    def objective(trial: Any, seed: int, params: dict[str, Any]) -> float:
        log.info("trial %d: %s", trial.number, params_text(params))
        trial_config = with_absolute_paths(recipe.with_changes({**params, "run.seed": seed}).config)
        trainer = Trainer(build_experiment(trial_config))
        try:
            trainer.fit(run_callbacks(trial_config.train, progress=progress, extra=[ReportToTrial(trial)]))
        except RunFailed as err:  # a diverging loss: the trial fails, the study goes on
            log.warning("trial %d: %s", trial.number, err)
            trial.set_user_attr("error", str(err))
            return math.nan
        if trainer.selection.best_epoch is None:
            trial.set_user_attr("error", "no epoch had a finite validation mAP")
            return math.nan
        return float(trainer.selection.best_score)

    return run_study(folder, config.encoder.name, config, space, objective, trials,
                     pruning=config.tune if config.tune.pruning else None, timeout=timeout, callback=callback)


def tune_baseline(recipe: Recipe, method: str, folder: Path, trials: int, *,
                  timeout: float | None = None, callback: TrialCallback | None = None) -> StudyResult:
    """The study of a baseline on a recipe's data: fitted on the training split, scored on the validation split."""
    config = _tunable_config(recipe)
    resolved = with_absolute_paths(with_seed(config))
    dataset = load_data(resolved)
    limit = min(dataset.image_dim, dataset.text_dim, len(dataset.train))
    space = [SearchKey.from_entry(key, entry) for key, entry in BASELINES.get(method).search_space(limit).items()]
    datasets = {resolved.run.seed: dataset}  # a resumed study keeps its recorded seed: its data are read once

    def objective(trial: Any, seed: int, params: dict[str, Any]) -> float:
        if seed not in datasets:
            datasets[seed] = load_data(resolved.replace(**{"run.seed": seed}))
        data = datasets[seed]
        fitted = fit_baseline(method, data.train.image, data.train.text, seed=seed, labels=data.train.labels, **params)
        image, text = fitted.embed(data.val.image, data.val.text)
        scores = retrieval_report(image, text, np.asarray(data.val.labels))
        trial.set_user_attr("val", scores)
        return scores["avg_map"]

    return run_study(folder, method, config, space, objective, trials, timeout=timeout, callback=callback)


# --- the tune command -----------------------------------------------------------------------


@dataclass
class TuneResult:
    """What :func:`tune` returns: the tune directory, the best trial's values and validation mean mAP,
    every trial, the final run's directory and test mAPs, and the trials table (markdown)."""

    out_dir: Path
    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    trials: list[dict[str, Any]]
    run_dir: Path
    test: dict[str, float]
    table: str


def params_text(params: Mapping[str, Any], separator: str = ", ") -> str:
    """``"train.lr=0.0001, model.common_dim=512"`` (numbers to four significant digits)."""
    return separator.join(f"{key}={significant(value)}" for key, value in params.items())


def trials_table(study: StudyResult) -> str:
    """One row per trial: state, validation mean mAP, epochs trained and the values."""
    keys = [key.key for key in study.space]
    rows = [[t["number"], t["state"] + (" (best)" if t["number"] == study.best["number"] else ""),
             "—" if t["val_avg_map"] is None else map_number(t["val_avg_map"]), significant(t["epochs_trained"]),
             *[significant(t["params"].get(key, "—")) for key in keys]] for t in study.trials]
    return markdown_table(["trial", "state", "val mean mAP", "epochs", *[f"`{key}`" for key in keys]], rows)


def write_study(folder: Path, title: str, study: StudyResult, extra: Mapping[str, Any],
                final: CellResult | None = None) -> str:
    """``tune.json`` and ``tune.md`` of a study (with the final run, when there is one); returns the table."""
    table = trials_table(study)
    summary = {**extra, **study.to_dict(),
               "selection": "validation split only: trials are scored by their selected epoch's validation mean "
                            "mAP; the test split is scored once, by the final run"}
    text = [f"# {title}", "",
            f"{len(study.trials)} trial(s), {sum(t['state'] in FINISHED for t in study.trials)} finished, sampled by "
            f"Optuna's TPE (seed {study.seed})"
            + (f"; median pruning after {study.pruning.startup_trials} trial(s), never in a trial's first "
               f"{study.pruning.warmup_epochs} epoch(s)" if study.pruning else "")
            + ". Trials are scored on the validation split only.", "",
            markdown_table(["key", "searched over"], [[f"`{key.key}`", key.describe()] for key in study.space]), "",
            table, "",
            f"Best: trial {study.best['number']}, validation mean mAP {study.best['val_avg_map']:.4f}: "
            f"{params_text(study.best_params)}.", ""]
    if final is not None:
        summary["final"] = {"run_dir": str(final.run_dir), "status": final.status, "test": final.test,
                            "selected_epoch": final.selected_epoch}
        text += [f"Final run with these values: `{final.run_dir.name}/`, selected epoch {final.selected_epoch}; "
                 f"test mAP {maps_text(final.test)} (the only evaluation on the test split).", ""]
    write_json(folder / "tune.json", summary)
    write_text(folder / "tune.md", "\n".join(text))
    return table


def tune(
    recipe: RecipeLike,
    trials: int,
    timeout: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    progress: bool | None = None,
    callback: TrialCallback | None = None,
) -> TuneResult:
    """Tune a recipe's keys on its validation split, then train the best values once and test them.

    Args:
        recipe: a TOML recipe, a packaged recipe's name, or the same structure as a dict;
            its ``[tune]`` table names the search space (:class:`~gcnretrieval.options.TuneOptions`).
        trials: the budget: trials that finish (complete, pruned or diverged), counting those of
            an earlier, interrupted call on the same directory.
        timeout: seconds after which no new trial starts (default: none).
        overrides: ``--set`` overrides of every trial and of the final run.
        out: the tune directory (default ``<run.out_dir>/tune_<name>``); ``name``: default ``run.name``.
        progress: progress bars; ``None`` (default) when stderr is a terminal.
        callback: called as ``callback(finished, trials, trial)`` after each trial (``trial`` as in ``tune.json``).

    Returns:
        :class:`TuneResult`; the directory holds ``study.db``, ``tune.json``, ``tune.md`` and the
        final run ``best/``.
    """
    check_count("trials", trials)
    if timeout is not None:
        check_option(check_positive, "timeout", timeout)
    recipe = Recipe.of(recipe, overrides)
    out_dir = Path(out) if out is not None else recipe.out_dir("tune_", name)
    study = tune_recipe(recipe, out_dir, trials, timeout=timeout, progress=progress, callback=callback)
    params = study.best_params
    method = recipe.with_changes(params).config.encoder.name
    cell = Cell(FINAL_RUN, method, study.seed, params, params)
    log.info("best trial %d (validation mean mAP %.4f): %s; training it once more and testing it",
             study.best["number"], study.best["val_avg_map"], params_text(params))
    [final] = run_cells(recipe, [cell], out_dir, progress=progress)
    extra = {"recipe": recipe.label(), "overrides": dict(recipe.changes), "trials_budget": trials, "timeout": timeout}
    table = write_study(out_dir, f"Tuning `{name or recipe.config.run.name}`", study, extra, final)
    return TuneResult(out_dir, params, study.best["val_avg_map"], study.best["number"], study.trials, final.run_dir,
                      dict(final.test), table)

