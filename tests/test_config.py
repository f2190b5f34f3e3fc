"""Recipes: parsing, strict keys with did-you-mean, type and value checks, --set overrides."""
from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from gcnretrieval.config import Config, apply_overrides, config_from_dict, load_config, parse_override, to_toml
from gcnretrieval.errors import ConfigError, GcnRetrievalError

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))
BASE = {"data": {"path": "data.npz"}}


def test_recipes_are_shipped():
    names = {p.name for p in RECIPES}
    assert {"demo.toml", "synthetic.toml", "mirflickr_l2gcn.toml", "nuswide_l2gcn.toml", "mscoco_l2gcn.toml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_parses(path):
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.run.name == path.stem
    # the resolved form survives JSON and TOML round trips
    assert config_from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config_from_dict(tomllib.loads(to_toml(config.to_dict()))) == config


@pytest.mark.parametrize(
    "name, batch, depth, temperature",
    [("mirflickr", 100, 5, 0.22), ("nuswide", 2048, 6, 0.22), ("mscoco", 512, 5, 0.20)],
)
def test_benchmark_recipes_carry_the_paper_hyper_parameters(name, batch, depth, temperature):
    c = load_config(Path(__file__).resolve().parents[1] / "recipes" / f"{name}_l2gcn.toml")
    assert (c.data.dataset, c.data.source, c.data.path) == (name, "files", None)
    assert (c.train.optimizer, c.train.lr, c.train.betas, c.train.weight_decay) == ("adam", 5e-5, (0.5, 0.999), 0.0)
    assert (c.train.epochs, c.train.batch_size, c.run.seed) == (40, batch, 103)
    assert (c.encoder.name, c.encoder.num_layers, c.model.common_dim) == ("l2gcn", depth, 1024)
    assert (c.loss.alpha, c.loss.beta, c.loss.theta, c.loss.temperature) == (1.1, 2.2, 0.6, temperature)
    assert (c.graph.kind, c.graph.threshold, c.graph.node_features) == ("cooccurrence", 0.4, "glove")
    assert c.eval.select_on == "val"


def test_synthetic_recipe_uses_synthetic_data():
    c = load_config(Path(__file__).resolve().parents[1] / "recipes" / "synthetic.toml")
    assert c.data.source == "synthetic"
    assert c.data.synthetic["num_train"] >= c.train.batch_size


def test_demo_recipe_uses_the_bundled_real_dataset():
    c = load_config(Path(__file__).resolve().parents[1] / "recipes" / "demo.toml")
    assert (c.data.source, c.data.dataset) == ("bundled", "mirflickr-mini")
    assert (c.graph.node_features, c.graph.vocabulary) == ("glove", "mirflickr")


def test_defaults_follow_the_method():
    c = load_config(BASE)
    assert (c.train.lr, c.train.betas, c.train.epochs, c.train.batch_size) == (5e-5, (0.5, 0.999), 40, 100)
    assert (c.loss.alpha, c.loss.beta, c.loss.theta, c.loss.condition) == (1.1, 2.2, 0.6, "all")
    assert (c.graph.threshold, c.encoder.name, c.encoder.num_layers, c.model.common_dim) == (0.4, "l2gcn", 5, 1024)
    assert (c.eval.select_on, c.train.device, c.run.seed) == ("val", "auto", None)


def test_config_is_frozen():
    c = load_config(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.train.epochs = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"train": {"epoch": 1}}, "unknown key 'train.epoch' — did you mean 'train.epochs'?"),
        ({"trian": {"epochs": 1}}, "unknown key 'trian' — did you mean 'train'?"),
        ({"loss": {"alpah": 1.0}}, "unknown key 'loss.alpah' — did you mean 'loss.alpha'?"),
        ({"eval": {"select": "val"}}, "unknown key 'eval.select' — did you mean 'eval.select_on'?"),
        ({"graph": {"treshold": 0.3}}, "unknown key 'graph.treshold' — did you mean 'graph.threshold'?"),
    ],
)
def test_unknown_keys_suggest_the_closest(raw, message):
    with pytest.raises(ConfigError) as err:
        load_config({**BASE, **raw})
    assert str(err.value) == message


def test_unknown_key_without_close_match_lists_known_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'train.zzz'; known keys: train.epochs, "):
        load_config({**BASE, "train": {"zzz": 1}})


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"train": {"epochs": "two"}}, "'train.epochs' must be an integer, got a string ('two')"),
        ({"train": {"epochs": 2.5}}, "'train.epochs' must be an integer"),
        ({"train": {"epochs": True}}, "'train.epochs' must be an integer, got a boolean"),
        ({"train": {"lr": "fast"}}, "'train.lr' must be a number"),
        ({"train": {"deterministic": 1}}, "'train.deterministic' must be true or false"),
        ({"encoder": {"name": 3}}, "'encoder.name' must be a string"),
        ({"train": {"betas": [0.5]}}, "'train.betas' must be an array of 2 values"),
        ({"train": {"betas": 0.5}}, "'train.betas' must be an array"),
        ({"encoder": {"options": 3}}, "'encoder.options' must be a table"),
        ({"train": 3}, "recipe key 'train' must be a table"),
        ({"plugins": "x", "run": {"name": ["a"]}}, "'run.name' must be a string"),
    ],
)
def test_wrong_types_fail_with_one_line(raw, fragment):
    with pytest.raises(ConfigError) as err:
        load_config({**BASE, **raw})
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("train.epochs", 0, "'train.epochs' must be at least 1"),
        ("train.lr", 0.0, "'train.lr' must be a number > 0"),
        ("train.lr", -1e-3, "'train.lr' must be a number > 0"),
        ("train.batch_size", 0, "'train.batch_size' must be at least 2"),
        ("train.batch_size", 1, "'train.batch_size' must be at least 2"),
        ("train.betas", [0.5, 1.0], "'train.betas' must be two numbers in [0, 1)"),
        ("loss.theta", 1.5, "'loss.theta' must be in [0, 1]"),
        ("loss.theta", -0.1, "'loss.theta' must be in [0, 1]"),
        ("loss.alpha", -1.0, "'loss.alpha' must be a finite number >= 0"),
        ("loss.temperature", 0.0, "'loss.temperature' must be a number > 0"),
        ("loss.condition", "al", "must be one of all, cs_only, no_cla, no_adv, no_cs, got 'al' — did you mean 'all'?"),
        ("graph.threshold", 0.0, "'graph.threshold' must be in (0, 1]"),
        ("graph.kind", "cooc", "'graph.kind' must be one of"),
        ("graph.node_features", "word2vec", "'graph.node_features' must be one of"),
        ("encoder.num_layers", 0, "'encoder.num_layers' must be at least 1"),
        ("model.common_dim", 0, "'model.common_dim' must be at least 1"),
        ("eval.select_on", "train", "'eval.select_on' must be one of val, test"),
        ("eval.val_fraction", 1.0, "'eval.val_fraction' must be in (0, 1)"),
        ("train.device", "gpu", "'train.device' must be 'auto', 'cpu'"),
        ("run.name", "a/b", "'run.name' must be a non-empty name without path separators"),
        ("run.seed", -1, "'run.seed' must be a non-negative integer"),
    ],
)
def test_impossible_values_fail_with_one_line(key, value, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(BASE, {key: value})
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_data_source_is_required():
    with pytest.raises(ConfigError, match="needs 'data.path'"):
        load_config({})
    assert load_config({"data": {"source": "synthetic"}}).data.source == "synthetic"
    assert load_config({"data": {"dataset": "mirflickr"}}).data.dataset == "mirflickr"


@pytest.mark.parametrize(
    "text, key, value",
    [
        ("train.lr=1e-4", "train.lr", 1e-4),
        ("train.epochs=2", "train.epochs", 2),
        ("train.deterministic=true", "train.deterministic", True),
        ('encoder.name="gcn"', "encoder.name", "gcn"),
        ("encoder.name='gcn'", "encoder.name", "gcn"),
        ("encoder.name=gcn", "encoder.name", "gcn"),
        ("train.betas=[0.9, 0.99]", "train.betas", [0.9, 0.99]),
        ("data.path=data/my set/x.npz", "data.path", "data/my set/x.npz"),
        ("data.path=/tmp/x.npz", "data.path", "/tmp/x.npz"),
        ("encoder.options.act=leaky_relu", "encoder.options.act", "leaky_relu"),
        ("encoder.options={dropout = 0.1}", "encoder.options", {"dropout": 0.1}),
        (" train.epochs = 3 ", "train.epochs", 3),
    ],
)
def test_parse_override(text, key, value):
    assert parse_override(text) == (key, value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("train.epochs", "is not key=value"),
        ("train.epochs=", "has no value"),
        ('encoder.name="gcn', "is not a valid TOML value"),
        ("train.betas=[0.9,", "is not a valid TOML value"),
        ("train..lr=1", "is not a dotted recipe key"),
    ],
)
def test_bad_overrides_fail(text, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
        parse_override(text)


def test_overrides_apply_and_are_checked():
    c = load_config(BASE, ["train.lr=1e-4", "encoder.name=gcn", "train.betas=[0.9, 0.99]", "data.synthetic.num_train=50"])
    assert (c.train.lr, c.encoder.name, c.train.betas, c.data.synthetic) == (1e-4, "gcn", (0.9, 0.99), {"num_train": 50})
    # the dict form takes values as given
    c = load_config(BASE, {"train.epochs": 3, "encoder.options.dropout": 0.2})
    assert (c.train.epochs, c.encoder.options) == (3, {"dropout": 0.2})
    with pytest.raises(ConfigError, match="unknown key 'train.epoch' — did you mean 'train.epochs'"):
        load_config(BASE, ["train.epoch=1"])
    with pytest.raises(ConfigError, match="'train.epochs' must be an integer"):
        load_config(BASE, ["train.epochs=two"])
    with pytest.raises(ConfigError, match="cannot set train.lr.x: 'train.lr' is a value"):
        load_config(BASE, ["train.lr=1", "train.lr.x=2"])


def test_overrides_do_not_touch_the_input():
    raw = {"data": {"path": "a.npz"}, "train": {"epochs": 1}}
    apply_overrides(raw, {"train.epochs": 5})
    assert raw["train"]["epochs"] == 1


def test_replace_checks_dotted_keys():
    c = load_config(BASE)
    assert c.replace(**{"train.epochs": 7}).train.epochs == 7
    with pytest.raises(ConfigError, match="'train.epochs' must be at least 1"):
        c.replace(**{"train.epochs": 0})


def test_recipe_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(bad)


def test_config_errors_are_user_errors():
    assert issubclass(ConfigError, GcnRetrievalError)


def test_plugins_list():
    assert load_config({**BASE, "plugins": ["json"]}).plugins == ("json",)
    with pytest.raises(ConfigError, match="'plugins' must be a list of module names"):
        load_config({**BASE, "plugins": [1]})
