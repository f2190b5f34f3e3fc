"""Mixed precision, TF32 and torch.compile of the training step."""
from __future__ import annotations

import logging
import math

import pytest
import torch

from gcnretrieval.config import load_config
from gcnretrieval.errors import ConfigError
from gcnretrieval.training import Trainer, build_experiment


def _recipe(**train) -> dict:
    return {
        "run": {"name": "precision", "seed": 5},
        "data": {"source": "synthetic", "synthetic": {"num_train": 80, "num_test": 20, "num_labels": 5,
                                                      "image_dim": 16, "text_dim": 12}},
        "graph": {"node_features": "random", "node_feature_dim": 6, "threshold": 0.3},
        "encoder": {"num_layers": 2},
        "model": {"common_dim": 16},
        "train": {"batch_size": 20, "epochs": 2, "lr": 1e-3, "device": "cpu", **train},
        "eval": {"select_on": "test"},
    }


def _trainer(**train) -> Trainer:
    return Trainer(build_experiment(load_config(_recipe(**train))))


@pytest.mark.parametrize("precision, half", [("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)])
def test_mixed_precision_runs_the_forward_pass_in_half_and_keeps_the_rest_float32(precision, half):
    trainer = _trainer(precision=precision)
    seen = {}

    def record(module, args, out):
        seen["projector"] = out.dtype

    trainer.model.image_projector.register_forward_hook(record)
    total, parts = trainer._forward_loss(*trainer.loader.dataset[list(range(20))])
    assert seen["projector"] == half  # autocast really ran the products in half precision
    assert total.dtype == torch.float32 and all(v.dtype == torch.float32 for v in parts.values())
    history = trainer.fit()
    assert all(math.isfinite(row["loss_total"]) for row in history)
    state = trainer.state_dict()
    assert all(t.dtype in (torch.float32, torch.int64) for t in state["model"].values())
    assert trainer.scaler.is_enabled() == (precision == "16-mixed")
    if precision == "16-mixed":
        assert state["scaler"]["scale"] > 0


def test_mixed_precision_trains_like_float32():
    losses = {p: [row["loss_total"] for row in _trainer(precision=p).fit()] for p in ("32", "bf16-mixed")}
    assert losses["bf16-mixed"] == pytest.approx(losses["32"], rel=0.05)  # bfloat16 keeps 8 bits of mantissa


@pytest.mark.parametrize("precision", ["32", "bf16-mixed", "16-mixed"])
def test_float16_on_the_cpu_is_flagged_as_slow(precision, caplog):
    with caplog.at_level(logging.WARNING, logger="gcnretrieval"):
        _trainer(precision=precision)
    flagged = [r for r in caplog.records if '"16-mixed" on the CPU' in r.getMessage()]
    assert len(flagged) == (precision == "16-mixed")
    if flagged:
        assert '"bf16-mixed"' in flagged[0].getMessage()


def test_tf32_is_a_cuda_mode():
    with pytest.raises(ConfigError, match="recipe key 'train.tf32' has no effect on cpu \\(TensorFloat-32 is a CUDA mode\\); remove it"):
        load_config(_recipe(tf32=True))
    with pytest.raises(ConfigError, match="recipe key 'train.tf32' has no effect on cpu"):
        Trainer(build_experiment(load_config(_recipe(tf32=True, device="auto")), device="cpu"))


def test_process_settings_are_restored_after_training():
    before = torch.are_deterministic_algorithms_enabled()
    _trainer(deterministic=True, epochs=1).fit()
    assert torch.are_deterministic_algorithms_enabled() == before


def test_compile_where_it_fails_warns_and_trains_eagerly(monkeypatch, caplog):
    def broken(function, **options):
        def compiled(*args):
            raise RuntimeError("no C++ compiler found\nmore detail")
        return compiled

    monkeypatch.setattr(torch, "compile", broken)
    trainer = _trainer(compile=True, epochs=1)
    with caplog.at_level(logging.WARNING, logger="gcnretrieval"):
        history = trainer.fit()
    assert len(history) == 1 and math.isfinite(history[0]["loss_total"])
    warnings = [r.getMessage() for r in caplog.records if "train.compile" in r.getMessage()]
    assert warnings == ["train.compile: torch.compile cannot compile the step here (RuntimeError: no C++ compiler "
                        "found); training without it"]


def test_the_compiled_step_computes_the_eager_loss(monkeypatch):
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda function, **options: compile_(function, backend="eager"))
    eager, compiled = _trainer(epochs=1), _trainer(epochs=1, compile=True)
    batch = eager.loader.dataset[list(range(20))]
    a, b = eager._forward_loss(*batch)[0], compiled.compiled_step(*batch)[0]
    assert compiled.compiled_step is not None
    torch.testing.assert_close(b, a)
