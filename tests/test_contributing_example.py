"""The "Adding a new graph layer" example in CONTRIBUTING.md runs as written."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gcnretrieval.encoders import ENCODERS, available_encoders, build_encoder

CONTRIBUTING = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"


def example_code(title: str = "Adding a new graph layer") -> str:
    """The one python block of CONTRIBUTING.md's section ``title``."""
    text = CONTRIBUTING.read_text(encoding="utf-8")
    section = text.split(f"## {title}", 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.MULTILINE)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the section should hold exactly one python block"
    return blocks[0]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Run against a copy of the encoder table, restored afterwards, so the example's
    encoder does not leak into other tests (the contract tests are parametrised over
    ``available_encoders()`` at collection time, before any test body runs)."""
    monkeypatch.setattr(ENCODERS, "_entries", dict(ENCODERS._entries))
    before = set(available_encoders())
    yield before
    assert set(available_encoders()) - before  # the example did register something


def test_example_runs_verbatim_and_registers_its_encoder(scratch_registry, capsys):
    code = example_code()
    assert 15 <= len(code.strip().splitlines()) <= 30
    names = re.findall(r'@register_encoder\("([^"]+)"\)', code)
    assert len(names) == 1 and names[0] not in scratch_registry
    namespace: dict = {"__name__": "contributing_example"}
    exec(compile(code, str(CONTRIBUTING), "exec"), namespace)
    assert names[0] in available_encoders()
    assert capsys.readouterr().out.strip() == "SAGE(300, 64, num_layers=2)"
    encoder = build_encoder(names[0], 4, 2, num_layers=1)
    assert type(encoder).__name__ == "SAGE"


def test_example_encoder_is_gone_afterwards():
    assert "sage" not in available_encoders()


@pytest.fixture
def scratch_method_registries(monkeypatch):
    """Copies of the model, objective and method tables, restored afterwards."""
    from gcnretrieval.losses.registry import OBJECTIVES
    from gcnretrieval.methods import METHODS
    from gcnretrieval.models.registry import MODELS

    for registry in (MODELS, OBJECTIVES, METHODS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))


def test_method_example_runs_verbatim_and_trains_in_a_comparison(scratch_method_registries, tmp_path):
    from gcnretrieval.experiments import compare
    from gcnretrieval.methods import available_methods

    code = example_code("Adding a method")
    exec(compile(code, str(CONTRIBUTING), "exec"), {"__name__": "contributing_method_example"})
    assert "two_towers" in available_methods()
    recipe = {"run": {"name": "example", "seed": 0},
              "data": {"source": "synthetic", "synthetic": {"num_train": 120, "num_test": 30, "num_labels": 5,
                                                            "image_dim": 16, "text_dim": 12}},
              "graph": {"node_features": "random"}, "train": {"batch_size": 40, "device": "cpu"}}
    result = compare(recipe, methods=["two_towers", "l2gcn"], out=tmp_path / "cmp", overrides={"train.epochs": 2})
    rows = {row["method"]: row for row in result.rows}
    assert set(rows) == {"two_towers", "l2gcn"} and rows["two_towers"]["kind"] == "method"
    history = [json.loads(line) for line in (tmp_path / "cmp" / "two_towers_seed0" / "metrics.jsonl").open()]
    assert len(history) == 2 and "lambda" not in history[0] and history[0]["loss_total"] > 0
    resolved = json.loads((tmp_path / "cmp" / "two_towers_seed0" / "config.resolved.json").read_text())
    assert (resolved["model"]["name"], resolved["loss"]["name"]) == ("two_towers", "soft_only")
    assert 0.0 <= rows["two_towers"]["avg_map_mean"] <= 1.0


def test_method_example_is_gone_afterwards():
    from gcnretrieval.methods import available_methods

    assert "two_towers" not in available_methods()
