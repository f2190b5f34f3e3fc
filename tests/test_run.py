"""Runs end to end: the run directory, resume, evaluate, and bad input failing cleanly."""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from damage import flip_member_byte, truncate

import gcnretrieval
from gcnretrieval.cli import cli
from gcnretrieval.config import load_config, parse_overrides
from gcnretrieval.errors import ConfigError, GcnRetrievalError, RunFailed
from gcnretrieval.training import Trainer, build_experiment, build_label_graph_for, resolve_device

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "synthetic.toml"
BUNDLED_DEMO = Path(__file__).resolve().parents[1] / "recipes" / "demo.toml"

# keeps a demo run to a second or two on two CPU cores
TINY = [
    "data.synthetic.num_train=150",
    "data.synthetic.num_test=40",
    "data.synthetic.num_labels=6",
    "data.synthetic.image_dim=32",
    "data.synthetic.text_dim=24",
    "graph.node_feature_dim=16",
    "model.common_dim=32",
    "encoder.num_layers=2",
    "train.batch_size=32",
    "train.epochs=1",
]
RUN_FILES = [
    "recipe.toml",
    "config.resolved.json",
    "environment.json",
    "train.log",
    "metrics.jsonl",
    "final_metrics.json",
    "checkpoints/best.pt",
    "figures/loss.png",
    "figures/map.png",
    "report.md",
]


def _sets(*items: str) -> list[str]:
    args = []
    for item in items:
        args += ["--set", item]
    return args


def _cli(args: list[str]):
    """``gcnretrieval ARGS`` through click's CliRunner."""
    return CliRunner().invoke(cli, args)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "demo"
    result = _cli(["run", str(DEMO), "--out", str(out), *_sets(*TINY)])
    return out, result


def test_cli_run_writes_every_file(demo_run):
    out, result = demo_run
    assert result.exit_code == 0, result.output
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    # a finished run keeps the selected weights only: no resume state, no lock
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt"]
    assert not (out / ".lock").exists()
    assert f"run directory: {out}" in result.output
    assert "test mAP" in result.output

    assert (out / "recipe.toml").read_bytes() == DEMO.read_bytes()
    resolved = json.loads((out / "config.resolved.json").read_text())
    assert resolved["run"]["seed"] == 103
    assert resolved["train"]["epochs"] == 1 and resolved["data"]["synthetic"]["num_train"] == 150
    env = json.loads((out / "environment.json").read_text())
    assert {"python", "torch", "torch_geometric", "numpy", "device"} <= set(env)

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1]
    for key in ("loss_total", "loss_circle", "loss_soft", "loss_circle_soft", "loss_classification",
                "loss_adversarial", "lambda", "val_i2t_map", "val_t2i_map", "val_avg_map", "seconds"):
        assert isinstance(rows[0][key], float) and math.isfinite(rows[0][key]), key
    assert 0.0 <= rows[0]["lambda"] <= 1.0

    final = json.loads((out / "final_metrics.json").read_text())
    assert final["selected_epoch"] == 1 and final["selected_on"] == "val"
    assert set(final["test"]) == {"i2t_map", "t2i_map", "avg_map"}
    assert final["test"]["avg_map"] == pytest.approx((final["test"]["i2t_map"] + final["test"]["t2i_map"]) / 2)
    assert f"{final['test']['avg_map']:.4f}" in result.output
    assert "epoch 1" in (out / "train.log").read_text()
    assert (out / "figures" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shipped_demo_recipe_runs_one_epoch_on_the_bundled_dataset(tmp_path):
    out = tmp_path / "demo"
    result = _cli(["run", str(BUNDLED_DEMO), "--out", str(out), "--set", "train.epochs=1"])
    assert result.exit_code == 0, result.output
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    resolved = json.loads((out / "config.resolved.json").read_text())
    assert resolved["data"]["dataset"] == "mirflickr-mini" and resolved["train"]["epochs"] == 1
    final = json.loads((out / "final_metrics.json").read_text())
    assert final["selected_epoch"] == 1
    assert all(0.0 < value <= 1.0 for value in final["test"].values())


def test_checkpoints_load_with_weights_only(demo_run, tmp_path):
    out, _ = demo_run
    best = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == 1 and best["best_epoch"] == 1
    assert {"model", "objective"} <= set(best) and not {"optimizer", "rng", "history"} & set(best)
    assert "circle_soft.lambda_raw" in best["objective"]
    kept = gcnretrieval.run(DEMO, _overrides("train.keep_last_checkpoint=true"), out=tmp_path / "kept").run_dir
    state = torch.load(kept / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert {"model", "objective", "optimizer", "rng"} <= set(state)
    assert isinstance(state["rng"]["torch"], torch.Tensor)
    assert {"state", "param_groups"} <= set(state["optimizer"])
    best = torch.load(kept / "checkpoints" / "best.pt", weights_only=True)
    for key, value in best["model"].items():
        assert torch.equal(value, state["model"][key]), key


def test_lambda_is_in_the_optimizer():
    config = load_config(DEMO, parse_overrides(TINY))
    trainer = Trainer(build_experiment(config, device="cpu"))
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in optimised for p in trainer.objective.parameters())
    assert len(list(trainer.objective.parameters())) >= 1
    before = float(trainer.objective.weight.detach())
    trainer.train_epoch()
    assert float(trainer.objective.weight.detach()) != before


def test_existing_run_directory_is_not_overwritten(demo_run, main):
    out, _ = demo_run
    before = _snapshot(out)
    code, stdout, stderr = main(["run", str(DEMO), "--out", str(out), *_sets(*TINY)])
    assert code == 2 and stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: run directory")
    assert "--resume" in lines[0]
    assert _snapshot(out) == before


def test_evaluate_matches_final_metrics(demo_run):
    out, _ = demo_run
    final = json.loads((out / "final_metrics.json").read_text())
    result = _cli(["evaluate", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "evaluation_best.json").read_text())
    assert written["test"] == pytest.approx(final["test"], abs=1e-9)
    assert f"{final['test']['avg_map']:.4f}" in result.output
    with pytest.raises(ConfigError, match="kept only its selected weights .* train.keep_last_checkpoint = true"):
        gcnretrieval.evaluate(out, checkpoint="last")
    with pytest.raises(ConfigError, match="checkpoint must be one of best, last"):
        gcnretrieval.evaluate(out, checkpoint="first")


def test_evaluate_needs_a_run_directory(tmp_path, main):
    code, _, stderr = main(["evaluate", str(tmp_path)])
    assert code == 2
    assert stderr.splitlines() == [f"error: {tmp_path} is not a run directory (no config.resolved.json); "
                                                  "give the folder `gcnretrieval run` wrote"]


def _overrides(*extra: str) -> dict:
    return parse_overrides([*TINY, *extra])


def test_resume_equals_an_uninterrupted_run(tmp_path):
    deterministic = _overrides("train.deterministic=true", "train.epochs=2")
    deterministic["train.keep_last_checkpoint"] = True  # a finished run that can be extended
    straight = gcnretrieval.run(DEMO, deterministic, out=tmp_path / "straight")
    first = gcnretrieval.run(DEMO, {**deterministic, "train.epochs": 1}, out=tmp_path / "resumed")
    assert len(first.history) == 1
    resumed = gcnretrieval.run(DEMO, deterministic, out=tmp_path / "resumed", resume=True)

    def strip(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert len(straight.history) == 2
    assert strip(resumed.history) == strip(straight.history)
    assert resumed.test == straight.test
    assert resumed.selected_epoch == straight.selected_epoch
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert torch.equal(a["objective"]["circle_soft.lambda_raw"], b["objective"]["circle_soft.lambda_raw"])
    assert json.loads((tmp_path / "resumed" / "config.resolved.json").read_text())["train"]["epochs"] == 2


def test_resume_refuses_other_changes(tmp_path):
    gcnretrieval.run(DEMO, _overrides("train.keep_last_checkpoint=true"), out=tmp_path / "r")
    with pytest.raises(ConfigError, match="it was run with 'train.lr' = 0.001 but now asks for 0.01; only train.epochs, train.device "
                                          "and train.keep_last_checkpoint may change"):
        gcnretrieval.run(DEMO, _overrides("train.lr=1e-2"), out=tmp_path / "r", resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        gcnretrieval.run(DEMO, _overrides(), out=tmp_path / "none", resume=True)
    assert not (tmp_path / "none").exists()


def test_a_finished_run_without_its_resume_state_says_how_to_keep_it(tmp_path, main):
    gcnretrieval.run(DEMO, _overrides(), out=tmp_path / "r", progress=False)
    before = _snapshot(tmp_path / "r")
    code, stdout, stderr = main(["run", str(DEMO), "--out", str(tmp_path / "r"), "--resume",
                                 *_sets(*TINY, "train.epochs=2")])
    assert code == 2 and stdout == ""
    assert stderr.splitlines() == [f"error: {tmp_path / 'r'} has finished and did not keep its resume state "
                                   "(checkpoints/last.pt); start a new run (runs that should stay extendable: "
                                   "--set train.keep_last_checkpoint=true)"]
    assert _snapshot(tmp_path / "r") == before


def test_library_run_with_dict_recipe_and_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = load_config(DEMO, parse_overrides(TINY)).to_dict()
    del recipe["run"]["seed"]  # drawn at random and recorded
    result = gcnretrieval.run(recipe, {"train.epochs": 2, "train.batch_size": 50}, name="lib")
    assert result.run_dir == Path("runs") / "lib"
    assert [row["epoch"] for row in result.history] == [1, 2]
    resolved = json.loads((result.run_dir / "config.resolved.json").read_text())
    assert isinstance(resolved["run"]["seed"], int)
    assert resolved["train"]["batch_size"] == 50 and resolved["run"]["name"] == "lib"
    assert load_config(result.run_dir / "recipe.toml").train.epochs == 1  # the recipe as given
    assert result.to_dict()["test"] == json.loads((result.run_dir / "final_metrics.json").read_text())["test"]


def test_select_on_test_is_recorded(tmp_path):
    result = gcnretrieval.run(DEMO, _overrides("eval.select_on=test"), out=tmp_path / "t")
    final = json.loads((tmp_path / "t" / "final_metrics.json").read_text())
    assert final["selected_on"] == "test" and result.selected_on == "test"
    assert "test_avg_map" in result.history[0]
    assert "parity" in (tmp_path / "t" / "report.md").read_text()


def test_drop_edges_keeps_only_self_loops():
    from gcnretrieval.data import make_synthetic

    dataset = make_synthetic(num_train=200, num_test=20, num_labels=8, image_dim=8, text_dim=8, seed=0)
    full = build_label_graph_for(load_config({"data": {"source": "synthetic"}, "run": {"seed": 0}}), dataset)
    bare = build_label_graph_for(load_config({"data": {"source": "synthetic"}, "run": {"seed": 0},
                                              "graph": {"drop_edges": True}}), dataset)
    loops = full.edge_index[0] == full.edge_index[1]
    assert int((~loops).sum()) > 0
    assert torch.equal(bare.edge_index, full.edge_index[:, loops])
    assert torch.equal(bare.x, full.x)
    assert bool((bare.edge_index[0] == bare.edge_index[1]).all())


@pytest.mark.parametrize("num_train, drop_last, expected", [(97, False, [32, 32, 32]), (98, False, [32, 32, 32, 2]),
                                                            (98, True, [32, 32, 32]), (96, False, [32, 32, 32])])
def test_batches_never_hold_a_single_pair(num_train, drop_last, expected):
    config = load_config(DEMO, _overrides(f"data.synthetic.num_train={num_train}", f"train.drop_last={str(drop_last).lower()}",
                                          "eval.select_on=test"))
    trainer = Trainer(build_experiment(config, device="cpu"))
    batches = list(trainer.loader.sampler)
    assert [len(b) for b in batches] == expected and len(trainer.loader) == len(expected)
    seen = [i for batch in batches for i in batch]
    assert len(set(seen)) == len(seen)
    trainer.sampler.set_epoch(1)  # each epoch draws another order of the same pairs
    assert list(trainer.loader.sampler) != batches


# --- bad input: one line, exit code 2, no run directory ----------------------------------


def _write_npz(path: Path, **changes) -> Path:
    rng = np.random.default_rng(0)
    n_train, n_test, dv, dt, c = 60, 20, 12, 10, 4
    labels = lambda n: (np.arange(n)[:, None] % c == np.arange(c)[None, :]).astype(np.float32)  # noqa: E731
    arrays = {
        "img_train": rng.random((n_train, dv), dtype=np.float32),
        "txt_train": rng.random((n_train, dt), dtype=np.float32),
        "lab_train": labels(n_train),
        "img_test": rng.random((n_test, dv), dtype=np.float32),
        "txt_test": rng.random((n_test, dt), dtype=np.float32),
        "lab_test": labels(n_test),
    }
    for key, change in changes.items():
        arrays[key] = change(arrays[key])
    np.savez(path, **arrays)
    return path


def _recipe(tmp_path: Path, data_path: Path, extra: str = "") -> Path:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f'[run]\nname = "bad"\nseed = 1\n[data]\npath = "{data_path.as_posix()}"\n'
        '[graph]\nnode_features = "random"\nnode_feature_dim = 8\n'
        "[model]\ncommon_dim = 16\n[encoder]\nnum_layers = 2\n[train]\nepochs = 1\nbatch_size = 16\n" + extra
    )
    return recipe


def _with_nan(a):
    a = a.copy()
    a[3, 2] = np.nan
    return a


def _zero_row(a):
    a = a.copy()
    a[5] = 0
    return a


BAD_INPUTS = {
    "unknown recipe key": ({}, ["train.epoch=2"], "unknown key 'train.epoch' — did you mean 'train.epochs'?"),
    "wrong value type": ({}, ['train.epochs="two"'], "recipe key 'train.epochs' must be an integer"),
    "impossible value": ({}, ["loss.theta=2"], "recipe key 'loss.theta' must be in [0, 1]"),
    "missing data file": (None, [], "does not exist"),
    "image/text row counts differ": ({"txt_train": lambda a: a[:-1]}, [], "image rows"),
    "train/test dimension mismatch": ({"img_test": lambda a: a[:, :-1]}, [], "image feature dimension differs"),
    "label row of all zeros": ({"lab_train": _zero_row}, [], "without any label"),
    "NaN in features": ({"img_train": _with_nan}, [], "NaN"),
    "batch larger than the training set": ({}, ["train.batch_size=500"], "exceeds the 50 training pairs left after carving the validation split; use --set train.batch_size=12"),
    "unknown encoder": ({}, ["encoder.name=gcm"], "unknown encoder 'gcm' — did you mean 'gcn'?"),
    "unknown encoder option": ({}, ["encoder.dropuot=0.1"], "unknown key 'encoder.dropuot' of encoder 'l2gcn'"),
    "key the options ignore": ({}, ["graph.vocabulary=mirflickr"], "recipe key 'graph.vocabulary' has no effect"),
    "impossible encoder value": ({}, ["encoder.dropout=1.5"], "recipe key 'encoder.dropout' must be in [0, 1)"),
    "impossible model value": ({}, ["model.common_dim=0"], "recipe key 'model.common_dim' must be at least 1"),
    "unknown synthetic option": ({}, ["data.source=synthetic", "data.synthetic.num_trian=10"],
                                 "unknown key 'data.synthetic.num_trian' — did you mean 'data.synthetic.num_train'?"),
    "missing plugin": ({}, ['plugins=["no_such_module_xyz"]'], "cannot import plugin 'no_such_module_xyz'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_cleanly(tmp_path, case, main):
    changes, sets, fragment = BAD_INPUTS[case]
    data = tmp_path / "missing.npz" if changes is None else _write_npz(tmp_path / "data.npz", **changes)
    recipe = _recipe(tmp_path, data)
    runs = tmp_path / "runs"
    code, stdout, stderr = main(["run", str(recipe), "--out", str(runs / "bad"), *_sets(*sets)])
    assert code == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and stdout == "", stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert not runs.exists() or list(runs.iterdir()) == []


def _npy_dir_with_truncated_file(tmp_path: Path) -> tuple[Path, Path]:
    from gcnretrieval.data import load_npz, save_npy_dir

    folder = save_npy_dir(load_npz(_write_npz(tmp_path / "data.npz")), tmp_path / "npy")
    return folder, truncate(folder / "img_train.npy", 0.9)


def _mat_dir_with_text_file(tmp_path: Path) -> tuple[Path, Path]:
    import scipy.io

    with np.load(_write_npz(tmp_path / "data.npz")) as archive:
        arrays = {key: archive[key] for key in archive.files}
    folder = tmp_path / "mat"
    folder.mkdir()
    for key, array in arrays.items():
        modality, split = key.split("_")
        scipy.io.savemat(folder / f"{split}_{modality}.mat", {f"{split}_{modality}": array})
    text = folder / "train_img.mat"
    text.write_text("38 bytes of text, not a MATLAB file..\n")
    return folder, text


DAMAGED_DATA = {  # tmp_path -> (data path for the recipe, the damaged file the error names)
    "truncated .npz": lambda tmp: (truncate(_write_npz(tmp / "data.npz")),) * 2,
    ".npz member with a bad CRC": lambda tmp: (flip_member_byte(_write_npz(tmp / "data.npz"), "txt_test.npy"),) * 2,
    "truncated memory-mapped .npy": _npy_dir_with_truncated_file,
    "text file named .mat": _mat_dir_with_text_file,
}


@pytest.mark.parametrize("case", list(DAMAGED_DATA))
def test_damaged_data_file_fails_in_one_line(tmp_path, case, main):
    data, damaged = DAMAGED_DATA[case](tmp_path)
    runs = tmp_path / "runs"
    code, stdout, stderr = main(["run", str(_recipe(tmp_path, data)), "--out", str(runs / "bad")])
    assert code == 2 and stdout == "", stderr
    assert stderr.splitlines() == [stderr.rstrip("\n")], stderr
    assert stderr.startswith(f"error: {damaged} is not a readable "), stderr
    assert not runs.exists() or list(runs.iterdir()) == []


def test_binary_word_vector_file_fails_in_one_line(tmp_path, main):
    vectors = tmp_path / "vectors.txt"
    vectors.write_bytes(bytes(range(256)))
    recipe = _recipe(tmp_path, _write_npz(tmp_path / "data.npz"))
    graph = '[graph]\nnode_features = "random"\nnode_feature_dim = 8\n'
    assert graph in recipe.read_text()
    recipe.write_text(recipe.read_text().replace(
        graph, f'[graph]\nnode_features = "glove"\nword_vectors = "{vectors.as_posix()}"\n'))
    code, stdout, stderr = main(["run", str(recipe), "--out", str(tmp_path / "runs" / "bad")])
    assert code == 2 and stdout == ""
    assert stderr.splitlines() == [f"error: {vectors} is not a readable GloVe text file (UnicodeDecodeError: 'utf-8' "
                                   "codec can't decode byte 0x80 in position 128: invalid start byte); give a UTF-8 "
                                   "text file with one 'word v1 v2 ...' per line"]
    assert not (tmp_path / "runs").exists()


def test_binary_recipe_fails_in_one_line(tmp_path, main):
    recipe = tmp_path / "recipe.toml"
    recipe.write_bytes(bytes(range(256)))
    code, stdout, stderr = main(["run", str(recipe), "--out", str(tmp_path / "runs" / "bad")])
    assert code == 2 and stdout == ""
    assert stderr.splitlines() == [f"error: {recipe} is not a readable TOML recipe (UnicodeDecodeError: 'utf-8' codec "
                                   "can't decode byte 0x80 in position 128: invalid start byte); write the recipe as "
                                   "UTF-8 TOML (see recipes/README.md)"]
    assert not (tmp_path / "runs").exists()


def test_bad_input_raises_user_errors_from_the_library(tmp_path):
    data = _write_npz(tmp_path / "data.npz", lab_train=_zero_row)
    with pytest.raises(GcnRetrievalError, match="without any label"):
        gcnretrieval.run(_recipe(tmp_path, data), out=tmp_path / "runs" / "x")
    assert not (tmp_path / "runs").exists()


def test_good_npz_recipe_runs(tmp_path):
    data = _write_npz(tmp_path / "data.npz")
    result = _cli(["run", str(_recipe(tmp_path, data)), "--out", str(tmp_path / "runs" / "ok")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "ok" / "final_metrics.json").is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ok"]  # no temporary leftovers


def test_recipe_plugins_register_encoders_before_the_model_is_built(tmp_path, monkeypatch):
    plugin = tmp_path / "plugin_pkg"
    plugin.mkdir()
    (plugin / "__init__.py").write_text(
        "from gcnretrieval.encoders import register_encoder\n"
        "from gcnretrieval.encoders.gcn import GCN\n\n\n"
        "@register_encoder('run_test_plugin_gcn')\n"
        "class PluginGCN(GCN):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    overrides = _overrides("encoder.name=run_test_plugin_gcn", 'plugins=["plugin_pkg"]')
    result = gcnretrieval.run(DEMO, overrides, out=tmp_path / "plugged")
    assert result.config.plugins == ("plugin_pkg",)
    assert "training run_test_plugin_gcn on" in (tmp_path / "plugged" / "train.log").read_text()
    assert "run_test_plugin_gcn" in gcnretrieval.available_encoders()


def test_catalog_recipe_uses_the_shipped_word_vectors(tmp_path):
    from gcnretrieval.graphs import load_label_vocabulary

    c = 24
    rng = np.random.default_rng(1)

    def labels(n):
        y = (np.arange(n)[:, None] % c == np.arange(c)[None, :]).astype(np.float32)
        y[:, 0] = 1.0  # label 0 co-occurs with every other label
        return y

    np.savez(tmp_path / "mir.npz", img_train=rng.random((96, 12), dtype=np.float32),
             txt_train=rng.random((96, 10), dtype=np.float32), lab_train=labels(96),
             img_test=rng.random((24, 12), dtype=np.float32), txt_test=rng.random((24, 10), dtype=np.float32),
             lab_test=labels(24))
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "mirflickr_l2gcn.toml"
    overrides = {"data.path": str(tmp_path / "mir.npz"), "model.common_dim": 16, "encoder.num_layers": 2,
                 "train.batch_size": 16, "train.epochs": 1, "eval.select_on": "test"}
    experiment = build_experiment(load_config(recipe, {**overrides, "run.seed": 0}), device="cpu")
    vocabulary = load_label_vocabulary("mirflickr")
    assert experiment.dataset.label_names == vocabulary.label_names
    assert torch.equal(experiment.graph.x, torch.tensor(vocabulary.node_features))
    # label 0 (in every training pair) implies nothing, but every label implies it: edges j -> 0
    src, dst = experiment.graph.edge_index
    assert sorted(src[(dst == 0) & (src != 0)].tolist()) == list(range(1, c))

    result = gcnretrieval.run(recipe, overrides, out=tmp_path / "mir")
    resolved = json.loads((tmp_path / "mir" / "config.resolved.json").read_text())
    assert resolved["data"]["path"] == str((tmp_path / "mir.npz").resolve())
    assert 0.0 <= result.test["avg_map"] <= 1.0


def test_unavailable_devices_fail_in_one_line(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device 'cuda:0' requested but CUDA is not available here"):
        resolve_device("cuda:0")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="device 'mps' requested but MPS is not available here"):
        resolve_device("mps")


def test_a_dataset_name_outside_the_catalog_needs_a_path_and_an_experiment_needs_a_seed():
    with pytest.raises(ConfigError, match="data.dataset = 'flickr' is not a catalog dataset \\(.*\\); give data.path"):
        build_experiment(load_config({"run": {"seed": 0}, "data": {"dataset": "flickr"}}))
    with pytest.raises(ValueError, match="build_experiment needs run.seed"):
        build_experiment(load_config({"data": {"source": "synthetic"}}))


def test_a_run_without_its_weights_or_with_an_unreadable_configuration_says_so(tmp_path):
    out = tmp_path / "r"
    gcnretrieval.run(DEMO, _overrides("train.keep_last_checkpoint=true"), out=out)
    (out / "checkpoints" / "best.pt").unlink()
    with pytest.raises(ConfigError, match="checkpoint .*best.pt does not exist; train first with `gcnretrieval run`"):
        gcnretrieval.evaluate(out)
    config = json.loads((out / "config.resolved.json").read_text())
    (out / "config.resolved.json").write_text(json.dumps({**config, "train": {**config["train"], "epochz": 1}}))
    with pytest.raises(ConfigError, match="has a configuration this version cannot read \\(unknown key 'train.epochz'.*"
                                          "; use the gcnretrieval version its environment.json names, or train into a new folder"):
        gcnretrieval.evaluate(out, checkpoint="last")


def _moved(before: dict[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    return [name for name, p in module.named_parameters() if not torch.equal(before[name], p.detach())]


@pytest.mark.parametrize("encoder", gcnretrieval.available_encoders())
def test_every_registered_encoder_trains_one_epoch(encoder):
    config = load_config(DEMO, _overrides(f"encoder.name={encoder}", "eval.select_on=test"))
    trainer = Trainer(build_experiment(config, device="cpu"))
    encoder_module = trainer.model.label_encoder
    before = {name: p.detach().clone() for name, p in encoder_module.named_parameters()}
    history = trainer.fit()
    assert len(history) == 1 and math.isfinite(history[0]["loss_total"])
    # the encoder is trained: every one of its parameters received a gradient and moved
    assert sorted(_moved(before, encoder_module)) == sorted(before)


@pytest.mark.parametrize("kind", ["embedding", "adaptive"])
def test_other_graph_kinds_train(kind):
    config = load_config(DEMO, _overrides(f"graph.kind={kind}", "graph.threshold=0.05", "eval.select_on=test"))
    experiment = build_experiment(config, device="cpu")
    graph = experiment.model.label_graph
    before = {name: p.detach().clone() for name, p in graph.named_parameters()}
    trainer = Trainer(experiment)
    assert len(trainer.fit()) == 1
    if kind == "adaptive":  # the learned graph's parameters are trained and checkpointed
        assert before and sorted(_moved(before, graph)) == sorted(before)
        assert any(name.startswith("label_graph.") for name in trainer.state_dict()["model"])
    else:
        assert not before


# --- failures: one line, and nothing or a resumable directory left behind ---------------


def test_a_diverging_run_fails_in_one_line_and_leaves_nothing(tmp_path, main):
    runs = tmp_path / "runs"
    code, stdout, stderr = main(["run", str(DEMO), "--out", str(runs / "lr"), *_sets(*TINY, "train.lr=1e6")])
    assert code == 1 and stdout == ""
    assert stderr.splitlines() == [stderr.strip()], stderr  # no warnings before the error
    assert stderr.startswith("error: the training loss became non-finite at epoch 1, batch ")
    assert "lower train.lr" in stderr
    assert not runs.exists() or list(runs.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated", "text"])
def test_a_corrupt_checkpoint_fails_in_one_line_with_exit_1(demo_run, tmp_path, main, damage):
    import shutil

    out = Path(shutil.copytree(demo_run[0], tmp_path / "run"))
    (out / "evaluation_best.json").unlink(missing_ok=True)  # written by an earlier evaluate of the demo run
    best = out / "checkpoints" / "best.pt"
    if damage == "truncated":
        truncate(best)
    else:
        best.write_text("not a checkpoint")
    code, stdout, stderr = main(["evaluate", str(out)])
    assert code == 1 and stdout == ""
    assert stderr.splitlines() == [stderr.rstrip("\n")], stderr
    assert stderr.startswith(f"error: {best} is not a readable gcnretrieval checkpoint ("), stderr
    assert stderr.rstrip("\n").endswith("); train again into a new run directory"), stderr
    with pytest.raises(RunFailed, match="is not a readable gcnretrieval checkpoint"):
        gcnretrieval.evaluate(out)
    assert not (out / "evaluation_best.json").exists()


def test_a_run_failing_after_an_epoch_leaves_a_resumable_directory(tmp_path, monkeypatch):
    original = Trainer.train_epoch

    def fail_in_epoch_two(self, callbacks=()):
        if self.epoch == 1:
            raise RunFailed("stopped in epoch 2")
        return original(self, callbacks)

    monkeypatch.setattr(Trainer, "train_epoch", fail_in_epoch_two)
    with pytest.raises(RunFailed):
        gcnretrieval.run(DEMO, _overrides("train.epochs=2"), out=tmp_path / "r")
    assert torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = gcnretrieval.run(DEMO, _overrides("train.epochs=2"), out=tmp_path / "r", resume=True)
    assert [row["epoch"] for row in resumed.history] == [1, 2]


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_run_directories_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        gcnretrieval.run(DEMO, _overrides(), out=tmp_path / "r")
    finally:
        os.umask(previous)
    paths = [tmp_path / "r", *(tmp_path / "r").rglob("*")]
    for path in paths:
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_an_empty_out_directory_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    result = gcnretrieval.run(DEMO, _overrides(), out=tmp_path / "empty")
    assert (tmp_path / "empty" / "final_metrics.json").is_file() and result.run_dir == tmp_path / "empty"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no staging folder left
