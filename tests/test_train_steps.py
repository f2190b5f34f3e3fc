"""The trainer's step: the label encoder runs once per step, and the optimizer is the one the recipe asks for."""
from __future__ import annotations

import math

import pytest
import torch

from gcnretrieval.config import load_config
from gcnretrieval.training import Trainer, build_experiment, build_optimizer


def tiny_recipe(train: dict, loss: dict | None = None, *, name: str = "steps", seed: int = 1, num_train: int = 30,
                num_test: int = 6, num_layers: int = 2, common_dim: int = 6, batch_size: int = 10) -> dict:
    """A recipe of generated data small enough for a step-by-step test, selecting on the test split."""
    return {
        "run": {"name": name, "seed": seed},
        "data": {"source": "synthetic", "synthetic": {"num_train": num_train, "num_test": num_test, "num_labels": 4,
                                                      "image_dim": 10, "text_dim": 8}},
        "graph": {"node_features": "random", "node_feature_dim": 5, "threshold": 0.3},
        "encoder": {"num_layers": num_layers},
        "model": {"common_dim": common_dim},
        "loss": loss or {},
        "train": {"batch_size": batch_size, "device": "cpu", **train},
        "eval": {"select_on": "test"},
    }


def _trainer(train_options: dict, loss_options: dict | None = None) -> Trainer:
    return Trainer(build_experiment(load_config(tiny_recipe({"epochs": 1, **train_options}, loss_options))))


def test_label_encoder_runs_once_per_step():
    trainer = _trainer({})
    calls = []
    trainer.model.label_encoder.register_forward_hook(lambda *args: calls.append(1))
    steps = []
    trainer.optimizer.register_step_post_hook(lambda *args: steps.append(1))
    trainer.train_epoch()
    assert len(steps) == 3  # 30 pairs, batch 10
    assert len(calls) == len(steps)


def test_every_trained_parameter_is_in_the_one_optimizer():
    trainer = _trainer({})
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    trained = [p for p in (*trainer.model.parameters(), *trainer.objective.parameters()) if p.requires_grad]
    assert {id(p) for p in trained} == optimised
    assert any(p is trainer.objective.circle_soft.lambda_raw for p in trained)


def _one_step(options: dict, grad: float = 0.5) -> tuple[torch.optim.Optimizer, float]:
    """One update of a single scalar parameter at 1.0 with gradient ``grad``."""
    from gcnretrieval.options import TrainOptions

    weight = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = build_optimizer(TrainOptions(**options), [weight])
    weight.grad = torch.tensor([grad])
    optimizer.step()
    return optimizer, float(weight.detach())


@pytest.mark.parametrize("fused", [True, False])
def test_adam_takes_the_recipe_settings(fused):
    lr, betas, eps = 0.1, (0.5, 0.9), 1e-8
    optimizer, value = _one_step({"lr": lr, "betas": betas, "fused_optimizer": fused})
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["fused" if fused else "foreach"] is True
    # first Adam step: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected -> lr * g / (|g| + eps)
    m, v = (1 - betas[0]) * 0.5 / (1 - betas[0]), (1 - betas[1]) * 0.25 / (1 - betas[1])
    assert value == pytest.approx(1.0 - lr * m / (math.sqrt(v) + eps), rel=1e-6)


def test_adamw_decays_the_weights_decoupled():
    lr, decay = 0.1, 0.2
    optimizer, value = _one_step({"optimizer": "adamw", "lr": lr, "weight_decay": decay})
    assert isinstance(optimizer, torch.optim.AdamW)
    assert value == pytest.approx(1.0 * (1 - lr * decay) - lr * 1.0, rel=1e-6)  # step of lr * sign(g) after decay


def test_sgd_takes_its_momentum_from_the_first_beta():
    optimizer, value = _one_step({"optimizer": "sgd", "lr": 0.1, "betas": (0.7, 0.999)})
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.7
    assert value == pytest.approx(1.0 - 0.1 * 0.5, rel=1e-6)


def test_the_epoch_log_line_prints_a_zero_lambda_as_zero(caplog):
    trainer = _trainer({}, {"theta": 0.0, "lambda_mode": "fixed"})
    with caplog.at_level("INFO", logger="gcnretrieval.training.trainer"):
        [row] = trainer.fit()
    assert row["lambda"] == 0.0
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1"))
    assert "lambda 0.000," in line and "nan" not in line
