"""Own data of any size: the automatic test split, the batch size of small training sets, a
validation split that cannot rank epochs, the hint `prepare` prints, plugins beside the recipe
or in the working directory, and the small CLI wordings (graph of the bundled dataset, one
line per warning, the seed wording of a summary)."""
from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gcnretrieval
from gcnretrieval.cli import cli
from gcnretrieval.config import Recipe, load_config, to_toml
from gcnretrieval.data import load_bundled
from gcnretrieval.errors import ConfigError
from gcnretrieval.options import TrainOptions
from gcnretrieval.preparation import default_num_test
from gcnretrieval.training import Trainer
from gcnretrieval.training.experiment import load_data
from gcnretrieval.training.ranking import cannot_rank, validation_fraction

BUNDLED = Path(gcnretrieval.__file__).parent / "bundled" / "mirflickr_mini"
CUSTOM = Path(__file__).resolve().parents[1] / "recipes" / "custom.toml"


def _recipe(num_train: int = 100, num_val: int = 0, **train) -> dict:
    synthetic = {"num_train": num_train, "num_test": 20, "num_labels": 5, "image_dim": 16, "text_dim": 12}
    if num_val:
        synthetic["num_val"] = num_val
    return {
        "run": {"name": "t", "seed": 0},
        "data": {"source": "synthetic", "synthetic": synthetic},
        "graph": {"node_features": "random", "node_feature_dim": 8},
        "encoder": {"name": "l2gcn", "num_layers": 2},
        "model": {"common_dim": 16},
        "train": {"batch_size": 20, "device": "cpu", **train},
    }


# --- prepare: the test split and the hint -----------------------------------------------


def test_default_test_split_is_a_fifth_of_the_pairs_at_most_2000():
    for n in (3, 4, 10, 60, 61, 600, 730, 9_999, 10_000, 20_015, 190_421):
        # reference from the rule: 20 % rounded half to even, at least 1, at most 2,000, leaving 2 to train
        share = int(np.round(0.2 * n))
        expected = min(2000, max(1, share), n - 2) if n > 3 else 1
        assert default_num_test(n) == expected, n
    assert (default_num_test(60), default_num_test(600), default_num_test(20_015)) == (12, 120, 2000)


def _thumbnail_folder(root: Path, count: int) -> Path:
    """``count`` bundled mirflickr-mini thumbnails with their tags and labels, as `prepare folder` reads."""
    with np.load(BUNDLED / "mirflickr-mini.npz") as arrays:
        text, labels = arrays["txt_train"][:count], arrays["lab_train"][:count]
    words = (BUNDLED / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    names = json.loads((BUNDLED / "manifest.json").read_text(encoding="utf-8"))["label_names"]
    files = (BUNDLED / "train_images.txt").read_text(encoding="utf-8").split()[:count]
    images = root / "my photos"
    images.mkdir(parents=True)
    rows = ["file,text,labels"]
    for i, name in enumerate(files):
        source = BUNDLED / "thumbnails" / Path(name).with_suffix(".jpg")
        (images / source.name).write_bytes(source.read_bytes())
        tags = " ".join(words[j] for j in np.flatnonzero(text[i])) or "photo"
        rows.append(f"{source.name},{tags},{'|'.join(names[j] for j in np.flatnonzero(labels[i])) or 'sky'}")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return images


def test_prepare_chooses_the_test_split_says_so_and_quotes_its_hint(tmp_path):
    images = _thumbnail_folder(tmp_path, 20)
    out = tmp_path / "data dir" / "mine"
    result = CliRunner().invoke(cli, ["prepare", "folder", "--images", str(images), "--table",
                                      str(tmp_path / "pairs.csv"), "--features", "histogram", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "train 16, test 4 pairs (--num-test not given; default: 20 % of the pairs, at most 2000)" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"]["num_test"] == 4 and manifest["counts"]["train"] == 16
    hint = next(line for line in result.output.splitlines() if line.startswith("train on it: "))
    command = shlex.split(hint.removeprefix("train on it: "))
    assert command == ["gcnretrieval", "run", "custom", "--set", f"data.path={out}"]

    given = CliRunner().invoke(cli, ["prepare", "folder", "--images", str(images), "--table", str(tmp_path / "pairs.csv"),
                                     "--features", "histogram", "--num-test", "5", "--out", str(tmp_path / "five")])
    assert given.exit_code == 0, given.output
    assert "train 15, test 5 pairs;" in given.output
    assert json.loads((tmp_path / "five" / "manifest.json").read_text())["split"]["num_test_source"] == "given"


def test_vgg19_offline_advice_names_the_shipped_efficientnet(tmp_path, monkeypatch):
    from gcnretrieval.features import vgg

    monkeypatch.setattr(vgg, "default_vgg19_weights_path", lambda: tmp_path / "absent.pth")
    with pytest.raises(gcnretrieval.errors.DataError, match="--features efficientnet-lite0"):
        vgg.VGG19Featurizer("imagenet", device="cpu")


# --- the batch size of small training sets -----------------------------------------------


def test_auto_batch_size_gives_small_training_sets_four_steps_an_epoch():
    auto = TrainOptions(batch_size="auto")
    for n in (2, 5, 8, 34, 41, 399, 400, 401, 10_000):
        assert auto.batch_size_for(n) == min(100, max(2, n // 4)), n
    assert TrainOptions(batch_size=32).batch_size_for(41) == 32
    with pytest.raises(ConfigError, match=r"train.batch_size = 100 exceeds the 41 training pairs; use --set "
                                          r"train.batch_size=10 \(or train.batch_size = \"auto\""):
        TrainOptions(batch_size=100).batch_size_for(41)
    with pytest.raises(ConfigError, match="recipe key 'train.batch_size' must be"):
        load_config(_recipe(batch_size="big"))


def test_the_custom_recipe_adapts_its_batch_size(tmp_path):
    config = load_config(CUSTOM, {"data.path": str(tmp_path / "x.npz")})
    assert config.train.batch_size == "auto"
    recipe = _recipe(num_train=50, batch_size="auto", epochs=1)
    result = gcnretrieval.run(recipe, out=tmp_path / "r", progress=False)
    final = json.loads((tmp_path / "r" / "final_metrics.json").read_text())
    # 50 pairs, 10 carved to validation (below): 40 train, batch 10, four steps
    assert final["batch_size"] == 10 and final["steps_trained"] == 4 and result.steps_trained == 4
    assert json.loads((tmp_path / "r" / "config.resolved.json").read_text())["train"]["batch_size"] == "auto"
    assert "batch 10" in (tmp_path / "r" / "report.md").read_text()


# --- a validation split that cannot rank --------------------------------------------------


def test_the_validation_fraction_is_raised_to_ten_pairs_up_to_thirty_percent():
    assert validation_fraction(480, 0.1) == 0.1  # 48 pairs: enough
    assert validation_fraction(48, 0.1) == pytest.approx(10 / 48)
    assert validation_fraction(20, 0.1) == 0.3  # 6 pairs, still fewer than 10: cannot rank
    assert validation_fraction(20, 0.5) == 0.5
    assert cannot_rank(9, 0.5) and cannot_rank(10, 1.0) and cannot_rank(10, 0.99) is None


def test_load_data_carves_enough_validation_pairs_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="gcnretrieval"):
        dataset = load_data(load_config(_recipe(num_train=48)))
    assert (len(dataset.train), len(dataset.val)) == (38, 10)
    assert "eval.val_fraction = 0.1 carves 5 of 48 training pairs, too few to rank epochs; carving 21 %" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gcnretrieval"):
        dataset = load_data(load_config(_recipe(num_train=300)))
    assert len(dataset.val) == 30 and "too few to rank" not in caplog.text


def _script_selection(monkeypatch, scores: list[float]) -> None:
    scores = iter(scores)
    monkeypatch.setattr(Trainer, "evaluate_selection",
                        lambda self: dict.fromkeys(("i2t_map", "t2i_map", "avg_map"), next(scores)))


def test_a_saturated_validation_split_selects_the_last_epoch_and_does_not_stop(tmp_path, monkeypatch):
    _script_selection(monkeypatch, [0.9, 1.0, 1.0, 1.0, 0.98, 1.0])
    recipe = tmp_path / "r.toml"
    recipe.write_text(to_toml(_recipe(epochs=6, patience=2, min_delta=0.001)))
    result = CliRunner().invoke(cli, ["run", str(recipe), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    final = json.loads((tmp_path / "r" / "final_metrics.json").read_text())
    # without the rule: epoch 2 selected, stopped at epoch 4
    assert final["selected_epoch"] == 6 and final["epochs_trained"] == 6 and final["stopped_early_at"] is None
    assert "the selection mAP reached 1" in final["selection_note"] and not final["still_improving"]
    assert "note: the selection mAP reached 1 (perfect ranking)" in result.output
    assert "still improving" not in result.output
    assert "the last epoch is selected and early stopping is off" in (tmp_path / "r" / "report.md").read_text()
    assert "WARNING gcnretrieval.training.callbacks: epoch 2: the selection mAP reached 1" in \
        (tmp_path / "r" / "train.log").read_text()


def test_a_shipped_validation_split_too_small_to_rank_selects_the_last_epoch(tmp_path, monkeypatch):
    _script_selection(monkeypatch, [0.5, 0.6, 0.4, 0.3])
    result = gcnretrieval.run(_recipe(num_val=6, epochs=4, patience=1), out=tmp_path / "r", progress=False)
    assert len(result.history) == 4 and result.selected_epoch == 4
    assert result.selection_note.startswith("the selection split holds 6 pairs, fewer than 10")
    assert [row["selected"] for row in result.history] == [True] * 4


def test_a_split_that_ranks_keeps_selection_and_early_stopping(tmp_path, monkeypatch):
    _script_selection(monkeypatch, [0.5, 0.6, 0.4, 0.3])
    result = gcnretrieval.run(_recipe(epochs=4, patience=1), out=tmp_path / "r", progress=False)
    assert len(result.history) == 3 and result.selected_epoch == 2 and result.selection_note is None


# --- plugins beside the recipe or in the working directory --------------------------------


PLUGIN = ("from gcnretrieval.encoders import register_encoder\n"
          "from gcnretrieval.encoders.gcn import GCN\n\n\n"
          "@register_encoder({name!r})\n"
          "class Plugged(GCN):\n"
          "    pass\n")


@pytest.fixture
def clean_path(monkeypatch):
    """``sys.path`` without the working directory (as under the ``gcnretrieval`` console script)."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(Path.cwd()))])
    return monkeypatch


@pytest.mark.parametrize("where", ["beside the recipe", "in the working directory"])
def test_a_plugin_module_is_found_beside_the_recipe_or_in_the_cwd(tmp_path, clean_path, where):
    module = f"own_plugin_{where.split()[-1]}"
    encoder = f"plugged_{where.split()[-1]}"
    recipes, work = tmp_path / "recipes", tmp_path / "work"
    recipes.mkdir()
    work.mkdir()
    (recipes if where == "beside the recipe" else work).joinpath(f"{module}.py").write_text(PLUGIN.format(name=encoder))
    recipe = recipes / "mine.toml"
    recipe.write_text(f'plugins = ["{module}"]\n' + to_toml(_recipe(epochs=1)).replace('name = "l2gcn"', f'name = "{encoder}"'))
    clean_path.chdir(work)
    clean_path.delitem(sys.modules, module, raising=False)
    path_before = list(sys.path)
    result = CliRunner().invoke(cli, ["run", str(recipe), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert sys.path == path_before  # the folders are searched, not left on sys.path
    assert f"training {encoder} on" in (tmp_path / "r" / "train.log").read_text()
    assert Path(sys.modules.pop(module).__file__).parent == (recipes if where == "beside the recipe" else work)



def test_a_recipe_folder_is_searched_for_that_recipe_only(tmp_path, clean_path):
    recipes, work = tmp_path / "recipes", tmp_path / "work"
    recipes.mkdir()
    work.mkdir()
    (recipes / "only_beside_xyz.py").write_text("IMPORTED = True\n")
    recipe = recipes / "mine.toml"
    recipe.write_text(to_toml({**_recipe(epochs=1), "plugins": ["only_beside_xyz"]}))
    clean_path.chdir(work)
    clean_path.delitem(sys.modules, "only_beside_xyz", raising=False)
    assert load_config(recipe).plugins == ("only_beside_xyz",)
    sys.modules.pop("only_beside_xyz")
    with pytest.raises(ConfigError, match=f"neither installed nor a module in {work}; install it"):
        load_config({**_recipe(), "plugins": ["only_beside_xyz"]})  # a dict: the working directory only
    cell = Recipe.of(recipe).with_tree({**_recipe(epochs=2), "plugins": ["only_beside_xyz"]})
    assert cell.source is None and cell.config.plugins == ("only_beside_xyz",)  # a preset laid over it: its folder
    sys.modules.pop("only_beside_xyz")

def test_a_missing_plugin_names_where_it_was_looked_for(tmp_path, clean_path):
    clean_path.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"cannot import plugin 'no_such_plugin_xyz'.*neither installed nor a module in"):
        load_config({**_recipe(), "plugins": ["no_such_plugin_xyz"]})
    (tmp_path / "broken_plugin_xyz.py").write_text("import no_such_dependency_xyz\n")
    clean_path.delitem(sys.modules, "broken_plugin_xyz", raising=False)
    with pytest.raises(ConfigError, match="no_such_dependency_xyz"):
        load_config({**_recipe(), "plugins": ["broken_plugin_xyz"]})


# --- small wordings ------------------------------------------------------------------------


def test_graph_of_the_bundled_dataset_counts_its_training_labels():
    result = CliRunner().invoke(cli, ["graph", "mirflickr-mini"])
    assert result.exit_code == 0, result.output
    labels = np.asarray(load_bundled("mirflickr-mini").train.labels)
    n, c = labels.shape
    # reference: an edge j -> i when P(i | j) = N_ij / N_jj >= 0.4, i != j, counted with loops
    edges = 0
    for i in range(c):
        for j in range(c):
            both = sum(1 for r in range(n) if labels[r, i] and labels[r, j])
            alone = sum(1 for r in range(n) if labels[r, j])
            edges += i != j and both / alone >= 0.4
    assert f"label graph: mirflickr-mini, cooccurrence, threshold 0.4 (counts over {n} training pairs)" in result.output
    assert f"nodes: {c}" in result.output and f"edges: {edges} directed" in result.output


def test_a_warning_is_one_line_once_per_command(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(to_toml(_recipe(epochs=2)).replace('name = "l2gcn"', 'name = "none"'))
    result = CliRunner().invoke(cli, ["compare", str(recipe), "--encoders", "none", "--seeds", "0,1",
                                      "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "ignores edge weights" in line]
    assert lines == ["warning: encoder 'none' ignores edge weights and edges: it is the no-label-graph baseline"]
    assert "UserWarning" not in result.output and "forward_call" not in result.output
    text = (tmp_path / "c" / "compare.md").read_text()
    assert "over seeds 0, 1." in text


def test_a_summary_of_one_seed_says_seed_not_seeds(tmp_path):
    from gcnretrieval.experiments.summary import write_summary

    for seeds, wording in (([3], "Test mAP@all of seed 3 (one seed: no standard deviation)."),
                           ([0, 2], "Test mAP@all, mean ± sample standard deviation over seeds 0, 2.")):
        write_summary(tmp_path, "s", "T", {"seeds": seeds}, [], ["method"], "table", [])
        text = (tmp_path / "s.md").read_text()
        assert wording in text and (len(seeds) > 1 or "over seeds" not in text)


def test_an_unknown_graph_name_lists_the_bundled_dataset_too():
    result = CliRunner().invoke(cli, ["graph", "mirflickr-min"])
    assert result.exit_code == 2
    assert "unknown label graph 'mirflickr-min' — did you mean 'mirflickr-mini'? choices: mirflickr, mirflickr-mini, " \
           "mscoco, nuswide, voc" in result.output
