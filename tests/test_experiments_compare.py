"""`compare`: cells as run directories, resume after an interruption, early name errors."""
from __future__ import annotations

import json
import shutil
import statistics

import pytest
import scipy.stats
from click.testing import CliRunner

import gcnretrieval
import gcnretrieval.experiments.cells
import gcnretrieval.runner
from gcnretrieval.cli import cli
from gcnretrieval.config import flatten
from gcnretrieval.errors import ConfigError, UnknownNameError
from gcnretrieval.experiments import compare

TINY = {
    "run": {"name": "tiny", "seed": 0},
    "data": {"source": "synthetic",
             "synthetic": {"num_train": 60, "num_test": 30, "num_labels": 5, "image_dim": 12, "text_dim": 10}},
    "graph": {"node_features": "random", "node_feature_dim": 8},
    "encoder": {"num_layers": 1},
    "model": {"common_dim": 8},
    "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "device": "cpu"},
}


def test_compare_runs_every_cell_with_identical_settings_and_tabulates(tmp_path):
    result = gcnretrieval.compare(TINY, ["gcn", "l2gcn"], seeds=[0, 1], overrides={"loss.alpha": 0.5}, out=tmp_path / "c")
    out = tmp_path / "c"
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert names == ["gcn_seed0", "gcn_seed1", "l2gcn_seed0", "l2gcn_seed1"]
    configs = {n: flatten(json.loads((out / n / "config.resolved.json").read_text())) for n in names}
    reference = configs["gcn_seed0"]
    for name, config in configs.items():
        differing = {k for k in reference.keys() | config.keys() if reference.get(k) != config.get(k)}
        # besides seed and name, only the encoder table differs: its name and that encoder's own options
        assert {k for k in differing if not k.startswith("encoder.")} <= {"run.seed", "run.name"}, name
        assert config["encoder.num_layers"] == reference["encoder.num_layers"]
        assert config["loss.alpha"] == 0.5
        assert (out / name / "final_metrics.json").is_file()

    summary = json.loads((out / "compare.json").read_text())
    assert [row["method"] for row in summary["rows"]] == ["gcn", "l2gcn"]
    for row in summary["rows"]:
        cells = [json.loads((out / f"{row['method']}_seed{s}" / "final_metrics.json").read_text())["test"]
                 for s in (0, 1)]
        for metric in ("i2t_map", "t2i_map", "avg_map"):
            values = [c[metric] for c in cells]
            assert row[f"{metric}_mean"] == pytest.approx(sum(values) / 2)
            assert row[f"{metric}_std"] == pytest.approx(statistics.stdev(values))  # sample std (ddof=1)
        assert row["parameters"] > 0 and row["flops_per_sample"] > 0
        seconds = [json.loads(line)["seconds"] for s in (0, 1)
                   for line in (out / f"{row['method']}_seed{s}" / "metrics.jsonl").read_text().splitlines()]
        assert row["seconds_per_epoch"] == pytest.approx(sum(seconds) / len(seconds))
    header = (out / "compare.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["method", "kind", "seeds"] and "flops_per_sample" in header
    assert "| gcn |" in (out / "compare.md").read_text() and "| gcn |" in result.table
    assert (out / "compare.png").stat().st_size > 1000

    # paired differences from the recipe's encoder (l2gcn), seed by seed
    assert summary["reference"] == "l2gcn"
    rows = {row["method"]: row for row in summary["rows"]}
    assert rows["l2gcn"]["avg_map_verdict"] == "reference"
    for metric in ("i2t_map", "t2i_map", "avg_map"):
        cells = {m: [json.loads((out / f"{m}_seed{s}" / "final_metrics.json").read_text())["test"][metric]
                     for s in (0, 1)] for m in ("gcn", "l2gcn")}
        differences = [a - b for a, b in zip(cells["gcn"], cells["l2gcn"])]
        mean = (differences[0] + differences[1]) / 2
        half = scipy.stats.t.ppf(0.975, 1) * statistics.stdev(differences) / 2 ** 0.5
        assert rows["gcn"][f"{metric}_diff"] == pytest.approx(mean, abs=1e-12)
        assert rows["gcn"][f"{metric}_diff_low"] == pytest.approx(mean - half, abs=1e-12)
        assert rows["gcn"][f"{metric}_diff_high"] == pytest.approx(mean + half, abs=1e-12)
        verdict = "better" if mean - half > 0 else "worse" if mean + half < 0 else "indistinguishable"
        assert rows["gcn"][f"{metric}_verdict"] == verdict
    assert "avg_map_diff_low" in header and "Δ mean vs l2gcn (95 % CI)" in result.table
    assert "| reference |" in result.table and rows["gcn"]["avg_map_verdict"] in result.table


def test_compare_reference_is_chosen_or_refused(tmp_path):
    result = compare(TINY, ["gcn", "none"], seeds=[0], reference="none", out=tmp_path / "c")
    rows = {row["method"]: row for row in result.rows}
    assert rows["none"]["avg_map_verdict"] == "reference" and rows["gcn"]["avg_map_verdict"] == "one seed"
    assert rows["gcn"]["avg_map_diff"] == pytest.approx(result.cells[0]["avg_map"] - result.cells[1]["avg_map"])
    with pytest.raises(ConfigError, match="reference 'gat' is not among the compared methods \\(gcn, none\\)"):
        compare(TINY, ["gcn", "none"], seeds=[0], reference="gat", out=tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_finished_baseline_cell_with_other_options_is_refused(tmp_path):
    out = tmp_path / "c"
    compare(TINY, ["cca"], seeds=[0], baseline_options={"cca": {"n_components": 3}}, out=out)
    assert compare(TINY, ["cca"], seeds=[0], baseline_options={"cca": {"n_components": 3}}, out=out).cells[0][
        "status"] == "skipped"
    with pytest.raises(ConfigError, match="was fitted with n_components = 3 but the experiment now asks for 4"):
        compare(TINY, ["cca"], seeds=[0], baseline_options={"cca": {"n_components": 4}}, out=out)



def test_names_are_a_list_and_compare_tunes_the_encoder_itself(tmp_path):
    with pytest.raises(TypeError, match="encoders are a list of names"):
        compare(TINY, "gcn", seeds=[0], out=tmp_path / "c")
    with pytest.raises(ConfigError, match="compare tunes each encoder in turn; remove 'encoder.name' from"):
        compare({**TINY, "tune": {"space": {"encoder.name": ["gcn", "gat"]}}}, ["gcn"], seeds=[0], tune=1,
                out=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_a_cell_written_by_another_process_meanwhile_is_one_line(tmp_path, monkeypatch):
    def written_meanwhile(recipe, out, **options):
        raise gcnretrieval.training.rundir.RunExists(f"run directory {out} already exists")

    monkeypatch.setattr(gcnretrieval.experiments.cells, "run", written_meanwhile)
    with pytest.raises(ConfigError, match="gcn_seed0 was written by another process meanwhile; `.*` continues it"):
        compare(TINY, ["gcn"], seeds=[0], out=tmp_path / "c")

def test_interrupted_compare_resumes_without_redoing_finished_cells(tmp_path, monkeypatch):
    out = tmp_path / "c"
    real_run = gcnretrieval.experiments.cells.run
    calls = []

    def crashing_run(recipe, **kwargs):
        calls.append(recipe.config.run.name)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return real_run(recipe, **kwargs)

    monkeypatch.setattr(gcnretrieval.experiments.cells, "run", crashing_run)
    with pytest.raises(RuntimeError, match="simulated crash"):
        compare(TINY, ["gcn", "none"], seeds=[0, 1], out=out)
    assert (out / "gcn_seed0" / "final_metrics.json").is_file()
    assert not (out / "gcn_seed1").exists()
    finished = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "gcn_seed0").rglob("*") if p.is_file()}

    monkeypatch.setattr(gcnretrieval.experiments.cells, "run", real_run)
    result = compare(TINY, ["gcn", "none"], seeds=[0, 1], out=out)
    status = {c["name"]: c["status"] for c in result.cells}
    assert status == {"gcn_seed0": "skipped", "gcn_seed1": "ran", "none_seed0": "ran", "none_seed1": "ran"}
    for path, (mtime, content) in finished.items():
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == content, path

    # a finished cell keeps its selected weights only
    assert [p.name for p in (out / "none_seed1" / "checkpoints").iterdir()] == ["best.pt"]
    # a cell stopped after its last epoch, before its final metrics, is resumed from its checkpoint
    shutil.rmtree(out / "none_seed1")

    def killed(*args, **kwargs):
        raise RuntimeError("killed during the final evaluation")

    monkeypatch.setattr(gcnretrieval.runner, "plot_history", killed)
    with pytest.raises(RuntimeError, match="killed"):
        compare(TINY, ["gcn", "none"], seeds=[0, 1], out=out)
    assert (out / "none_seed1" / "checkpoints" / "last.pt").is_file()
    assert not (out / "none_seed1" / "final_metrics.json").exists()
    monkeypatch.undo()
    again = compare(TINY, ["gcn", "none"], seeds=[0, 1], out=out)
    status = {c["name"]: c["status"] for c in again.cells}
    assert status == {"gcn_seed0": "skipped", "gcn_seed1": "skipped", "none_seed0": "skipped",
                      "none_seed1": "resumed"}
    assert (out / "none_seed1" / "final_metrics.json").is_file()
    assert not (out / "none_seed1" / "checkpoints" / "last.pt").exists()


def test_partial_cell_without_checkpoint_is_restarted(tmp_path):
    out = tmp_path / "c"
    compare(TINY, ["gcn"], seeds=[0], out=out)
    cell = out / "gcn_seed0"
    (cell / "final_metrics.json").unlink()
    assert not (cell / "checkpoints" / "last.pt").exists()  # a finished cell does not keep it
    result = compare(TINY, ["gcn"], seeds=[0], out=out)
    assert result.cells[0]["status"] == "ran"
    assert (cell / "final_metrics.json").is_file()


def test_finished_cell_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "c"
    compare(TINY, ["gcn"], seeds=[0], out=out)
    # a key missing from a saved configuration (added to the format later) counts as its default
    path = out / "gcn_seed0" / "config.resolved.json"
    saved = json.loads(path.read_text())
    del saved["train"]["drop_last"]
    path.write_text(json.dumps(saved))
    assert compare(TINY, ["gcn"], seeds=[0], out=out).cells[0]["status"] == "skipped"
    with pytest.raises(ConfigError, match=r"was run with 'loss\.alpha' = 1\.1 but now asks for 2\.0"):
        compare(TINY, ["gcn"], seeds=[0], overrides={"loss.alpha": 2.0}, out=out)


def test_unknown_encoder_fails_before_any_cell_runs(tmp_path):
    with pytest.raises(UnknownNameError) as info:
        compare(TINY, ["gcn", "gcm"], seeds=[0], out=tmp_path / "c")
    message = str(info.value)
    assert message.startswith("unknown encoder or baseline 'gcm' — did you mean 'gcn'? choices: ")
    assert "cca" in message and "\n" not in message
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--encoders", "gcn,l2gnc"], "did you mean 'l2gcn'?"),
    (["--encoders", " , "], "no encoders given"),
    (["--encoders", "gcn", "--seeds", "0,x"], "seeds must be non-negative integers"),
    (["--encoders", "gcn", "--set", "run.seed=3"], "'run.seed' is set per cell"),
    (["--encoders", "gcn", "--reference", "gat"], "reference 'gat' is not among the compared methods (gcn)"),
    (["--encoders", "gcn,cca", "--tune", "2", "--components", "4"], "options of baseline 'cca' are both given and tuned"),
])
def test_cli_compare_errors_are_one_line_and_run_nothing(tmp_path, args, fragment):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[run]\nseed = 0\n[data]\nsource = "synthetic"\n')
    result = CliRunner().invoke(cli, ["compare", str(recipe), *args, "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert fragment in result.output
    assert not (tmp_path / "c").exists()


def test_cli_compare_with_baselines(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[run]\nseed = 0\n[data]\nsource = "synthetic"\n')
    sets = [f"--set=data.synthetic.{k}={v}" for k, v in TINY["data"]["synthetic"].items()]
    result = CliRunner().invoke(cli, ["compare", str(recipe), "--encoders", "cca,pls", "--seeds", "0,1",
                                      "--components", "4", "--out", str(tmp_path / "c"), *sets])
    assert result.exit_code == 0, result.output
    assert "[4/4] pls_seed1: ran" in result.output
    rows = json.loads((tmp_path / "c" / "compare.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["cca", "pls"] and all(r["kind"] == "baseline" for r in rows)
    final = json.loads((tmp_path / "c" / "cca_seed0" / "final_metrics.json").read_text())
    assert final["selected_epoch"] is None and final["baseline"]["n_components"] == 4
