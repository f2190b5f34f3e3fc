"""`sweep`: grid parsing, early validation, cartesian product, tables and plots."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gcnretrieval.cli import cli
from gcnretrieval.errors import ConfigError, GcnRetrievalError
from gcnretrieval.experiments import parse_grid, sweep
from gcnretrieval.experiments.sweep import check_grid

from test_experiments_compare import TINY


def test_parse_grid_reads_values_as_toml():
    grid = parse_grid(["encoder.num_layers=1,2,3", "loss.condition=all,no_cla", "train.betas=[0.5,0.999],[0.9,0.99]",
                       "graph.kind=\"embedding\",cooccurrence", "loss.alpha=0.5, 1e-1"])
    assert grid == {"encoder.num_layers": [1, 2, 3], "loss.condition": ["all", "no_cla"],
                    "train.betas": [[0.5, 0.999], [0.9, 0.99]], "graph.kind": ["embedding", "cooccurrence"],
                    "loss.alpha": [0.5, 0.1]}


@pytest.mark.parametrize("grid, fragment", [
    (["encoder.num_layers"], "is not key=v1,v2,...; write e.g. --grid encoder.num_layers=1,2,3"),
    (["encoder.num_layers="], "lists no values"),
    (["encoder.num_layers=1,,2"], "has an empty value"),
    (["loss.alpha=1", "loss.alpha=2"], "names 'loss.alpha' twice"),
    (["loss.alpha=[1,2"], "is not a valid TOML value"),
    ([], "no --grid given"),
])
def test_malformed_grid_is_one_clear_error(grid, fragment):
    with pytest.raises(ConfigError) as info:
        check_grid(parse_grid(grid))
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("grid, fragment", [
    (["encoder.num_layer=1,2"], "unknown key 'encoder.num_layer' of encoder 'l2gcn' — did you mean 'encoder.num_layers'?"),
    (["loss.theta=0.5,1.5"], "recipe key 'loss.theta' must be in [0, 1], got 1.5"),
    (["encoder.name=gcn,gcm"], "did you mean 'gcn'"),
    (["run.seed=1,2"], "cannot sweep 'run.seed'"),
])
def test_bad_grid_keys_and_values_fail_before_anything_runs(tmp_path, grid, fragment):
    with pytest.raises(GcnRetrievalError) as info:
        sweep(TINY, parse_grid(grid), seeds=[0], out=tmp_path / "s")
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "s").exists()



@pytest.mark.parametrize("recipe, seeds, overrides, fragment", [
    (TINY, [0], {"loss.alpha": 3.0}, "'loss.alpha' is both swept (--grid) and set (--set); keep one"),
    ({**TINY, "run": {"name": "tiny"}}, None, None, "the recipe has no run.seed; give the seeds explicitly"),
    (TINY, [-1], None, "seeds must be non-negative integers (e.g. --seeds 0,1,2), got -1"),
    (TINY, [], None, "no seeds given; write e.g. --seeds 0,1,2"),
])
def test_bad_seeds_and_overrides_fail_before_anything_runs(tmp_path, recipe, seeds, overrides, fragment):
    with pytest.raises(ConfigError) as info:
        sweep(recipe, {"loss.alpha": [1.0, 2.0]}, seeds=seeds, overrides=overrides, out=tmp_path / "s")
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "s").exists()

def test_two_key_sweep_runs_the_cartesian_product(tmp_path):
    result = sweep(TINY, {"encoder.num_layers": [1, 2], "loss.condition": ["all", "no_cla"]}, seeds=[0],
                   out=tmp_path / "s")
    out = tmp_path / "s"
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert names == ["num_layers-1__condition-all__seed0", "num_layers-1__condition-no_cla__seed0",
                     "num_layers-2__condition-all__seed0", "num_layers-2__condition-no_cla__seed0"]
    for name in names:
        config = json.loads((out / name / "config.resolved.json").read_text())
        layers, condition = name.split("__")[0].split("-")[1], name.split("__")[1].split("-", 1)[1]
        assert config["encoder"]["num_layers"] == int(layers) and config["loss"]["condition"] == condition
    assert [row["values"] for row in result.rows] == [
        {"encoder.num_layers": 1, "loss.condition": "all"}, {"encoder.num_layers": 1, "loss.condition": "no_cla"},
        {"encoder.num_layers": 2, "loss.condition": "all"}, {"encoder.num_layers": 2, "loss.condition": "no_cla"}]
    for row, name in zip(result.rows, names):
        final = json.loads((out / name / "final_metrics.json").read_text())["test"]
        assert row["avg_map_mean"] == pytest.approx(final["avg_map"]) and row["avg_map_std"] is None
    assert (out / "sweep_heatmap.png").is_file() and (out / "sweep_lines.png").is_file()
    csv_header = (out / "sweep.csv").read_text().splitlines()[0]
    assert csv_header.startswith("encoder.num_layers,loss.condition,seeds,i2t_map_mean")

    again = sweep(TINY, {"encoder.num_layers": [1, 2], "loss.condition": ["all", "no_cla"]}, seeds=[0],
                  out=tmp_path / "s")
    assert {c["status"] for c in again.cells} == {"skipped"}


def test_cli_one_key_sweep_with_seeds(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[run]\nseed = 0\n[data]\nsource = "synthetic"\n[graph]\nnode_features = "random"\n')
    sets = [f"--set=data.synthetic.{k}={v}" for k, v in TINY["data"]["synthetic"].items()]
    sets += ["--set=model.common_dim=8", "--set=train.epochs=1", "--set=train.batch_size=16",
             "--set=encoder.num_layers=1"]
    result = CliRunner().invoke(cli, ["sweep", str(recipe), "--grid", "loss.theta=0.3,0.7", "--seeds", "0,1",
                                      "--out", str(tmp_path / "s"), *sets])
    assert result.exit_code == 0, result.output
    out = tmp_path / "s"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "theta-0.3__seed0", "theta-0.3__seed1", "theta-0.7__seed0", "theta-0.7__seed1"]
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert [r["values"]["loss.theta"] for r in rows] == [0.3, 0.7] and all(r["seeds"] == [0, 1] for r in rows)
    assert (out / "sweep.png").is_file() and "| 0.3 |" in (out / "sweep.md").read_text()


def test_cli_malformed_grid_exits_with_one_line(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[run]\nseed = 0\n[data]\nsource = "synthetic"\n')
    result = CliRunner().invoke(cli, ["sweep", str(recipe), "--grid", "loss.alpha", "--out", str(tmp_path / "s")])
    assert result.exit_code != 0 and "is not key=v1,v2" in result.output
    assert not (tmp_path / "s").exists()
