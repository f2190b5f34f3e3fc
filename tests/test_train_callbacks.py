"""Callbacks own their state: selection and early stopping are saved in last.pt by name and restored on resume."""
from __future__ import annotations

import logging

import pytest

from gcnretrieval.config import load_config
from gcnretrieval.training import (BestEpoch, Checkpoints, EarlyStopping, MetricsLog, ProgressBar, RunDirectory,
                                   Trainer, build_experiment, run_callbacks)

from test_train_steps import tiny_recipe


def _config(**train):
    return load_config(tiny_recipe(train, name="state", seed=5, num_train=40, num_test=20, num_layers=1, common_dim=8,
                                   batch_size=20))


def _trainer(scores: list[float], **train) -> Trainer:
    """A trainer whose selection mAP at its k-th evaluation is the k-th of ``scores``."""
    trainer = Trainer(build_experiment(_config(**train)))
    scripted = iter(scores)
    trainer.evaluate_selection = lambda: dict.fromkeys(("i2t_map", "t2i_map", "avg_map"), next(scripted))
    return trainer


def test_run_callbacks_lists_a_runs_callbacks_in_order(tmp_path):
    extra = BestEpoch()
    kinds = [type(c) for c in run_callbacks(_config(patience=2).train, RunDirectory(tmp_path), extra=[extra])]
    assert kinds == [BestEpoch, EarlyStopping, MetricsLog, Checkpoints, ProgressBar, BestEpoch]
    assert [type(c) for c in run_callbacks(_config().train, progress=False)] == [BestEpoch, ProgressBar]


def test_selection_and_early_stopping_live_in_their_callbacks_and_in_the_resume_state():
    trainer = _trainer([0.5, 0.6, 0.6005, 0.59], epochs=6, patience=2, min_delta=0.001)
    history = trainer.fit(run_callbacks(trainer.config.train, progress=False))
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert (trainer.selection.best_epoch, trainer.selection.best_score, trainer.stopped_early) == (2, 0.6, 4)
    assert not any(hasattr(trainer, name) for name in ("best_epoch", "best_score", "selection_note", "should_stop"))
    state = trainer.state_dict()
    assert state["callbacks"] == {"selection": {"best_epoch": 2, "best_score": 0.6, "selection_note": None},
                                  "early_stopping": {"should_stop": True, "stopped_early": 4}}
    assert (state["best_epoch"], trainer.weights_state()["best_epoch"]) == (2, 2)  # what runner and load_run read
    # a run stopped after saving the epoch that ended it resumes as finished: no further epoch
    resumed = _trainer([], epochs=6, patience=2, min_delta=0.001)
    resumed.load_state_dict(state)
    assert resumed.fit(run_callbacks(resumed.config.train, progress=False)) == history
    assert (resumed.selection.best_epoch, resumed.stopped_early, resumed.epoch) == (2, 4, 4)


def test_a_resumed_run_stops_and_selects_as_an_uninterrupted_one():
    scores = [0.5, 0.6, 0.59, 0.58, 0.7]
    straight = _trainer(scores, epochs=5, patience=2)
    straight.fit(run_callbacks(straight.config.train, progress=False))
    first = _trainer(scores[:2], epochs=2, patience=2)
    first.fit(run_callbacks(first.config.train, progress=False))
    second = _trainer(scores[2:], epochs=5, patience=2)
    second.load_state_dict(first.state_dict())
    second.fit(run_callbacks(second.config.train, progress=False))
    assert [r["selected"] for r in second.history] == [r["selected"] for r in straight.history] == [True, True,
                                                                                                   False, False]
    assert (second.selection.best_epoch, second.stopped_early) == (straight.selection.best_epoch,
                                                                    straight.stopped_early) == (2, 4)


@pytest.mark.parametrize("checkpoint_format", [3, 2])
def test_a_saturated_selection_split_stays_saturated_after_resume(checkpoint_format, caplog):
    first = _trainer([0.5, 1.0], epochs=2, patience=1)
    with caplog.at_level(logging.WARNING, logger="gcnretrieval"):
        first.fit(run_callbacks(first.config.train, progress=False))
    assert first.selection.selection_note.startswith("the selection mAP reached 1")
    state = first.state_dict()
    if checkpoint_format == 2:  # written before callbacks kept their state: the selection at the top level only
        state = {key: value for key, value in state.items() if key != "callbacks"}
    caplog.clear()
    second = _trainer([0.9, 0.8], epochs=4, patience=1)
    second.load_state_dict(state)
    with caplog.at_level(logging.WARNING, logger="gcnretrieval"):
        history = second.fit(run_callbacks(second.config.train, progress=False))
    # every epoch selected, early stopping off: the note holds on after the resume
    assert [row["selected"] for row in history] == [True, True, True, True]
    assert (second.selection.best_epoch, second.selection.best_score, second.stopped_early) == (4, 1.0, None)
    assert second.selection.selection_note == first.selection.selection_note
    warned = [r for r in caplog.records if "selection mAP reached 1" in r.getMessage()]
    assert len(warned) == (checkpoint_format == 2)  # a restored note is not logged again
