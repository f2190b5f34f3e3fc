"""Host-memory reuse is a process-wide setting: the command line applies it, the library never does."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import gcnretrieval
from gcnretrieval.cli import cli
from gcnretrieval.training import host_memory


def _tiny_recipe() -> dict:
    return {
        "run": {"name": "tiny", "seed": 0},
        "data": {"source": "synthetic", "synthetic": {"num_train": 20, "num_test": 6, "num_labels": 4,
                                                      "image_dim": 10, "text_dim": 8}},
        "graph": {"node_features": "random", "node_feature_dim": 5, "threshold": 0.3},
        "encoder": {"num_layers": 1},
        "model": {"common_dim": 8},
        "train": {"epochs": 1, "batch_size": 10, "device": "cpu"},
    }


@pytest.fixture
def calls(monkeypatch):
    seen: list[int] = []
    monkeypatch.setattr(host_memory, "keep_freed_host_memory", lambda: seen.append(1) or True)
    return seen


def test_the_library_leaves_the_allocator_alone(tmp_path, calls):
    gcnretrieval.run(_tiny_recipe(), out=tmp_path / "run", progress=False)
    gcnretrieval.sweep(_tiny_recipe(), {"model.common_dim": [8]}, out=tmp_path / "sweep")
    assert calls == []


def test_the_run_command_applies_it_once(tmp_path, calls):
    recipe = tmp_path / "tiny.toml"
    from gcnretrieval.config import to_toml

    recipe.write_text(to_toml(_tiny_recipe()))
    result = CliRunner().invoke(cli, ["run", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert calls == [1]
