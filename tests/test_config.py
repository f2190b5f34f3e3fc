"""Recipes: parsing, strict keys read from the constructors, value checks by the constructors, overrides."""
from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from gcnretrieval.config import (Config, load_config, packaged_recipes, parse_overrides, read_recipe, recipe_file,
                                 to_toml)
from gcnretrieval.errors import ConfigError, GcnRetrievalError, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.toml"))
BASE = {"data": {"path": "data.npz"}}


def test_recipes_are_shipped_in_the_package():
    names = {p.stem for p in RECIPES}
    assert {"demo", "custom", "synthetic", "mirflickr_l2gcn", "nuswide_l2gcn", "mscoco_l2gcn"} <= names
    assert set(packaged_recipes()) == names
    assert read_recipe("demo") == tomllib.loads((ROOT / "recipes" / "demo.toml").read_text())
    assert recipe_file("mirflickr_l2gcn.toml").name == "mirflickr_l2gcn.toml"


def test_unknown_recipe_name_lists_the_packaged_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config("dmo")
    message = str(err.value)
    assert "recipe dmo does not exist — did you mean 'demo'?" in message
    assert all(name in message for name in packaged_recipes())
    # a file of that name in the working directory wins over a packaged recipe
    (tmp_path / "demo").write_text('[data]\nsource = "synthetic"\n[run]\nname = "mine"\n')
    assert load_config("demo").run.name == "mine"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_parses(path):
    config = load_config(path, {"data.path": "data/mine"} if path.stem == "custom" else None)
    assert isinstance(config, Config)
    assert config.run.name == path.stem
    # the resolved form survives JSON and TOML round trips
    assert load_config(json.loads(json.dumps(config.to_dict()))) == config
    assert load_config(tomllib.loads(to_toml(config.to_dict()))) == config


@pytest.mark.parametrize(
    "name, batch, depth, temperature",
    [("mirflickr", 100, 5, 0.22), ("nuswide", 2048, 6, 0.22), ("mscoco", 512, 5, 0.20)],
)
def test_benchmark_recipes_carry_the_paper_hyper_parameters(name, batch, depth, temperature):
    c = load_config(f"{name}_l2gcn")
    assert (c.data.dataset, c.data.source, c.data.path) == (name, "files", None)
    assert (c.train.optimizer, c.train.lr, c.train.betas, c.train.weight_decay) == ("adam", 5e-5, (0.5, 0.999), 0.0)
    assert (c.train.epochs, c.train.batch_size, c.run.seed) == (40, batch, 103)
    assert (c.encoder.name, c.encoder.num_layers, c.model.common_dim) == ("l2gcn", depth, 1024)
    assert (c.loss.alpha, c.loss.beta, c.loss.theta, c.loss.temperature) == (1.1, 2.2, 0.6, temperature)
    assert (c.graph.kind, c.graph.threshold, c.graph.node_features) == ("cooccurrence", 0.4, "glove")
    assert c.eval.select_on == "val"


def test_synthetic_recipe_uses_synthetic_data():
    c = load_config("synthetic")
    assert c.data.source == "synthetic"
    assert c.data.synthetic["num_train"] >= c.train.batch_size


def test_the_custom_recipe_asks_for_the_data_and_trains_by_steps_with_early_stopping():
    with pytest.raises(ConfigError, match="recipe needs 'data.path'"):
        load_config("custom")
    c = load_config("custom", {"data.path": "data/mine"})
    assert c.train.steps and c.train.patience and c.data.source == "files"


def test_demo_recipe_uses_the_bundled_real_dataset():
    c = load_config("demo")
    assert (c.data.source, c.data.dataset) == ("bundled", "mirflickr-mini")
    assert c.graph.node_features == "glove"


def test_defaults_are_those_of_the_constructors():
    from gcnretrieval.losses import Objective
    from gcnretrieval.models import CrossModalModel

    c = load_config(BASE)
    assert (c.train.lr, c.train.betas, c.train.epochs, c.train.batch_size) == (5e-5, (0.5, 0.999), 40, 100)
    assert (c.loss.alpha, c.loss.beta, c.loss.theta, c.loss.condition) == (1.1, 2.2, 0.6, "all")
    assert (c.graph.threshold, c.encoder.name, c.encoder.num_layers, c.model.common_dim) == (0.4, "l2gcn", 5, 1024)
    assert (c.eval.select_on, c.train.device, c.run.seed) == ("val", "auto", None)
    import inspect

    assert (c.model.name, c.loss.name) == ("label_graph", "circle_soft")  # the registered CrossModalModel, Objective
    for table, target in ((c.loss, Objective), (c.model, CrossModalModel)):
        for key, value in table.items():
            if key != "name":
                assert inspect.signature(target).parameters[key].default == value, key


def test_config_is_frozen():
    c = load_config(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.train.epochs = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        c.loss["alpha"] = 3  # type: ignore[index]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"train": {"epoch": 1}}, "unknown key 'train.epoch' — did you mean 'train.epochs'?"),
        ({"trian": {"epochs": 1}}, "unknown key 'trian' — did you mean 'train'?"),
        ({"loss": {"alpah": 1.0}}, "unknown key 'loss.alpah' — did you mean 'loss.alpha'?"),
        ({"eval": {"select": "val"}}, "unknown key 'eval.select' — did you mean 'eval.select_on'?"),
        ({"graph": {"treshold": 0.3}}, "unknown key 'graph.treshold' — did you mean 'graph.threshold'?"),
        ({"model": {"common_dimension": 8}}, "unknown key 'model.common_dimension' — did you mean 'model.common_dim'?"),
        ({"encoder": {"dropuot": 0.1}}, "unknown key 'encoder.dropuot' of encoder 'l2gcn' — did you mean 'encoder.dropout'?"),
        ({"encoder": {"name": "gcn", "count_self": True}},
         "unknown key 'encoder.count_self' of encoder 'gcn'; known keys: encoder.name, encoder.num_layers"),
        ({"data": {"source": "synthetic", "synthetic": {"num_trian": 5}}},
         "unknown key 'data.synthetic.num_trian' — did you mean 'data.synthetic.num_train'?"),
        ({"graph": {"options": {"reweigth": 0.2}}}, "unknown key 'graph.options.reweigth' — did you mean 'graph.options.reweight'?"),
    ],
)
def test_unknown_keys_suggest_the_closest(raw, message):
    with pytest.raises(ConfigError) as err:
        load_config({**BASE, **raw})
    assert str(err.value).startswith(message)


def test_encoder_keys_are_the_options_of_the_chosen_encoder():
    gat = load_config({**BASE, "encoder": {"name": "gat", "heads": 4, "dropout": 0.1}})
    assert (gat.encoder.name, gat.encoder.heads, gat.encoder.dropout) == ("gat", 4, 0.1)
    l2gcn = load_config({**BASE, "encoder": {"count_self": True}})
    assert l2gcn.encoder.count_self is True and "heads" not in l2gcn.encoder
    with pytest.raises(UnknownNameError, match="unknown encoder 'gcm' — did you mean 'gcn'?"):
        load_config({**BASE, "encoder": {"name": "gcm"}})


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"train": {"epochs": "two"}}, "'train.epochs' must be an integer, got a string ('two')"),
        ({"train": {"epochs": 2.5}}, "'train.epochs' must be an integer"),
        ({"train": {"epochs": True}}, "'train.epochs' must be an integer, got a boolean"),
        ({"train": {"lr": "fast"}}, "'train.lr' must be a number"),
        ({"train": {"deterministic": 1}}, "'train.deterministic' must be a boolean, got an integer (1)"),
        ({"encoder": {"name": 3}}, "'encoder.name' must be a string"),
        ({"encoder": {"act": 3}}, "'encoder.act' must be a string"),
        ({"train": {"betas": [0.5]}}, "'train.betas' must be an array of 2 values"),
        ({"train": {"betas": 0.5}}, "'train.betas' must be an array"),
        ({"model": {"image_discriminator_hidden": [1024, "x"]}}, "'model.image_discriminator_hidden' must be an integer"),
        ({"data": {"source": "synthetic", "synthetic": 3}}, "'data.synthetic' must be a table"),
        ({"train": 3}, "recipe key 'train' must be a table"),
        ({"run": {"name": ["a"]}}, "'run.name' must be a string"),
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
        ("train.epochs", 0, "recipe key 'train.epochs' must be at least 1"),
        ("train.lr", 0.0, "recipe key 'train.lr' must be a number > 0"),
        ("train.lr", -1e-3, "recipe key 'train.lr' must be a number > 0"),
        ("train.batch_size", 1, "recipe key 'train.batch_size' must be at least 2"),
        ("train.betas", [0.5, 1.0], "recipe key 'train.betas' must be two numbers in [0, 1)"),
        ("loss.theta", 1.5, "recipe key 'loss.theta' must be in [0, 1]"),
        ("loss.theta", -0.1, "recipe key 'loss.theta' must be in [0, 1]"),
        ("loss.alpha", -1.0, "recipe key 'loss.alpha' must be a finite number >= 0"),
        ("loss.temperature", 0.0, "recipe key 'loss.temperature' must be a number > 0"),
        ("loss.condition", "al", "must be one of all, cs_only, no_cla, no_adv, no_cs, got 'al' — did you mean 'all'?"),
        ("graph.threshold", 0.0, "recipe key 'graph.threshold' must be in (0, 1]"),
        ("graph.kind", "cooc", "recipe key 'graph.kind' must be one of"),
        ("graph.node_features", "word2vec", "recipe key 'graph.node_features' must be one of"),
        ("eval.select_on", "train", "recipe key 'eval.select_on' must be one of val, test"),
        ("eval.val_fraction", 1.0, "recipe key 'eval.val_fraction' must be in (0, 1)"),
        ("train.device", "gpu", "recipe key 'train.device' must be 'auto', 'cpu'"),
        ("run.name", "a/b", "recipe key 'run.name' must be a non-empty name without path separators"),
        ("run.seed", -1, "recipe key 'run.seed' must be a non-negative integer"),
    ],
)
def test_impossible_values_fail_with_one_line(key, value, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(BASE, {key: value})
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


# every key that the chosen options would ignore is refused (key, and the option that makes it meaningless)
IGNORED = [
    ({"data": {"source": "bundled", "dataset": "mirflickr-mini", "path": "x.npz"}}, "data.path", 'data.source = "bundled"'),
    ({"data": {"source": "synthetic", "path": "x.npz"}}, "data.path", 'data.source = "synthetic"'),
    ({"data": {"source": "synthetic", "dataset": "x"}}, "data.dataset", 'data.source = "synthetic"'),
    ({"data": {"path": "x.npz", "synthetic": {"num_train": 5}}}, "data.synthetic", 'data.source = "files"'),
    ({"graph": {"node_features": "glove", "node_feature_dim": 50}}, "graph.node_feature_dim", 'graph.node_features = "glove"'),
    ({"graph": {"node_feature_dim": 50}}, "graph.node_feature_dim", 'graph.node_features = "auto"'),
    ({"graph": {"node_features": "random", "vocabulary": "mirflickr"}}, "graph.vocabulary", 'graph.node_features = "random"'),
    ({"graph": {"node_features": "onehot", "word_vectors": "v.txt"}}, "graph.word_vectors", 'graph.node_features = "onehot"'),
    ({"loss": {"condition": "no_cla", "alpha": 2.0}}, "loss.alpha", 'loss.condition = "no_cla"'),
    ({"loss": {"condition": "cs_only", "beta": 1.0}}, "loss.beta", 'loss.condition = "cs_only"'),
    ({"loss": {"condition": "no_adv", "view_weight": 0.5}}, "loss.view_weight", 'loss.condition = "no_adv"'),
    ({"loss": {"condition": "no_cs", "gamma": 32.0}}, "loss.gamma", 'loss.condition = "no_cs"'),
    ({"loss": {"condition": "no_cs", "theta": 0.5}}, "loss.theta", 'loss.condition = "no_cs"'),
    ({"eval": {"select_on": "test", "val_fraction": 0.2}}, "eval.val_fraction", 'eval.select_on = "test"'),
]


@pytest.mark.parametrize("raw, key, option", IGNORED, ids=[case[1] + " " + case[2] for case in IGNORED])
def test_a_key_the_chosen_options_ignore_is_refused(raw, key, option):
    with pytest.raises(ConfigError) as err:
        load_config({**BASE, **raw})
    message = str(err.value)
    assert message.startswith(f"recipe key '{key}' has no effect with {option}")
    assert message.endswith("remove it") and "\n" not in message
    section, name = key.split(".")
    trimmed = {k: {n: v for n, v in t.items() if n != name} if k == section else t for k, t in raw.items()}
    load_config({**BASE, **trimmed})  # the same recipe without that key is fine


def test_data_source_needs_its_keys():
    with pytest.raises(ConfigError, match="needs 'data.path'"):
        load_config({})
    assert load_config({"data": {"source": "synthetic"}}).data.source == "synthetic"
    assert load_config({"data": {"dataset": "mirflickr"}}).data.dataset == "mirflickr"
    with pytest.raises(ConfigError, match='data.source = "bundled" needs data.dataset'):
        load_config({"data": {"source": "bundled"}})


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
        ("encoder.act=leaky_relu", "encoder.act", "leaky_relu"),
        ("data.synthetic={num_train = 10}", "data.synthetic", {"num_train": 10}),
        (" train.epochs = 3 ", "train.epochs", 3),
    ],
)
def test_parse_override(text, key, value):
    assert parse_overrides([text]) == {key: value}


def test_command_line_overrides_become_one_dict_and_the_library_takes_only_a_mapping():
    assert parse_overrides(["train.epochs=2", "encoder.name=gcn"]) == {"train.epochs": 2, "encoder.name": "gcn"}
    assert parse_overrides([]) == {}
    with pytest.raises(TypeError, match="overrides are a mapping of dotted recipe keys"):
        load_config(BASE, ["train.epochs=2"])


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
        parse_overrides([text])


def test_overrides_apply_and_are_checked():
    c = load_config({"data": {"source": "synthetic"}}, parse_overrides(
        ["train.lr=1e-4", "encoder.name=gcn", "train.betas=[0.9, 0.99]", "data.synthetic.num_train=50"]))
    assert (c.train.lr, c.encoder.name, c.train.betas, c.data.synthetic) == (1e-4, "gcn", (0.9, 0.99), {"num_train": 50})
    c = load_config(BASE, {"train.epochs": 3, "encoder.dropout": 0.2})  # the dict form takes values as given
    assert (c.train.epochs, c.encoder.dropout) == (3, 0.2)
    with pytest.raises(ConfigError, match="unknown key 'train.epoch' — did you mean 'train.epochs'"):
        load_config(BASE, {"train.epoch": 1})
    with pytest.raises(ConfigError, match="'train.epochs' must be an integer"):
        load_config(BASE, {"train.epochs": "two"})
    with pytest.raises(ConfigError, match="cannot set train.lr.x: 'train.lr' is a value"):
        load_config(BASE, {"train.lr": 1, "train.lr.x": 2})


def test_overrides_do_not_touch_the_input():
    raw = {"data": {"path": "a.npz"}, "train": {"epochs": 1}}
    assert load_config(raw, {"train.epochs": 5}).train.epochs == 5
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
    with pytest.raises(ConfigError, match=r"bad\.toml is not a readable TOML recipe \(TOMLDecodeError: "):
        load_config(bad)



def test_a_recipe_is_a_table_and_an_edgeless_graph_is_a_fixed_one():
    with pytest.raises(ConfigError, match="a recipe must be a table of sections, got int"):
        load_config(42)
    with pytest.raises(ConfigError, match="recipe key 'graph.drop_edges' applies to fixed graphs, not graph.kind"):
        load_config(BASE, {"graph.kind": "adaptive", "graph.drop_edges": True})

def test_config_errors_are_user_errors():
    assert issubclass(ConfigError, GcnRetrievalError)


def test_plugins_list():
    assert load_config({**BASE, "plugins": ["json"]}).plugins == ("json",)
    with pytest.raises(ConfigError, match="'plugins' must be a list of module names"):
        load_config({**BASE, "plugins": [1]})
    with pytest.raises(ConfigError, match="cannot import plugin 'no_such_module_xyz'"):
        load_config({**BASE, "plugins": ["no_such_module_xyz"]})


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x89PNG\r\n\x1a\n\x00\x00", "[run]\nname = 'caf\u00e9'\n".encode("latin-1")])
def test_binary_or_non_utf8_recipe_is_one_config_error(tmp_path, content):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{bad} is not a readable TOML recipe (UnicodeDecodeError: 'utf-8' codec can't decode byte")
    assert message.endswith("; write the recipe as UTF-8 TOML (see recipes/README.md)")
