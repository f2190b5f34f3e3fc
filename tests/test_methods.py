"""The method layer: the registry, presets laid over recipes, and methods in a comparison."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from gcnretrieval.cli import cli
from gcnretrieval.config import load_config
from gcnretrieval.errors import ConfigError, UnknownNameError
from gcnretrieval.experiments import compare
from gcnretrieval.methods import METHODS, Method, apply_method, available_methods, register_method

RECIPE = {"run": {"name": "m", "seed": 0},
          "data": {"source": "synthetic", "synthetic": {"num_train": 120, "num_test": 30, "num_labels": 5,
                                                        "image_dim": 16, "text_dim": 12}},
          "graph": {"node_features": "random", "threshold": 0.3}, "encoder": {"name": "gcn", "num_layers": 2},
          "model": {"common_dim": 32}, "loss": {"alpha": 2.0}, "train": {"batch_size": 40, "device": "cpu"},
          "tune": {"space": {"loss.alpha": [1.0, 2.0]}}}


@pytest.fixture
def scratch_methods(monkeypatch):
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))


def test_every_method_has_a_paper_and_a_one_line_summary():
    assert {"l2gcn", "cca", "pls", "random"} <= set(available_methods())
    for name in available_methods():
        method = METHODS.get(name)
        assert method.name == name and method.paper and method.summary and "\n" not in method.summary
        assert (method.baseline is None) == (method.kind == "trained")


def test_the_methods_command_lists_each_method_with_its_paper():
    result = CliRunner().invoke(cli, ["methods"])
    assert result.exit_code == 0, result.output
    for name in available_methods():
        assert any(line.startswith(name + " ") for line in result.output.splitlines())
        assert METHODS.get(name).paper in result.output


def test_a_preset_replaces_model_and_loss_and_drops_the_graph_of_a_graphless_method(scratch_methods):
    register_method(Method("flat", "a paper", "a line", preset={"model.common_dim": 8, "train.lr": 0.5,
                                                                  "loss.temperature": 0.3}, uses_label_graph=False))
    tree = apply_method(RECIPE, "flat")
    assert tree["model"] == {"common_dim": 8} and tree["loss"] == {"temperature": 0.3}
    assert "graph" not in tree and "encoder" not in tree and "space" not in tree["tune"]
    assert tree["train"] == {"batch_size": 40, "device": "cpu", "lr": 0.5}
    assert tree["run"] == RECIPE["run"] and tree["data"] == RECIPE["data"]
    assert RECIPE["model"] == {"common_dim": 32}  # the recipe itself is untouched


def test_a_method_brings_its_own_search_space(scratch_methods):
    register_method(Method("spaced", "a paper", "a line", preset={"train.lr": 0.5},
                           space={"train.lr": {"low": 0.1, "high": 1.0, "log": True}}))
    assert apply_method(RECIPE, "spaced")["tune"] == {"space": {"train.lr": {"low": 0.1, "high": 1.0, "log": True}}}


def test_l2gcn_keeps_the_recipe_and_sets_its_encoder():
    tree = apply_method(RECIPE, "l2gcn")
    assert tree["encoder"] == {"name": "l2gcn", "num_layers": 2} and tree["model"] == RECIPE["model"]
    assert tree["loss"] == RECIPE["loss"] and tree["tune"] == RECIPE["tune"]


def test_a_closed_form_method_leaves_the_recipe_alone_and_may_not_have_a_preset(scratch_methods):
    assert apply_method(RECIPE, "cca") == RECIPE
    with pytest.raises(ValueError, match="closed-form"):
        register_method(Method("bad", "p", "s", preset={"train.lr": 1.0}, baseline="cca"))


def test_unknown_method_names_get_a_suggestion():
    with pytest.raises(UnknownNameError, match="did you mean 'l2gcn'"):
        apply_method(RECIPE, "l2gnc")
    with pytest.raises(UnknownNameError, match="method"):
        compare(RECIPE, methods=["l2gcn", "nope"])


def test_model_and_loss_names_are_checked_and_a_graphless_model_refuses_graph_tables(monkeypatch):
    from torch import nn

    from gcnretrieval.models.registry import MODELS, register_model

    with pytest.raises(UnknownNameError, match="model"):
        load_config({**RECIPE, "model": {"name": "label_grph"}})
    with pytest.raises(UnknownNameError, match="objective"):
        load_config({**RECIPE, "loss": {"name": "circle"}})

    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))

    @register_model("flat_model")
    class Flat(nn.Module):
        def __init__(self, image_dim: int, text_dim: int, width: int = 4) -> None:
            super().__init__()

    with pytest.raises(ConfigError, match=r"recipe table \[graph\] has no effect with model.name = \"flat_model\""):
        load_config({**RECIPE, "model": {"name": "flat_model"}, "loss": {}, "tune": {}})
    tree = {key: value for key, value in RECIPE.items() if key not in ("graph", "encoder", "tune")}
    config = load_config({**tree, "model": {"name": "flat_model", "width": 3}, "loss": {}})
    assert config.model.width == 3 and "graph" not in config.to_dict()
    assert load_config(config.to_dict()) == config  # a resolved configuration reads back


def test_encoders_and_methods_share_one_table_and_a_name_in_both_runs_once(tmp_path):
    result = compare(RECIPE, ["gcn", "l2gcn"], methods=["l2gcn", "cca"], out=tmp_path / "c", overrides={"train.epochs": 1})
    assert [row["method"] for row in result.rows] == ["gcn", "l2gcn", "cca"]
    assert {row["method"]: row["kind"] for row in result.rows} == {"gcn": "encoder", "l2gcn": "encoder",
                                                                   "cca": "baseline"}
    assert sorted(p.name for p in (tmp_path / "c").iterdir() if p.is_dir()) == ["cca_seed0", "gcn_seed0",
                                                                                 "l2gcn_seed0"]


def test_compare_needs_encoders_or_methods_on_the_command_line():
    result = CliRunner().invoke(cli, ["compare", "demo"])
    assert result.exit_code == 2 and "give --encoders, --methods or both" in result.output
