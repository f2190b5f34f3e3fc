"""Small callbacks of :meth:`Trainer.fit <gcnretrieval.training.Trainer.fit>`: selection, metrics log,
checkpoints and the progress bar.

A callback overrides any of the hooks below; :meth:`~gcnretrieval.training.Trainer.fit`
calls them in the order the callbacks are given (selection first, so the others see
whether the epoch was selected).
"""
from __future__ import annotations

import logging
import math
import sys
import time
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from gcnretrieval.errors import ConfigError, RunFailed
from gcnretrieval.training.ranking import cannot_rank
from gcnretrieval.training.rundir import RunDirectory

if TYPE_CHECKING:
    from gcnretrieval.options import TrainOptions

log = logging.getLogger(__name__)

Trainer = Any  # a gcnretrieval.training.Trainer (which imports this module)

__all__ = ["BestEpoch", "Callback", "Checkpoints", "EarlyStopping", "MetricsLog", "ProgressBar", "selection_callbacks"]


class Callback:
    """Hooks of the training loop; each does nothing by default."""

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_epoch_start(self, trainer: Trainer, num_batches: int) -> None: ...

    def on_batch_end(self, trainer: Trainer, step: int) -> None: ...

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None: ...

    def on_fit_end(self, trainer: Trainer) -> None: ...


class BestEpoch(Callback):
    """Keep the epoch with the highest mean mAP on the selection split (``row["selected"]``).

    An epoch is selected when its score beats the best so far by more than ``min_delta`` (the
    threshold early stopping counts with), so a run stopped early never selects the epochs in
    which it only crept up, and "selected the last epoch" means "still improving" (unless the
    split cannot rank).

    A selection split that cannot rank epochs (:func:`~gcnretrieval.training.ranking.cannot_rank`:
    too few pairs, or an mAP already perfect) selects every epoch from then on, so the last one
    trained is kept (``trainer.best_score`` stays the best score seen, so a resumed run
    detects a saturated split again); the reason is logged once and kept as
    ``trainer.selection_note``."""

    def __init__(self, min_delta: float = 0.0) -> None:
        self.min_delta = min_delta

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        score = row[f"{trainer.select_on}_avg_map"]
        if trainer.selection_note is None:
            best = max(trainer.best_score, -math.inf if score is None else score)
            reason = cannot_rank(len(trainer.selection_split), best)
            if reason is not None:
                trainer.selection_note = (f"{reason}: the last epoch is selected and early stopping is off, so the run "
                                          "trains its whole budget (train.epochs or train.steps)")
                log.warning("epoch %d: %s", row["epoch"], trainer.selection_note)
        if trainer.selection_note is not None:
            row["selected"] = score is not None
        else:
            row["selected"] = score is not None and score > trainer.best_score + self.min_delta
        if row["selected"]:
            trainer.best_epoch, trainer.best_score = row["epoch"], max(trainer.best_score, score)


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a selected epoch (:class:`BestEpoch`, which must come
    first, decides what counts as better); the epoch it stopped at is ``trainer.stopped_early``."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if trainer.selection_note is None and row["epoch"] - (trainer.best_epoch or 0) >= self.patience:
            trainer.should_stop, trainer.stopped_early = True, row["epoch"]


def selection_callbacks(train: TrainOptions) -> list[Callback]:
    """Selection of the best epoch, then early stopping when ``train.patience`` asks for it."""
    return [BestEpoch(train.min_delta)] + ([EarlyStopping(train.patience)] if train.patience else [])


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
        if trainer.best_epoch is None or trainer.best_epoch != trainer.epoch:
            return
        try:
            saved = self.run_dir.load_checkpoint("best")["epoch"]
        except (ConfigError, RunFailed):  # absent or unreadable: written again below
            saved = None
        if saved != trainer.best_epoch:
            self.run_dir.save_checkpoint("best", trainer.weights_state())

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.run_dir.save_checkpoint("last", trainer.state_dict())
        if row.get("selected"):
            self.run_dir.save_checkpoint("best", trainer.weights_state())


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
        self.bar: Any = None
        self.next_line = math.inf

    def on_epoch_start(self, trainer: Trainer, num_batches: int) -> None:
        epochs = trainer.epochs
        self.bar = tqdm(total=num_batches, desc=f"epoch {trainer.epoch + 1}/{epochs}", leave=False,
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
            _line(f"{trainer.config.run.name}: epoch {row['epoch']}/{trainer.epochs}: loss {_number(loss)}, "
                  f"{trainer.select_on} mAP {_number(score)}{' (selected)' if row.get('selected') else ''}, "
                  f"{row['seconds']:.1f} s")
        self.bar.close()


def _line(text: str) -> None:
    """One line on stderr, above a progress bar if one is shown (flushed: stderr may be a file)."""
    tqdm.write(text, file=sys.stderr)
    sys.stderr.flush()


def _number(value: float | None) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{value:.4f}"
