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

:func:`tune_baseline` is the same search for a classical baseline (:data:`BASELINE_SPACES`:
its number of components and, for ``cca`` and ``mlcca``, its ridge), fitted on the training split and scored
on the validation split; ``compare(..., tune=N)`` gives every method such a study.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gcnretrieval.checks import check_positive, check_positive_int
from gcnretrieval.config import (Config, first_difference, flatten, load_config, parse_overrides, read_recipe,
                                 space_samples, with_absolute_paths, with_seed)
from gcnretrieval.errors import ConfigError, GcnRetrievalError, InvalidArgument, RunFailed
from gcnretrieval.experiments.cells import BUSY_ADVICE, Cell, CellResult, run_cells
from gcnretrieval.files import write_json, write_text
from gcnretrieval.locks import LOCK_FILE, FolderLock
from gcnretrieval.metrics import retrieval_report
from gcnretrieval.models.baselines import fit_baseline
from gcnretrieval.options import SearchKey
from gcnretrieval.training import Callback, Trainer, build_experiment, load_data, run_callbacks

log = logging.getLogger(__name__)

__all__ = ["BASELINE_SPACES", "ReportToTrial", "SearchKey", "StudyResult", "TuneResult", "default_space",
           "params_text", "search_space", "tune", "tune_baseline", "tune_recipe"]

STUDY_FILE = "study.db"
STUDY_NAME = "tune"
FINAL_RUN = "best"
#: keys of a finished configuration that may differ when a study is continued
_MAY_DIFFER = ("train.device", "run.out_dir", "run.name")
#: states of a trial that count toward the budget
FINISHED = ("complete", "pruned", "diverged")

#: search space of each baseline: ``n_components`` up to min(d_v, d_t, training pairs), log-uniform
BASELINE_SPACES: dict[str, dict[str, Any]] = {
    "cca": {"n_components": {"low": 1, "high": None, "log": True},
            "regularization": {"low": 1e-6, "high": 1.0, "log": True}},
    "mlcca": {"n_components": {"low": 1, "high": None, "log": True},
              "regularization": {"low": 1e-6, "high": 1.0, "log": True}},
    "pls": {"n_components": {"low": 1, "high": None, "log": True}},
    "random": {},
}


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


def search_space(raw: Mapping[str, Any], changes: Mapping[str, Any] | None = None) -> list[SearchKey]:
    """The search space of a recipe with overrides: its ``[tune.space]`` (a key may not also be
    overridden), else :func:`default_space` less the keys the overrides set and those the recipe
    refuses (``loss.alpha`` with ``loss.condition = "no_cla"``, ...)."""
    changes = dict(changes or {})
    config = load_config(raw, changes)
    entries = dict(config.tune.space)
    if entries:
        for key in entries:
            if key in changes:
                raise ConfigError(f"'{key}' is both tuned (tune.space) and set (--set); keep one")
    else:
        for key, entry in default_space(config).items():
            if key in changes:
                log.info("default search space: %s is set by the overrides, not tuned", key)
                continue
            try:
                for value in space_samples(entry):
                    load_config(raw, {**changes, key: value})
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
    """Reports each epoch's selection mean mAP to an Optuna trial and, with ``prune``, ends the
    trial (``optuna.TrialPruned``) when the pruner says so; records the epochs trained and the
    selected epoch's mAPs as the trial's user attributes."""

    def __init__(self, trial: Any, prune: bool = True) -> None:
        self.trial, self.prune = trial, prune

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        import optuna

        prefix = f"{trainer.select_on}_"
        self.trial.set_user_attr("epochs_trained", row["epoch"])
        if row.get("selected"):
            self.trial.set_user_attr("selected_epoch", row["epoch"])
            self.trial.set_user_attr("val", {key: row[prefix + key] for key in ("i2t_map", "t2i_map", "avg_map")})
        score = row[f"{prefix}avg_map"]
        if score is None:
            return
        self.trial.report(score, row["epoch"])
        if self.prune and self.trial.should_prune():
            raise optuna.TrialPruned(f"validation mean mAP {score:.4f} at epoch {row['epoch']} is below the median "
                                     "of the earlier trials'")


# --- studies --------------------------------------------------------------------------------


@dataclass
class StudyResult:
    """A study after its trials: the folder, the seed, the search space, every trial (dicts as in
    ``tune.json``) and the best complete one."""

    folder: Path
    seed: int
    space: list[SearchKey]
    trials: list[dict[str, Any]]
    best: dict[str, Any]
    options: dict[str, Any]

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best["params"])

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "sampler": f"TPE, seed {self.seed}", **self.options,
                "space": [key.to_dict() for key in self.space], "trials": self.trials, "best": self.best}


def _state(trial: Any) -> str:
    from optuna.trial import TrialState

    if trial.state == TrialState.FAIL:
        return "diverged" if "error" in trial.user_attrs else "interrupted"
    return trial.state.name.lower()


def _trial_dict(trial: Any, space: Sequence[SearchKey]) -> dict[str, Any]:
    keys = {key.key: key for key in space}
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
        if trial.datetime_complete and trial.datetime_start else None
    val = trial.user_attrs.get("val")
    return {"number": trial.number, "state": _state(trial),
            "params": {name: keys[name].decode(value) if name in keys else value for name, value in trial.params.items()},
            "val_avg_map": val["avg_map"] if val and trial.state.name in ("COMPLETE", "PRUNED") else None,
            "val": val, "selected_epoch": trial.user_attrs.get("selected_epoch"),
            "epochs_trained": trial.user_attrs.get("epochs_trained"),
            "val_avg_map_per_epoch": [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)],
            "seconds": seconds, "error": trial.user_attrs.get("error"), "retry_of": trial.user_attrs.get("retry_of")}


def _open_study(folder: Path, record: dict[str, Any], seed: int, pruner: Any) -> tuple[Any, Any, int]:
    """The study in ``folder/study.db``, created or continued; ``record`` describes the search and must
    match the one the study was started with."""
    import optuna

    if folder.exists() and not (folder / STUDY_FILE).is_file() and (
            not folder.is_dir() or any(path.name != LOCK_FILE for path in folder.iterdir())):
        raise ConfigError(f"{folder} is in the way: it exists and holds no {STUDY_FILE}; choose another --out or "
                          "--name, or delete it")
    folder.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{(folder / STUDY_FILE).resolve()}")
    try:
        study_id = storage.get_study_id_from_name(STUDY_NAME)
    except KeyError:
        study_id, count = None, 0
    else:
        stored = storage.get_study_user_attrs(study_id).get("search")
        if stored is not None:
            _check_same_search(folder, stored, record)
            seed = stored["seed"]
        count = storage.get_n_trials(study_id)
    sampler = optuna.samplers.TPESampler(seed=int(np.random.SeedSequence([seed, count]).generate_state(1)[0]))
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="maximize", sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    if study_id is None or "search" not in study.user_attrs:
        study.set_user_attr("search", {**record, "seed": seed})
    return study, storage, seed


def _check_same_search(folder: Path, stored: dict[str, Any], record: dict[str, Any]) -> None:
    if stored.get("method") != record["method"]:
        raise ConfigError(f"{folder} tunes '{stored.get('method')}', not '{record['method']}'; choose another "
                          "--out/--name or delete it")
    ignore = _MAY_DIFFER + (("run.seed",) if record["config"]["run"]["seed"] is None else ())
    difference = first_difference(_without_tune(stored["config"]), _without_tune(record["config"]), ignore)
    if difference is not None:
        key, old, new = difference
        raise ConfigError(f"{folder} was tuned with '{key}' = {old!r} but now asks for {new!r}; choose another "
                          "--out/--name or delete it")
    if sorted(stored["space"], key=lambda key: key["key"]) != sorted(record["space"], key=lambda key: key["key"]):
        raise ConfigError(f"{folder} was tuned over another search space ({_space_text(stored['space'])}); choose "
                          "another --out/--name or delete it")


def _without_tune(tree: Mapping[str, Any]) -> Config:
    """A configuration without its ``[tune]`` table (the space is compared on its own; the pruning may change)."""
    return load_config({key: value for key, value in tree.items() if key != "tune"})


def _space_text(space: list[dict[str, Any]]) -> str:
    return ", ".join(entry["key"] for entry in space)


def _recover(study: Any, storage: Any, keys: set[str]) -> None:
    """Trials a stopped process left running are marked failed, and every interrupted trial not yet
    retried is queued again with its values."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(STUDY_NAME)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number),
                                       TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {trial.user_attrs.get("retry_of") for trial in trials}
    for trial in trials:
        if _state(trial) == "interrupted" and trial.number not in retried and set(trial.params) == keys:
            log.info("trial %d was interrupted: trying its values again", trial.number)
            study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})


def run_study(folder: Path, method: str, config: Config, space: list[SearchKey], objective: Callable[[Any, int], float],
              trials: int, *, pruner: Any = None, options: Mapping[str, Any] | None = None,
              timeout: float | None = None,
              callback: Callable[[int, int, dict[str, Any]], None] | None = None) -> StudyResult:
    """Run (or continue) the study of ``folder`` until ``trials`` trials have finished, or ``timeout``
    seconds have passed; ``config`` (``run.seed`` possibly unset) and ``space`` must be those the study
    was started with. ``objective(trial, seed)`` returns the trial's validation mean mAP, or NaN when
    its loss diverged (the trial then fails, with its reason in the user attribute ``error``).
    ``folder`` is locked meanwhile (:class:`~gcnretrieval.locks.FolderLock`)."""
    lock = FolderLock(folder, "tuning folder", BUSY_ADVICE)
    try:
        if folder.is_dir():
            lock.acquire()
        return _run_study(folder, method, config, space, objective, trials, pruner, options, timeout, callback, lock)
    finally:
        lock.release()


def _run_study(folder: Path, method: str, config: Config, space: list[SearchKey],
               objective: Callable[[Any, int], float], trials: int, pruner: Any, options: Mapping[str, Any] | None, timeout: float | None,
               callback: Callable[[int, int, dict[str, Any]], None] | None, lock: FolderLock) -> StudyResult:
    import optuna

    record = {"method": method, "config": config.to_dict(), "space": [key.to_dict() for key in space]}
    study, storage, seed = _open_study(folder, record, config.run.seed if config.run.seed is not None else
                                       with_seed(config).run.seed, pruner or optuna.pruners.NopPruner())
    lock.acquire()  # in the folder _open_study made, when there was none
    _recover(study, storage, {key.key for key in space})
    finished = sum(_state(t) in FINISHED for t in study.get_trials(deepcopy=False))
    if finished < trials:
        log.info("%s: %d of %d trials finished, running %d more", folder, finished, trials, trials - finished)
        done = [finished]

        def report(study: Any, trial: Any) -> None:
            done[0] += _state(trial) in FINISHED
            if callback is not None:
                callback(done[0], trials, _trial_dict(trial, space))

        study.optimize(lambda trial: objective(trial, seed), n_trials=trials - finished, timeout=timeout,
                       callbacks=[report])
    records = [_trial_dict(t, space) for t in study.get_trials(deepcopy=False)]
    complete = [t for t in records if t["state"] == "complete"]
    if not complete:
        raise RunFailed(f"no trial of {folder} completed ({len(records)} ended pruned, diverged or interrupted); "
                        "narrow the search space or raise the number of trials")
    best = max(complete, key=lambda t: (t["val_avg_map"], -t["number"]))
    return StudyResult(folder, seed, space, records, best, dict(options or {}))


def _pruner(config: Config) -> Any:
    import optuna

    options = config.tune
    if not options.pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=options.startup_trials, n_warmup_steps=options.warmup_epochs + 1)


def _check_tunable(config: Config) -> None:
    if config.eval.select_on != "val":
        raise ConfigError("tuning selects on the validation split; remove eval.select_on = \"test\" from the recipe")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("tuning runs in one process; start it without torchrun")


def tune_recipe(raw: Mapping[str, Any], changes: Mapping[str, Any], folder: Path, trials: int, *,
                timeout: float | None = None, progress: bool | None = None,
                callback: Callable[[int, int, dict[str, Any]], None] | None = None) -> StudyResult:
    """The study of a trained recipe: ``trials`` trials over :func:`search_space`, each fitted on the
    training split and scored on the validation split (no final run)."""
    changes = dict(changes)
    config = load_config(raw, changes)
    _check_tunable(config)
    space = search_space(raw, changes)

    def objective(trial: Any, seed: int) -> float:
        params = {key.key: key.suggest(trial) for key in space}
        log.info("trial %d: %s", trial.number, params_text(params))
        trial_config = with_absolute_paths(load_config(raw, {**changes, **params, "run.seed": seed}))
        trainer = Trainer(build_experiment(trial_config))
        try:
            trainer.fit(run_callbacks(trial_config.train, progress=progress,
                                      extra=[ReportToTrial(trial, config.tune.pruning)]))
        except RunFailed as err:  # a diverging loss: the trial fails, the study goes on
            log.warning("trial %d: %s", trial.number, err)
            trial.set_user_attr("error", str(err))
            return math.nan
        if trainer.selection.best_epoch is None:
            trial.set_user_attr("error", "no epoch had a finite validation mAP")
            return math.nan
        return float(trainer.selection.best_score)

    options = {"pruning": {"enabled": config.tune.pruning, "startup_trials": config.tune.startup_trials,
                           "warmup_epochs": config.tune.warmup_epochs,
                           "rule": "median of the earlier trials' validation mean mAP at the same epoch"}}
    return run_study(folder, config.encoder.name, config, space, objective, trials, pruner=_pruner(config),
                     options=options, timeout=timeout, callback=callback)


def baseline_space(method: str, limit: int) -> list[SearchKey]:
    """The search space of a baseline (:data:`BASELINE_SPACES`) with ``n_components`` up to ``limit``."""
    space = BASELINE_SPACES.get(method, {"n_components": BASELINE_SPACES["pls"]["n_components"]})
    keys = []
    for key, entry in space.items():
        entry = {**entry, "high": limit if entry["high"] is None else entry["high"]}
        if entry["low"] >= entry["high"]:
            continue  # one possible value: nothing to tune
        keys.append(SearchKey.from_entry(key, entry))
    return keys


def tune_baseline(raw: Mapping[str, Any], changes: Mapping[str, Any], method: str, folder: Path, trials: int, *,
                  timeout: float | None = None,
                  callback: Callable[[int, int, dict[str, Any]], None] | None = None) -> StudyResult:
    """The study of a baseline on a recipe's data: fitted on the training split, scored on the validation split."""
    changes = dict(changes)
    config = load_config(raw, changes)
    _check_tunable(config)
    resolved = with_absolute_paths(with_seed(config))
    dataset = load_data(resolved)  # the seed of a resumed study is the recorded one: checked below
    limit = min(dataset.image_dim, dataset.text_dim, len(dataset.train))
    space = baseline_space(method, limit)

    def objective(trial: Any, seed: int) -> float:
        data = dataset if seed == resolved.run.seed else load_data(load_config(resolved.to_dict(), {"run.seed": seed}))
        params = {key.key: key.suggest(trial) for key in space}
        fitted = fit_baseline(method, data.train.image, data.train.text, seed=seed, labels=data.train.labels, **params)
        image, text = fitted.embed(data.val.image, data.val.text)
        scores = {k: float(v) for k, v in retrieval_report(image, text, np.asarray(data.val.labels)).items()}
        trial.set_user_attr("val", scores)
        return scores["avg_map"]

    return run_study(folder, method, config, space, objective, trials, timeout=timeout, callback=callback,
                     options={"pruning": {"enabled": False}})


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


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def params_text(params: Mapping[str, Any], separator: str = ", ") -> str:
    """``"train.lr=0.0001, model.common_dim=512"`` (numbers to four significant digits)."""
    return separator.join(f"{key}={_format(value)}" for key, value in params.items())


def trials_table(study: StudyResult) -> str:
    """One row per trial: state, validation mean mAP, epochs trained and the values."""
    keys = [key.key for key in study.space]
    lines = ["| trial | state | val mean mAP | epochs | " + " | ".join(f"`{k}`" for k in keys) + " |",
             "|---|---|---|---|" + "---|" * len(keys)]
    for trial in study.trials:
        score = "—" if trial["val_avg_map"] is None else f"{trial['val_avg_map']:.4f}"
        state = trial["state"] + (" (best)" if trial["number"] == study.best["number"] else "")
        epochs = "—" if trial["epochs_trained"] is None else str(trial["epochs_trained"])
        values = " | ".join(_format(trial["params"].get(k, "—")) for k in keys)
        lines.append(f"| {trial['number']} | {state} | {score} | {epochs} | {values} |")
    return "\n".join(lines)


def write_study(folder: Path, title: str, study: StudyResult, extra: Mapping[str, Any],
                final: CellResult | None = None) -> str:
    """``tune.json`` and ``tune.md`` of a study (with the final run, when there is one); returns the table."""
    table = trials_table(study)
    best = study.best
    summary = {**extra, **study.to_dict(),
               "selection": "validation split only: trials are scored by their selected epoch's validation mean "
                            "mAP; the test split is scored once, by the final run"}
    pruning = study.options["pruning"]
    text = [f"# {title}", "",
            f"{len(study.trials)} trial(s), {sum(t['state'] in FINISHED for t in study.trials)} finished, sampled by "
            f"Optuna's TPE (seed {study.seed})"
            + (f"; median pruning after {pruning['startup_trials']} trial(s), never in a trial's first "
               f"{pruning['warmup_epochs']} epoch(s)" if pruning.get("enabled") else "")
            + ". Trials are scored on the validation split only.", "",
            "| key | searched over |", "|---|---|",
            *[f"| `{key.key}` | {key.describe()} |" for key in study.space], "", table, "",
            f"Best: trial {best['number']}, validation mean mAP {best['val_avg_map']:.4f}: {params_text(best['params'])}.",
            ""]
    if final is not None:
        summary["final"] = {"run_dir": str(final.run_dir), "status": final.status, "test": final.test,
                            "selected_epoch": final.selected_epoch}
        test = final.test
        text += [f"Final run with these values: `{final.run_dir.name}/`, selected epoch {final.selected_epoch}; "
                 f"test mAP image → text {test['i2t_map']:.4f}, text → image {test['t2i_map']:.4f}, "
                 f"mean {test['avg_map']:.4f} (the only evaluation on the test split).", ""]
    write_json(folder / "tune.json", summary)
    write_text(folder / "tune.md", "\n".join(text))
    return table


def tune(
    recipe: str | Path | Mapping[str, Any],
    trials: int,
    timeout: float | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    progress: bool | None = None,
    callback: Callable[[int, int, dict[str, Any]], None] | None = None,
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
    try:
        check_positive_int("trials", trials)
        if timeout is not None:
            check_positive("timeout", timeout)
    except InvalidArgument as err:
        raise ConfigError(f"--{err}") from None
    raw = read_recipe(recipe) if isinstance(recipe, (str, Path)) else dict(recipe)
    changes = parse_overrides(overrides)
    config = load_config(raw, changes)
    out_dir = Path(out) if out is not None else Path(config.run.out_dir) / f"tune_{name or config.run.name}"
    study = tune_recipe(raw, changes, out_dir, trials, timeout=timeout, progress=progress, callback=callback)
    params = study.best_params
    method = load_config(raw, {**changes, **params}).encoder.name
    cell = Cell(FINAL_RUN, method, study.seed, params,
                {**changes, **params, "run.seed": study.seed, "run.name": FINAL_RUN})
    log.info("best trial %d (validation mean mAP %.4f): %s; training it once more and testing it",
             study.best["number"], study.best["val_avg_map"], params_text(params))
    [final] = run_cells(recipe, raw, [cell], out_dir, progress=progress)
    extra = {"recipe": str(recipe) if isinstance(recipe, (str, Path)) else None, "overrides": changes,
             "trials_budget": trials, "timeout": timeout}
    table = write_study(out_dir, f"Tuning `{name or config.run.name}`", study, extra, final)
    return TuneResult(out_dir, params, study.best["val_avg_map"], study.best["number"], study.trials, final.run_dir,
                      dict(final.test), table)

