"""The trainer's step: the label encoder runs once per optimisation step."""
from __future__ import annotations

import pytest

from gcnretrieval.config import load_config
from gcnretrieval.train import Trainer, build_experiment


def _trainer(optimizer_options: dict) -> Trainer:
    recipe = {
        "run": {"name": "steps", "seed": 1},
        "data": {"source": "synthetic", "synthetic": {"num_train": 30, "num_test": 6, "num_labels": 4,
                                                      "image_dim": 10, "text_dim": 8}},
        "graph": {"node_features": "random", "node_feature_dim": 5, "threshold": 0.3},
        "encoder": {"num_layers": 2},
        "model": {"common_dim": 6},
        "train": {"batch_size": 10, "epochs": 1, "device": "cpu", **optimizer_options},
        "eval": {"select_on": "test"},
    }
    return Trainer(build_experiment(load_config(recipe)), progress=False)


def test_label_encoder_runs_once_per_step():
    trainer = _trainer({})
    calls = []
    trainer.model.label_encoder.register_forward_hook(lambda *args: calls.append(1))
    steps = []
    trainer.optimizer.register_step_post_hook(lambda *args: steps.append(1))
    trainer.train_epoch()
    assert len(steps) == 3  # 30 pairs, batch 10
    assert len(calls) == len(steps)


def test_foreach_optimizer_equals_single_tensor_loop():
    a, b = _trainer({"fused_optimizer": False}), _trainer({"fused_optimizer": False})
    assert a.optimizer.defaults["foreach"] is True
    b.optimizer.defaults["foreach"] = False
    for group in b.optimizer.param_groups:
        group["foreach"] = False
    a.train_epoch()
    b.train_epoch()
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert p.equal(q), name


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_fused_optimizer_default_is_close_to_foreach(optimizer):
    a, b = _trainer({"fused_optimizer": False, "optimizer": optimizer}), _trainer({"optimizer": optimizer})
    assert b.optimizer.defaults["fused"] is True
    a.train_epoch()
    b.train_epoch()
    diff = max(float((p - q).detach().abs().max()) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert diff < 1e-4
