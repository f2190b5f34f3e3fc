"""How long and how fast a run trains: steps or epochs, learning-rate schedules, early stopping, the
under-training notice."""
from __future__ import annotations

import json
import math

import pytest
import torch

import gcnretrieval
from gcnretrieval.config import load_config
from gcnretrieval.errors import ConfigError
from gcnretrieval.training import Trainer, build_experiment
from gcnretrieval.training.schedules import StepSchedule, lr_factor


def _recipe(**train) -> dict:
    return {
        "run": {"name": "sched", "seed": 3},
        "data": {"source": "synthetic", "synthetic": {"num_train": 100, "num_test": 20, "num_labels": 5,
                                                      "image_dim": 12, "text_dim": 10}},
        "graph": {"node_features": "random", "node_feature_dim": 6, "threshold": 0.3},
        "encoder": {"num_layers": 1},
        "model": {"common_dim": 8},
        "train": {"batch_size": 20, "lr": 1e-2, "device": "cpu", **train},
        "eval": {"select_on": "test"},
    }


def _lrs(schedule: str, total: int, warmup: float = 0.0) -> list[float]:
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    scheduler = StepSchedule(optimizer, schedule, total, warmup)
    out = []
    for _ in range(total):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize("total", [7, 40, 333])
def test_onecycle_is_pytorchs_one_cycle(total):
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=total, cycle_momentum=False)
    expected = []
    for _ in range(total):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    assert _lrs("onecycle", total) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_cosine_and_warm_up_follow_their_formulas():
    total = 50
    # cosine without warm-up: PyTorch's cosine annealing to 0 over the steps
    assert _lrs("cosine", total) == pytest.approx([0.5 * (1 + math.cos(math.pi * t / (total - 1))) / 2
                                                    for t in range(total)])
    # a warm-up of 10 steps: linear to the full rate at step 9, then constant
    constant = _lrs("constant", total, warmup=0.2)
    assert constant[:10] == pytest.approx([0.5 * (t + 1) / 10 for t in range(10)])
    assert constant[9:] == pytest.approx([0.5] * 41)
    cosine = _lrs("cosine", total, warmup=0.2)
    assert cosine[:10] == pytest.approx(constant[:10])
    assert cosine[9:] == pytest.approx([0.5 * (1 + math.cos(math.pi * (t - 9) / 40)) / 2 for t in range(9, 50)])
    assert lr_factor("cosine", total - 1, total, 0.0) == pytest.approx(0.0, abs=1e-15)


def test_steps_instead_of_epochs_stop_part_way_through_an_epoch():
    trainer = Trainer(build_experiment(load_config(_recipe(steps=12))))  # 5 batches per epoch
    history = trainer.fit()
    assert (trainer.step, trainer.epoch) == (12, 3)
    assert [row["steps"] for row in history] == [5, 10, 12]
    by_epochs = Trainer(build_experiment(load_config(_recipe(epochs=2))))
    by_epochs.fit()
    assert (by_epochs.step, by_epochs.epoch) == (10, 2)


def test_the_logged_learning_rate_follows_the_schedule():
    trainer = Trainer(build_experiment(load_config(_recipe(epochs=4, schedule="cosine"))))
    history = trainer.fit()
    total = 20
    assert [row["lr"] for row in history] == pytest.approx(
        [1e-2 * lr_factor("cosine", row["steps"], total, 0.0) for row in history])
    assert history[0]["lr"] > history[-1]["lr"]


def test_steps_and_epochs_together_are_refused():
    with pytest.raises(ConfigError, match="recipe key 'train.epochs' has no effect with train.steps set"):
        load_config(_recipe(steps=10, epochs=3))
    with pytest.raises(ConfigError, match="recipe key 'train.min_delta' has no effect without train.patience"):
        load_config(_recipe(min_delta=0.01))
    with pytest.raises(ConfigError, match="recipe key 'train.warmup' must be in \\[0, 1\\)"):
        load_config(_recipe(warmup=1.0))


def _script_selection(monkeypatch, scores: list[float]) -> None:
    """Make the selection mAP of epoch k the k-th of ``scores``."""
    scores = iter(scores)
    monkeypatch.setattr(Trainer, "evaluate_selection",
                        lambda self: dict.fromkeys(("i2t_map", "t2i_map", "avg_map"), next(scores)))


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path, monkeypatch):
    _script_selection(monkeypatch, [0.5, 0.6, 0.6005, 0.59, 0.7, 0.8])  # beyond min_delta at epochs 1 and 2 only
    result = gcnretrieval.run(_recipe(epochs=6, patience=2, min_delta=0.001), out=tmp_path / "r")
    final = json.loads((tmp_path / "r" / "final_metrics.json").read_text())
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    # epoch 3 beat epoch 2 by less than min_delta: neither selected nor a reason to go on
    assert final["stopped_early_at"] == 4 and final["selected_epoch"] == 2 and not final["still_improving"]
    assert "stopped early at epoch 4" in (tmp_path / "r" / "report.md").read_text()


def test_a_run_that_creeps_up_below_min_delta_stops_without_saying_train_longer(tmp_path, monkeypatch):
    _script_selection(monkeypatch, [0.5, 0.6, 0.6004, 0.6008, 0.7])  # epochs 3 and 4 gain less than min_delta each
    result = gcnretrieval.run(_recipe(epochs=5, patience=2, min_delta=0.001), out=tmp_path / "r")
    final = json.loads((tmp_path / "r" / "final_metrics.json").read_text())
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert [row["selected"] for row in result.history] == [True, True, False, False]
    assert final["stopped_early_at"] == 4 and final["selected_epoch"] == 2 and not final["still_improving"]
    assert "still improving" not in (tmp_path / "r" / "report.md").read_text()


def test_a_selection_on_the_last_epoch_says_train_longer(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gcnretrieval.cli import cli
    from gcnretrieval.config import to_toml

    recipe = tmp_path / "r.toml"
    recipe.write_text(to_toml(_recipe(epochs=2)))
    _script_selection(monkeypatch, [0.5, 0.6])
    result = CliRunner().invoke(cli, ["run", str(recipe), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "note: the selected epoch is the last one trained: still improving, train longer" in result.output
    assert json.loads((tmp_path / "r" / "final_metrics.json").read_text())["still_improving"] is True
    assert "still improving, train longer" in (tmp_path / "r" / "report.md").read_text()


def test_a_resumed_run_continues_on_the_schedule_of_its_new_length(tmp_path):
    recipe = _recipe(schedule="onecycle", deterministic=True)
    straight = gcnretrieval.run(recipe, {"train.epochs": 3}, out=tmp_path / "a")
    gcnretrieval.run(recipe, {"train.epochs": 2, "train.keep_last_checkpoint": True}, out=tmp_path / "b")
    resumed = gcnretrieval.run(recipe, {"train.epochs": 3}, out=tmp_path / "b", resume=True)
    # the first two epochs of run b followed the schedule of a 2-epoch run; the third continues on a 3-epoch one
    assert resumed.history[2]["lr"] == pytest.approx(straight.history[2]["lr"])
    assert [row["steps"] for row in resumed.history] == [5, 10, 15]
