"""Runs: a recipe in, a run directory out (the library twins of ``gcnretrieval run`` and ``evaluate``).

A run reads top to bottom: check the recipe and the run directory, build the experiment
(every user error surfaces here, before anything is written), create the directory, fit
with callbacks, evaluate the selected checkpoint on the test split, report. A run that
fails before its first epoch is saved leaves nothing behind; a later failure (a full disk
included) leaves a directory that ``resume=True`` continues. The run directory is locked
(:class:`~gcnretrieval.locks.FolderLock`) while the run writes it: a second process asking for
it stops at once with a line naming the first. A finished run keeps its selected weights
(``best.pt``) and, only with ``train.keep_last_checkpoint``, its resume state (``last.pt``).
"""
from __future__ import annotations

import errno
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcnretrieval.config import Config, Recipe, RecipeLike, load_config, with_absolute_paths, with_seed
from gcnretrieval.data import CrossModalDataset
from gcnretrieval.defaults import BEST_CHECKPOINT, DEFAULT_DEVICE, LAST_CHECKPOINT
from gcnretrieval.errors import ConfigError, GcnRetrievalError, WriteFailed
from gcnretrieval.locks import FolderLock
from gcnretrieval.formatting import METRIC_TITLES, map_number, maps_text, markdown_table
from gcnretrieval.metrics import METRIC_KEYS
from gcnretrieval.models.registry import MODELS, uses_label_graph
from gcnretrieval.training import (Experiment, RunDirectory, Trainer, build_experiment, distributed, evaluate_split,
                                   plot_history, resolve_device, run_callbacks)
from gcnretrieval.training.figures import LOSS_FIGURE, MAP_FIGURE

log = logging.getLogger(__name__)

__all__ = ["RunResult", "evaluate", "load_run", "run"]

STILL_IMPROVING = ("the selected epoch is the last one trained: still improving, train longer "
                   "(raise train.epochs or train.steps)")


@dataclass
class RunResult:
    """What :func:`run` returns: the run directory, the test mAPs (``i2t_map``, ``t2i_map``,
    ``avg_map``) of the checkpoint selected on ``selected_on``, the history (rows of
    ``metrics.jsonl``), the resolved configuration, and why the selection split could not
    rank epochs (``selection_note``, then the last epoch is selected) if it could not."""

    run_dir: Path
    test: dict[str, float]
    selected_epoch: int | None
    selected_on: str | None
    history: list[dict[str, Any]] = field(default_factory=list)
    config: Config | None = None
    still_improving: bool = False
    selection_note: str | None = None
    steps_trained: int | None = None
    selection_pairs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The content of ``final_metrics.json`` plus the run directory."""
        fields = {key: value for key, value in vars(self).items() if key not in ("history", "config")}
        return {**fields, "run_dir": str(self.run_dir), "test": dict(self.test)}


def run(
    recipe: RecipeLike,
    overrides: Mapping[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    resume: bool = False,
    progress: bool | None = None,
) -> RunResult:
    """Train a recipe and write its run directory.

    Args:
        recipe: a :class:`~gcnretrieval.config.Recipe`, a TOML file, the name of a packaged recipe
            (``"demo"``) or a nested dict.
        overrides: dotted keys with their values, ``{"train.epochs": 2, "encoder.name": "gcn"}``.
        out: the run directory (default ``<run.out_dir>/<run.name>``).
        name: replaces ``run.name``.
        resume: continue the run in the existing directory from ``checkpoints/last.pt``
            (only ``train.epochs``, ``train.device`` and ``train.keep_last_checkpoint`` may change).
        progress: show a progress bar; ``None`` (default) when stderr is a terminal.

    Raises:
        GcnRetrievalError: bad input (before anything is written), an existing run
            directory without ``resume``, or nothing to resume.
        FolderBusy: another process is writing the run directory (the line names it).
        RunFailed: the loss diverged, or a checkpoint cannot be read; its subclass
            WriteFailed: the run directory cannot be written (a full disk, a read-only folder).
    """
    recipe = Recipe.of(recipe, overrides).with_changes({} if name is None else {"run.name": name})
    config = recipe.config
    path = Path(out) if out is not None else recipe.out_dir()
    lock = RunDirectory.lock(path)
    with distributed.process_group(config.train.device):
        try:
            config = _agree(lambda: _resolve(config, path, resume, lock))
            if distributed.rank() != 0:
                return _follow(config, path, resume)
            result = _lead(recipe, config, path, resume, lock, progress)
        finally:
            lock.release()
        if distributed.world_size() > 1:
            distributed.broadcast_object((result.test, result.selected_epoch))
        return result


def _lead(recipe: Recipe, config: Config, path: Path, resume: bool, lock: FolderLock,
          progress: bool | None) -> RunResult:
    """Rank 0 (the only process of a run without ``torchrun``): train, write the run directory, evaluate."""
    run_dir = RunDirectory(path)
    with run_dir.capture_log():
        log.info("%s run %s in %s (seed %d)", "resuming" if resume else "starting", config.run.name, path,
                 config.run.seed)
        experiment = build_experiment(config)
        trainer = Trainer(experiment)
        try:
            if resume:
                trainer.load_state_dict(run_dir.load_checkpoint(LAST_CHECKPOINT, map_location=experiment.device))
                run_dir.write_json(RunDirectory.CONFIG, config.to_dict())
            else:
                RunDirectory.create(path, config, recipe_text=recipe.text(), device=experiment.device, lock=lock)
            try:
                trainer.fit(run_callbacks(config.train, run_dir, progress))
            except BaseException:
                if not resume and lock.held and not run_dir.checkpoint_path(LAST_CHECKPOINT).is_file():
                    run_dir.remove()  # no epoch completed: leave nothing behind
                raise
            return _finish(run_dir, experiment, trainer)
        except OSError as err:
            if err.errno not in WRITE_ERRORS:
                raise
            raise _write_failure(err, run_dir, trainer) from None


#: the operating system's answers to a write that mean "this folder cannot take the run"
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


def _write_failure(err: OSError, run_dir: RunDirectory, trainer: Trainer) -> WriteFailed:
    """One line: the file that could not be written, why, what a run needs, what was left behind, what to do."""
    problem = f"cannot write {err.filename or run_dir.path}: {err.strerror or err}"
    space = err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if space:
        # while last.pt is saved the previous one still exists: two resume states and the selected weights
        resume_bytes, weights_bytes = trainer.checkpoint_bytes()
        problem += (f"; this run needs about {_megabytes(2 * resume_bytes + weights_bytes + 2**20)} free while it "
                    f"trains and keeps {_megabytes(weights_bytes)} once finished")
    fix = "free space" if space else "make it writable"
    if run_dir.checkpoint_path(LAST_CHECKPOINT).is_file():
        problem += f"; {run_dir.path} keeps the epochs saved so far"
        advice = f"{fix}, then run it again with --resume to continue"
    elif run_dir.path.exists():
        problem, advice = f"{problem}; {run_dir.path} was left as it was", f"{fix} and run again"
    else:
        problem, advice = f"{problem}; nothing was written", f"{fix} or choose another --out, and run again"
    return WriteFailed(problem, advice)


def _resolve(config: Config, path: Path, resume: bool, lock: FolderLock) -> Config:
    if resume:
        if path.is_dir():
            lock.acquire()
        return RunDirectory(path).resumable_config(config)
    RunDirectory.check_free(path)
    return with_absolute_paths(with_seed(config))


def _agree(resolve: Any) -> Config:
    """Rank 0 resolves the configuration (seed, resume checks) and every rank uses it, or raises its error."""
    if distributed.world_size() == 1:
        return resolve()
    message: tuple[str, Any] = ("ok", None)
    if distributed.rank() == 0:
        try:
            message = ("ok", resolve().to_dict())
        except GcnRetrievalError as err:
            message = ("error", str(err))
    kind, value = distributed.broadcast_object(message)
    if kind == "error":
        raise ConfigError(value)
    return load_config(value)


def _follow(config: Config, path: Path, resume: bool) -> RunResult:
    """A rank other than 0: train its share of every batch in step with rank 0, write nothing."""
    experiment = build_experiment(config)
    trainer = Trainer(experiment)
    if resume:
        trainer.load_state_dict(RunDirectory(path).load_checkpoint(LAST_CHECKPOINT, map_location=experiment.device))
    history = trainer.fit(run_callbacks(config.train, progress=False))
    test, selected_epoch = distributed.broadcast_object(None)  # rank 0's final evaluation
    return RunResult(path, test, selected_epoch, config.eval.select_on, history, config)


def _finish(run_dir: RunDirectory, experiment: Experiment, trainer: Trainer) -> RunResult:
    """Test mAPs of the selected checkpoint, ``final_metrics.json``, figures and ``report.md``."""
    config, note = experiment.config, trainer.selection.selection_note
    best = run_dir.load_checkpoint(BEST_CHECKPOINT, map_location=experiment.device)
    experiment.model.load_state_dict(best["model"])
    test = evaluate_split(experiment.model, experiment.dataset.test, experiment.device, config.eval.batch_size)
    final = {"test": test, "selected_epoch": best["best_epoch"], "selected_on": config.eval.select_on,
             "epochs_trained": trainer.epoch, "steps_trained": trainer.step, "stopped_early_at": trainer.stopped_early,
             "still_improving": best["best_epoch"] == trainer.epoch and note is None,
             "selection_note": note, "batch_size": config.train.batch_size,
             "selection_pairs": len(trainer.selection_split)}
    plot_history(trainer.history, run_dir.path / RunDirectory.FIGURES_DIR, selected_epoch=final["selected_epoch"])
    run_dir.write_text(RunDirectory.REPORT, _report(experiment, final, trainer.history))
    run_dir.write_json(RunDirectory.FINAL, final)  # last: a run with it has finished
    if not config.train.keep_last_checkpoint:
        run_dir.drop_resume_state()
    log.info("selected epoch %s on %s; test mAP %s", final["selected_epoch"], final["selected_on"], maps_text(test))
    if final["still_improving"]:
        log.warning(STILL_IMPROVING)
    return RunResult(run_dir.path, test, final["selected_epoch"], final["selected_on"], trainer.history, config,
                     final["still_improving"], note, trainer.step, final["selection_pairs"])


def _report(experiment: Experiment, final: dict[str, Any], history: list[dict[str, Any]]) -> str:
    config = experiment.config
    parity = " (test-set selection, for parity with the reference code only)" if final["selected_on"] == "test" else ""
    lines = [
        *_model_lines(config),
        f"- training: {config.train.optimizer}, lr {config.train.lr}, batch {config.train.batch_size}, "
        f"{len(history)} epoch(s), seed {config.run.seed}, device `{experiment.device}`",
        f"- selection: epoch {final['selected_epoch']} by mean mAP on `{final['selected_on']}` "
        f"({final['selection_pairs']} pairs){parity}"
        + (f"; **{final['selection_note']}**" if final["selection_note"] else "")
        + (f"; stopped early at epoch {final['stopped_early_at']}" if final["stopped_early_at"] else "")
        + (f". **{STILL_IMPROVING}**" if final["still_improving"] else ""),
    ]
    figures = f"![loss]({RunDirectory.FIGURES_DIR}/{LOSS_FIGURE}) ![mAP]({RunDirectory.FIGURES_DIR}/{MAP_FIGURE})"
    return report_text(f"# Run `{config.run.name}`", experiment.dataset, lines, "selected checkpoint", final["test"],
                       tail=[figures, ""])


def _model_lines(config: Config) -> list[str]:
    """The report's lines on the label graph and encoder (a model that uses them), the model and the objective."""
    def options(table: Mapping[str, Any]) -> str:
        return ", ".join(f"{key} {value}" for key, value in table.items() if key != "name")

    lines = [f"- model: `{config.model.name}` ({options(config.model)})",
             f"- objective: `{config.loss.name}` ({options(config.loss)})"]
    if not uses_label_graph(MODELS.get(config.model.name)):
        return lines
    dropped = ", edges dropped (self-loops only)" if config.graph.drop_edges else ""
    return [f"- label graph: `{config.graph.kind}`, threshold {config.graph.threshold}, node features "
            f"`{config.graph.node_features}`{dropped}", f"- encoder: `{config.encoder.name}` ({options(config.encoder)})",
            *lines]


def report_text(title: str, data: CrossModalDataset, lines: Sequence[str], label: str,
                test: Mapping[str, float], tail: Sequence[str] = ()) -> str:
    """A run's ``report.md``: ``title``, the data (name, pairs of each split, dimensions, labels), ``lines``,
    the test mAPs in a table row named ``label``, then ``tail``."""
    sizes = ", ".join(f"{name} {len(split)}" for name, split in data.splits())
    dims = f"image {data.image_dim}-d, text {data.text_dim}-d, {data.num_labels} labels"
    table = markdown_table(["test mAP@all", *METRIC_TITLES.values()],
                           [[label, *(map_number(test[key]) for key in METRIC_KEYS)]])
    return "\n".join([title, "", f"- data: `{data.name}` ({sizes} pairs; {dims})", *lines, "", table, "", *tail])


def load_run(run_dir: str | Path, checkpoint: str = BEST_CHECKPOINT, device: str = DEFAULT_DEVICE) -> tuple[Experiment, dict[str, Any]]:
    """A run's experiment rebuilt from ``config.resolved.json`` on ``device``, with the weights of
    ``checkpoint`` (``"best"``, the selected epoch, or ``"last"``); returns ``(experiment, state)``."""
    folder = RunDirectory.open(run_dir)
    folder.require_checkpoint(checkpoint)  # checks the name and the file before the data is read
    experiment = build_experiment(folder.config(), device=resolve_device(device))
    state = folder.load_checkpoint(checkpoint, map_location=experiment.device)
    experiment.model.load_state_dict(state["model"])
    return experiment, state


def evaluate(run_dir: str | Path, checkpoint: str = BEST_CHECKPOINT, device: str = DEFAULT_DEVICE) -> dict[str, Any]:
    """Test mAPs of a run's checkpoint (rebuilt by :func:`load_run`; the data must still be where the
    run read them), also written to ``<run_dir>/evaluation_<checkpoint>.json``:
    ``{"checkpoint", "epoch", "test": {"i2t_map", "t2i_map", "avg_map"}}``."""
    with RunDirectory.lock(RunDirectory.open(run_dir).path):
        experiment, state = load_run(run_dir, checkpoint, device)
        test = evaluate_split(experiment.model, experiment.dataset.test, experiment.device,
                              experiment.config.eval.batch_size)
        result = {"checkpoint": checkpoint, "epoch": int(state["epoch"]), "test": test}
        RunDirectory(run_dir).write_json(f"evaluation_{checkpoint}.json", result)
    return result
