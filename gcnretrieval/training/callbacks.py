"""Small callbacks of :meth:`Trainer.fit <gcnretrieval.training.Trainer.fit>`: selection, early
stopping, metrics log, checkpoints and the progress bar; :func:`run_callbacks` lists those of a run.

A callback overrides any of the hooks below; :meth:`~gcnretrieval.training.Trainer.fit`
calls them in the order the callbacks are given (selection first, so the others see
whether the epoch was selected). A callback owns its state: one with a ``state_key`` has its
:meth:`~Callback.state_dict` saved in ``checkpoints/last.pt`` under that name and restored on resume.
"""
from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from tqdm.auto import tqdm

from gcnretrieval.errors import ConfigError, RunFailed
from gcnretrieval.formatting import map_number
from gcnretrieval.options import TrainOptions
from gcnretrieval.training.ranking import cannot_rank
from gcnretrieval.training.rundir import BEST, LAST, RunDirectory

log = logging.getLogger(__name__)

Trainer = Any  # a gcnretrieval.training.Trainer (which imports this module)

__all__ = ["BestEpoch", "Callback", "Checkpoints", "EarlyStopping", "MetricsLog", "ProgressBar", "run_callbacks"]


class Callback:
    """Hooks of the training loop; each does nothing by default.

    Attributes:
        state_key: the name its state is saved under in ``last.pt`` (``None``: no state).
        state_attributes: its attributes that make up that state (:meth:`state_dict`).
        should_stop: set to end :meth:`~gcnretrieval.training.Trainer.fit` after the current epoch.
    """

    state_key: str | None = None
    state_attributes: tuple[str, ...] = ()
    should_stop = False

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_epoch_start(self, trainer: Trainer, num_batches: int) -> None: ...

    def on_batch_end(self, trainer: Trainer, step: int) -> None: ...

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None: ...

    def on_fit_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """The callback's state (plain values only)."""
        return {name: getattr(self, name) for name in self.state_attributes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s values; a value the state lacks keeps its start value."""
        for name in self.state_attributes:
            setattr(self, name, state.get(name, getattr(self, name)))


class BestEpoch(Callback):
    """Keep the epoch with the highest mean mAP on the selection split (``row["selected"]``).

    An epoch is selected when its score beats the best so far by more than ``min_delta`` (the
    threshold early stopping counts with), so a run stopped early never selects the epochs in
    which it only crept up, and "selected the last epoch" means "still improving" (unless the
    split cannot rank).

    A selection split that cannot rank epochs (:func:`~gcnretrieval.training.ranking.cannot_rank`:
    too few pairs, or an mAP already perfect) selects every epoch from then on, so the last one
    trained is kept (``best_score`` stays the best score seen); the reason is logged once and kept
    as ``selection_note``.

    Attributes:
        best_epoch, best_score: the selected epoch and its mean mAP on the selection split.
        selection_note: why the selection split cannot rank epochs, or ``None``.
    """

    state_key = "selection"
    state_attributes = ("best_epoch", "best_score", "selection_note")

    def __init__(self, min_delta: float = 0.0) -> None:
        self.min_delta = min_delta
        self.best_epoch: int | None = None
        self.best_score = -math.inf
        self.selection_note: str | None = None

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        score = row[f"{trainer.select_on}_avg_map"]
        if self.selection_note is None:
            best = max(self.best_score, -math.inf if score is None else score)
            if (reason := cannot_rank(len(trainer.selection_split), best)) is not None:
                self.selection_note = (f"{reason}: the last epoch is selected and early stopping is off, so the run "
                                       "trains its whole budget (train.epochs or train.steps)")
                log.warning("epoch %d: %s", row["epoch"], self.selection_note)
        row["selected"] = score is not None and (self.selection_note is not None
                                                 or score > self.best_score + self.min_delta)
        if row["selected"]:
            self.best_epoch, self.best_score = row["epoch"], max(self.best_score, score)


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a selected epoch (the trainer's :class:`BestEpoch`,
    which must come first, decides what counts as better); ``stopped_early`` is the epoch it stopped at."""

    state_key = "early_stopping"
    state_attributes = ("should_stop", "stopped_early")

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.stopped_early: int | None = None

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        selection = trainer.selection
        if selection.selection_note is None and row["epoch"] - (selection.best_epoch or 0) >= self.patience:
            self.should_stop, self.stopped_early = True, row["epoch"]


def run_callbacks(train: TrainOptions, run_dir: RunDirectory | None = None, progress: bool | None = None,
                  extra: Iterable[Callback] = ()) -> list[Callback]:
    """The callbacks of a run, in order: selection of the best epoch, early stopping when
    ``train.patience`` asks for it, the metrics log and the checkpoints when a ``run_dir`` is given,
    the progress bar (:class:`ProgressBar`'s ``enabled``), then ``extra``."""
    callbacks: list[Callback] = [BestEpoch(train.min_delta), *([EarlyStopping(train.patience)] if train.patience else [])]
    if run_dir is not None:
        callbacks += [MetricsLog(run_dir), Checkpoints(run_dir)]
    return [*callbacks, ProgressBar(progress), *extra]


class MetricsLog(Callback):
    """The only writer of ``metrics.jsonl``: the history so far at the start (so a resumed
    run drops rows past its checkpoint), then one line per epoch."""

    def __init__(self, run_dir: RunDirectory) -> None:
        self.run_dir = run_dir

    def on_fit_start(self, trainer: Trainer) -> None:
        self.run_dir.rewrite_metrics(trainer.history)

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.run_dir.append_metrics(row)


class Checkpoints(Callback):
    """``checkpoints/last.pt`` after every epoch (everything ``--resume`` needs), then
    ``checkpoints/best.pt`` after a selected one (the weights only: :meth:`Trainer.weights_state`).

    A run stopped between the two (a full disk, a crash) has a ``last.pt`` whose selected epoch
    is its own epoch and an older ``best.pt``: on resume, ``best.pt`` is written again from
    ``last.pt``'s weights, so the selected weights are never lost."""

    def __init__(self, run_dir: RunDirectory) -> None:
        self.run_dir = run_dir

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.selection.best_epoch != trainer.epoch:  # none yet, or saved with best.pt
            return
        saved = None
        with suppress(ConfigError, RunFailed):  # absent or unreadable: written again below
            saved = self.run_dir.load_checkpoint(BEST)["epoch"]
        if saved != trainer.epoch:
            self.run_dir.save_checkpoint(BEST, trainer.weights_state())

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.run_dir.save_checkpoint(LAST, trainer.state_dict())
        if row.get("selected"):
            self.run_dir.save_checkpoint(BEST, trainer.weights_state())


class ProgressBar(Callback):
    """Progress on stderr: on a terminal a tqdm bar per epoch and a line per finished epoch;
    elsewhere (a log file, a batch job, CI) plain lines only: one per finished epoch, and one
    every ``interval`` seconds inside an epoch that runs longer.

    Args:
        enabled: ``True`` a bar, ``False`` nothing, ``None`` (default) a bar when stderr is a
            terminal and plain lines when it is not.
        interval: seconds between the lines inside an epoch when stderr is not a terminal
            (default 60).
    """

    def __init__(self, enabled: bool | None = None, interval: float = 60.0) -> None:
        self.lines = enabled is None and not sys.stderr.isatty()
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.interval = interval

    def on_epoch_start(self, trainer: Trainer, num_batches: int) -> None:
        self.bar = tqdm(total=num_batches, desc=f"epoch {trainer.epoch + 1}/{trainer.epochs}", leave=False,
                        disable=not self.enabled, file=sys.stderr)
        self.started = time.monotonic()
        self.next_line = self.started + self.interval if self.lines else math.inf

    def on_batch_end(self, trainer: Trainer, step: int) -> None:
        self.bar.update(1)
        if time.monotonic() >= self.next_line:
            self.next_line += self.interval
            _line(f"{trainer.config.run.name}: epoch {trainer.epoch + 1}/{trainer.epochs}: "
                  f"batch {step + 1}/{self.bar.total} ({time.monotonic() - self.started:.0f} s)")

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        loss, score = row.get("loss_total"), row.get(f"{trainer.select_on}_avg_map")
        if self.enabled or self.lines:
            _line(f"{trainer.config.run.name}: epoch {row['epoch']}/{trainer.epochs}: loss {map_number(loss)}, "
                  f"{trainer.select_on} mAP {map_number(score)}{' (selected)' if row.get('selected') else ''}, "
                  f"{row['seconds']:.1f} s")
        self.bar.close()


def _line(text: str) -> None:
    """One line on stderr, above a progress bar if one is shown (flushed: stderr may be a file)."""
    tqdm.write(text, file=sys.stderr)
    sys.stderr.flush()
