"""`tune`: an Optuna study on the validation split, resumable, pruned, and one final run that alone reads the test split."""
from __future__ import annotations

import copy
import importlib
import json

import optuna
import pytest

from gcnretrieval.config import Recipe
import tomli_w
from click.testing import CliRunner

import gcnretrieval
import gcnretrieval.errors
import gcnretrieval.experiments.cells
import gcnretrieval.runner
import gcnretrieval.training.experiment
import gcnretrieval.training.trainer
from gcnretrieval.cli import cli
from gcnretrieval.config import load_config
from gcnretrieval.errors import ConfigError

from test_experiments_compare import TINY as COMPARE_TINY

tune_module = importlib.import_module("gcnretrieval.experiments.tune")  # the attribute `tune` is the function

TINY = {**COMPARE_TINY, "train": {**COMPARE_TINY["train"], "epochs": 2},
        "tune": {"space": {"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "model.common_dim": [8, 16]}}}


def recipe(**tables):
    raw = copy.deepcopy(TINY)
    for section, values in tables.items():
        raw.setdefault(section, {}).update(values)
    return raw


def study_states(out):
    study = optuna.load_study(study_name="tune", storage=f"sqlite:///{out / 'study.db'}")
    return [t.state.name for t in study.get_trials()]


def test_tune_runs_its_trials_and_resumes_after_an_interruption(tmp_path, monkeypatch):
    out = tmp_path / "t"
    real_build = tune_module.build_experiment
    built = []

    def crashing_build(config, *args, **kwargs):
        built.append({"train.lr": config.train.lr, "model.common_dim": config.model.common_dim})
        if len(built) == 2:
            raise RuntimeError("simulated crash")
        return real_build(config, *args, **kwargs)

    monkeypatch.setattr(tune_module, "build_experiment", crashing_build)
    with pytest.raises(RuntimeError, match="simulated crash"):
        gcnretrieval.tune(TINY, 3, out=out)
    assert study_states(out) == ["COMPLETE", "FAIL"]
    assert not (out / "best").exists()
    first, interrupted = built

    built.clear()
    monkeypatch.setattr(tune_module, "build_experiment", lambda config, *a, **k: (
        built.append({"train.lr": config.train.lr, "model.common_dim": config.model.common_dim}),
        real_build(config, *a, **k))[1])
    result = gcnretrieval.tune(TINY, 3, out=out)
    # the finished trial is kept, the interrupted one is tried again with its values, one more is drawn
    assert len(built) == 2 and built[0] == interrupted and first not in built
    states = [(t["number"], t["state"], t["retry_of"]) for t in result.trials]
    assert states == [(0, "complete", None), (1, "interrupted", None), (2, "complete", 1), (3, "complete", None)]
    assert sum(t["state"] in ("complete", "pruned") for t in result.trials) == 3
    assert result.trials[0]["params"] == first
    for trial in result.trials:
        if trial["state"] == "complete":
            assert len(trial["val_avg_map_per_epoch"]) == 2 and trial["epochs_trained"] == 2
            assert trial["val_avg_map"] == max(trial["val_avg_map_per_epoch"])

    complete = [t for t in result.trials if t["state"] == "complete"]
    best = max(complete, key=lambda t: t["val_avg_map"])
    assert result.best_trial == best["number"] and result.best_params == best["params"]
    assert result.run_dir == out / "best"
    config = json.loads((out / "best" / "config.resolved.json").read_text())
    assert config["train"]["lr"] == best["params"]["train.lr"]
    assert config["model"]["common_dim"] == best["params"]["model.common_dim"]
    final = json.loads((out / "best" / "final_metrics.json").read_text())
    assert result.test == final["test"]

    summary = json.loads((out / "tune.json").read_text())
    assert [t["number"] for t in summary["trials"]] == [0, 1, 2, 3]
    assert summary["best"]["number"] == best["number"] and summary["final"]["test"] == final["test"]
    assert [key["key"] for key in summary["space"]] == ["train.lr", "model.common_dim"]
    assert "| 0 | complete" in (out / "tune.md").read_text()

    # a finished tuning runs nothing more
    built.clear()
    again = gcnretrieval.tune(TINY, 3, out=out)
    assert built == [] and again.best_params == result.best_params and again.test == result.test


class WatchedSplit:
    """A split whose feature and label arrays may be read only once the final run has started."""

    def __init__(self, split, phase, reads):
        self._split, self._phase, self._reads = split, phase, reads

    def __len__(self):
        return len(self._split)

    def __getattr__(self, name):
        if name in ("image", "text", "labels"):
            self._reads.append((self._phase["now"], name))
            if self._phase["now"] != "final":
                raise AssertionError(f"the test split's {name} was read during the {self._phase['now']}")
        return getattr(self._split, name)


def watch_test_split(monkeypatch, modules):
    """Every dataset the given modules load gets a watched test split; the phase becomes "final"
    when a cell (a final run) starts. Returns (phase, reads, test evaluations)."""
    phase, reads, evaluations = {"now": "trials"}, [], []
    for module in modules:
        real_load = module.load_data
        monkeypatch.setattr(module, "load_data", lambda config, real_load=real_load: _watched(real_load(config),
                                                                                                phase, reads))
    for name in ("run", "run_baseline"):
        real = getattr(gcnretrieval.experiments.cells, name)

        def final(*args, real=real, **kwargs):
            phase["now"] = "final"
            return real(*args, **kwargs)

        monkeypatch.setattr(gcnretrieval.experiments.cells, name, final)
    real_evaluate = gcnretrieval.runner.evaluate_split

    def evaluate(model, split, *args, **kwargs):
        if isinstance(split, WatchedSplit):
            evaluations.append(phase["now"])
        return real_evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(gcnretrieval.runner, "evaluate_split", evaluate)
    return phase, reads, evaluations


def _watched(dataset, phase, reads):
    dataset.test = WatchedSplit(dataset.test, phase, reads)
    return dataset


def test_trials_never_read_the_test_split_and_the_final_run_scores_it_once(tmp_path, monkeypatch):
    phase, reads, evaluations = watch_test_split(monkeypatch, [gcnretrieval.training.experiment])
    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(TINY))
    result = CliRunner().invoke(cli, ["tune", str(path), "--trials", "2", "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    assert [state for state, _ in reads if state != "final"] == []
    assert evaluations == ["final"]  # the final run scores the test split once
    assert {name for _, name in reads} >= {"image", "text", "labels"}
    assert study_states(tmp_path / "t") == ["COMPLETE", "COMPLETE"]
    assert "best: trial" in result.output and "test mAP" in result.output
    assert result.output.count("[trial ") == 2


@pytest.mark.parametrize("pruning", [True, False])
def test_a_trial_with_a_clearly_worse_curve_is_pruned(tmp_path, monkeypatch, pruning):
    # scripted validation mAPs, one per epoch: trial 0 climbs, trial 1 starts far below it (and, pruned,
    # asks for no more), trial 2 beats both; the final run gets 0.5 for each epoch
    worse = [0.2] if pruning else [0.2, 0.25, 0.3]
    script = iter([0.6, 0.7, 0.8] + worse + [0.9, 0.95, 0.97])
    evaluated = []

    def scripted(model, split, *args, **kwargs):
        value = next(script, 0.5)
        evaluated.append(value)
        return {"i2t_map": value, "t2i_map": value, "avg_map": value}

    monkeypatch.setattr(gcnretrieval.training.trainer, "evaluate_split", scripted)
    raw = recipe(train={"epochs": 3},
                 tune={"space": {"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}}, "pruning": pruning,
                       **({"startup_trials": 1, "warmup_epochs": 0} if pruning else {})})
    result = gcnretrieval.tune(raw, 3, out=tmp_path / "t")
    states = [(t["state"], t["epochs_trained"], t["val_avg_map_per_epoch"]) for t in result.trials]
    if pruning:
        assert states == [("complete", 3, [0.6, 0.7, 0.8]), ("pruned", 1, [0.2]), ("complete", 3, [0.9, 0.95, 0.97])]
    else:
        assert [s[0] for s in states] == ["complete"] * 3 and states[1][2] == [0.2, 0.25, 0.3]
    assert result.best_trial == 2 and result.best_value == pytest.approx(0.97)


@pytest.mark.parametrize("space, fragment", [
    ({"train.epoch": {"low": 1, "high": 3}}, "'tune.space.\"train.epoch\"' cannot be tuned with train.epoch = 1: "
                                             "unknown key 'train.epoch' — did you mean 'train.epochs'?"),
    ({"train.lr": {"low": 1e-2, "high": 1e-5}}, "'tune.space.\"train.lr\"' must have low < high"),
    ({"train.lr": {"low": 0.0, "high": 1e-2, "log": True}}, "'tune.space.\"train.lr\"' is log-uniform and needs low > 0"),
    ({"train.lr": {"low": 1e-5, "hi": 1e-2}}, "unknown range option 'hi'"),
    ({"train.lr": {"low": 1e-5}}, "needs both low and high"),
    ({"train.lr": {"low": "1e-5", "high": 1e-2}}, "must have numbers as low and high, got '1e-5' and 0.01"),
    ({"train.lr": {"low": 1e-5, "high": 1e-2, "log": 1}}, "must have log = true or false, got 1"),
    ({"train.lr": {"low": 1e-5, "high": 1e-2, "step": 0}}, "must have a step > 0, got 0"),
    ({"train.lr": {"low": 1e-5, "high": 1e-2, "log": True, "step": 1e-3}}, "cannot have both log = true and a step"),
    ({"train.lr": "fast"}, "'tune.space.\"train.lr\"' must be an array of values or a range"),
    ({"model.common_dim": []}, "'tune.space.\"model.common_dim\"' lists no values"),
    ({"train.epochs": {"low": 1.5, "high": 3}}, "recipe key 'train.epochs' must be an integer"),
    ({"loss.theta": {"low": 0.2, "high": 1.5}}, "loss.theta = 1.5: recipe key 'loss.theta' must be in [0, 1]"),
    ({"encoder.name": ["gcn", "gcm"]}, "did you mean 'gcn'?"),
    ({"run.seed": [1, 2]}, "'tune.space.\"run.seed\"' cannot be tuned"),
    ({"eval.select_on": ["val", "test"]}, "'tune.space.\"eval.select_on\"' cannot be tuned"),
    ({"lr": [1e-3]}, "must name a dotted recipe key"),
])
def test_bad_search_spaces_fail_in_one_line_naming_the_key(space, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(recipe(tune={"space": space}))
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("tables, fragment", [
    ({"train": {"steps": 4}, "tune": {"space": {"train.epochs": {"low": 1, "high": 3}}}},
     "recipe key 'train.epochs' has no effect with train.steps set"),
    ({"loss": {"condition": "no_cla"}, "tune": {"space": {"loss.alpha": [0.5, 2.0]}}},
     "recipe key 'loss.alpha' has no effect with loss.condition = \"no_cla\""),
    ({"tune": {"prunning": False}}, "unknown key 'tune.prunning' — did you mean 'tune.pruning'?"),
    ({"tune": {"pruning": False, "startup_trials": 2}}, "'tune.startup_trials' has no effect with tune.pruning = false"),
    ({"tune": {"warmup_epochs": -1}}, "'tune.warmup_epochs' must be at least 0"),
])
def test_bad_tune_tables_fail_in_one_line(tables, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(recipe(**tables))
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("args, fragment", [
    (["--trials", "2", "--set", "train.lr=1e-3"], "'train.lr' is both tuned (tune.space) and set (--set)"),
    (["--trials", "2", "--set", "eval.select_on=test"], "tuning selects on the validation split"),
    (["--trials", "0"], "--trials"),
])
def test_cli_tune_errors_are_one_line_and_write_nothing(tmp_path, args, fragment):
    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(TINY))
    result = CliRunner().invoke(cli, ["tune", str(path), *args, "--out", str(tmp_path / "t")])
    assert result.exit_code == 2
    assert fragment in result.output
    assert not (tmp_path / "t").exists()


def test_a_study_is_not_continued_with_another_recipe(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is in the way: it exists and holds no study.db"):
        gcnretrieval.tune(TINY, 1, out=other)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    out = tmp_path / "t"
    gcnretrieval.tune(recipe(train={"epochs": 1}), 1, out=out)
    with pytest.raises(ConfigError, match=r"was tuned with 'loss\.alpha' = 1\.1 but now asks for 2\.0"):
        gcnretrieval.tune(recipe(train={"epochs": 1}), 1, overrides={"loss.alpha": 2.0}, out=out)
    with pytest.raises(ConfigError, match="another search space"):
        gcnretrieval.tune(recipe(train={"epochs": 1}, tune={"space": {"train.lr": [1e-3, 1e-2]}}), 1, out=out)
    with pytest.raises(ConfigError, match=f"{out} tunes 'l2gcn', not 'gcn'; choose another --out"):
        gcnretrieval.tune(recipe(train={"epochs": 1}), 1, overrides={"encoder.name": "gcn"}, out=out)


def test_what_tuning_cannot_do_is_refused_in_one_line_before_anything_is_written(tmp_path, monkeypatch):
    every_default_key_set = {"train.lr": 1e-3, "model.common_dim": 8, "train.epochs": 2, "loss.alpha": 1.1,
                             "loss.beta": 2.2, "loss.theta": 0.6, "loss.temperature": 0.22}
    with pytest.raises(ConfigError, match="nothing to tune: the search space is empty; list keys in \\[tune.space\\]"):
        tune_module.search_space(Recipe.of({**TINY, "tune": {}}, every_default_key_set))
    with pytest.raises(ConfigError, match="--timeout must be a number > 0, got 0"):
        gcnretrieval.tune(TINY, 1, timeout=0, out=tmp_path / "t")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="tuning runs in one process; start it without torchrun"):
        gcnretrieval.tune(TINY, 1, out=tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_default_search_space_follows_the_recipe():
    def keys(raw, changes=None):
        return {key.key: key for key in tune_module.search_space(Recipe.of(raw, changes))}

    untuned = recipe(tune={})
    del untuned["tune"]
    space = keys(untuned)
    assert list(space) == ["train.lr", "model.common_dim", "train.epochs", "loss.alpha", "loss.beta", "loss.theta",
                           "loss.temperature"]
    assert (space["train.lr"].kind, space["train.lr"].low, space["train.lr"].high, space["train.lr"].log) == \
        ("float", 1e-5, 1e-2, True)
    assert space["model.common_dim"].choices == (256, 512, 1024)
    assert (space["train.epochs"].kind, space["train.epochs"].low, space["train.epochs"].high) == ("int", 1, 4)
    for key, value in (("loss.alpha", 1.1), ("loss.beta", 2.2), ("loss.theta", 0.6), ("loss.temperature", 0.22)):
        assert space[key].kind == "float" and space[key].low < value < space[key].high
    with_steps = copy.deepcopy(untuned)
    del with_steps["train"]["epochs"]
    with_steps["train"]["steps"] = 40
    steps = keys(with_steps)
    assert "train.epochs" not in steps and (steps["train.steps"].low, steps["train.steps"].high) == (10, 80)
    # keys the recipe refuses or the overrides set are left out
    assert not {"loss.alpha", "loss.beta", "train.lr"} & set(keys(untuned, {"loss.condition": "cs_only",
                                                                          "train.lr": 1e-3}))


def test_compare_tune_gives_every_method_the_same_budget_and_runs_the_seeds_with_the_best(tmp_path, monkeypatch):
    phase, reads, evaluations = watch_test_split(monkeypatch, [gcnretrieval.training.experiment, tune_module])
    raw = recipe(train={"epochs": 1})
    path, out = tmp_path / "r.toml", tmp_path / "c"
    path.write_text(tomli_w.dumps(raw))
    result = CliRunner().invoke(cli, ["compare", str(path), "--encoders", "gcn,l2gcn,cca", "--seeds", "0,1",
                                      "--tune", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [state for state, _ in reads if state != "final"] == []  # tuning never read the test split
    summary = json.loads((out / "compare.json").read_text())
    assert summary["tune"]["trials"] == 2 and summary["tune"]["seed"] == 0
    for method in ("gcn", "l2gcn", "cca"):
        study = json.loads((out / "tune" / method / "tune.json").read_text())
        assert [t["state"] for t in study["trials"]] == ["complete", "complete"]
        best = max(study["trials"], key=lambda t: t["val_avg_map"])
        expected_keys = {"n_components", "regularization"} if method == "cca" else {"train.lr", "model.common_dim"}
        assert set(best["params"]) == expected_keys
        assert summary["tune"]["methods"][method]["values"] == best["params"]
        row = next(r for r in summary["rows"] if r["method"] == method)
        assert row["tuned"] == best["params"]
        for seed in (0, 1):
            cell = out / f"{method}_seed{seed}"
            if method == "cca":
                fitted = json.loads((cell / "final_metrics.json").read_text())["baseline"]
                assert fitted["n_components"] == best["params"]["n_components"]
                assert fitted["options"] == {"regularization": best["params"]["regularization"]}
            else:
                config = json.loads((cell / "config.resolved.json").read_text())
                assert config["train"]["lr"] == best["params"]["train.lr"]
                assert config["model"]["common_dim"] == best["params"]["model.common_dim"]
                assert config["run"]["seed"] == seed
    assert "Values tuned for each method: 2 trial(s)" in (out / "compare.md").read_text()
    assert "tuned_values" in (out / "compare.csv").read_text().splitlines()[0].split(",")
    assert result.output.count("[trial ") == 6

    # rerunning the finished comparison trains nothing
    monkeypatch.setattr(tune_module, "build_experiment", lambda *a, **k: pytest.fail("a trial ran again"))
    again = gcnretrieval.compare(raw, ["gcn", "l2gcn", "cca"], seeds=[0, 1], tune=2, out=out)
    assert {c["status"] for c in again.cells} == {"skipped"}


def test_a_diverging_trial_counts_and_the_study_goes_on(tmp_path, monkeypatch):
    real_trainer = tune_module.Trainer
    fits = []

    class DivergingFirst(real_trainer):
        def fit(self, callbacks=None):
            fits.append(self.config.train.lr)
            if len(fits) == 1:
                raise gcnretrieval.errors.RunFailed("the training loss became non-finite at epoch 1, batch 1")
            return super().fit(callbacks)

    monkeypatch.setattr(tune_module, "Trainer", DivergingFirst)
    result = gcnretrieval.tune(recipe(train={"epochs": 1}), 2, out=tmp_path / "t")
    assert [t["state"] for t in result.trials] == ["diverged", "complete"] and len(fits) == 2
    assert "non-finite" in result.trials[0]["error"] and result.best_trial == 1
    again = gcnretrieval.tune(recipe(train={"epochs": 1}), 2, out=tmp_path / "t")
    assert len(fits) == 2 and len(again.trials) == 2  # the diverged trial is finished, not retried


def test_a_range_with_a_fractional_step_over_an_integer_key_is_refused_when_the_space_is_built():
    space = {"train.epochs": {"low": 2, "high": 6, "step": 0.5}}
    with pytest.raises(ConfigError) as info:
        tune_module.search_space(Recipe.of(recipe(tune={"space": space})))
    assert str(info.value) == ("recipe key 'tune.space.\"train.epochs\"' ranges over an integer key; write low, high "
                               "and step as integers, got {'low': 2, 'high': 6, 'step': 0.5}")


def test_a_trial_left_running_by_a_killed_process_is_tried_again_with_its_values(tmp_path):
    out = tmp_path / "t"
    out.mkdir()
    raw = recipe(train={"epochs": 1})
    study = optuna.create_study(storage=f"sqlite:///{out / 'study.db'}", study_name="tune", direction="maximize")
    killed = study.ask()  # as a killed process leaves it: running, with its values
    values = {key.key: key.suggest(killed) for key in tune_module.search_space(Recipe.of(raw))}
    result = gcnretrieval.tune(raw, 1, out=out)
    assert [(t["number"], t["state"], t["retry_of"]) for t in result.trials] == [(0, "interrupted", None),
                                                                                 (1, "complete", 0)]
    assert result.trials[1]["params"] == values and result.best_trial == 1


def test_a_baseline_registered_in_one_place_is_tuned_over_its_own_space(tmp_path, monkeypatch):
    from gcnretrieval.models.baselines import BASELINES, Baseline, ClosedFormCCA, register_baseline

    ridge_only = Baseline("ridgecca", ClosedFormCCA, space={"n_components": {"low": 2, "high": 2},
                                                            "regularization": {"low": 1e-3, "high": 1e-1, "log": True}},
                          summary="ridge CCA with {n_components} components (seed {seed}, {fit_seconds:.1f} s)")
    monkeypatch.setitem(BASELINES._entries, "ridgecca", None)  # removed again after the test
    register_baseline(ridge_only)
    assert BASELINES.get("ridgecca") is ridge_only
    assert ridge_only.search_space(limit=5) == {"regularization": {"low": 1e-3, "high": 1e-1, "log": True}}
    assert ridge_only.describe(2, 7, 0.31) == "ridge CCA with 2 components (seed 7, 0.3 s); test pairs ranked by cosine"
    study = tune_module.tune_baseline(Recipe.of(recipe()), "ridgecca", tmp_path / "s", 2)
    assert [t["state"] for t in study.trials] == ["complete", "complete"]
    assert all(set(t["params"]) == {"regularization"} and 1e-3 <= t["params"]["regularization"] <= 1e-1
               for t in study.trials)


def test_the_registered_baselines_describe_their_runs_and_spaces():
    from gcnretrieval.models.baselines import BASELINES

    assert BASELINES.get("random").describe(16, 3, 0.0) == (
        "chance level: i.i.d. standard normal 16-d embeddings drawn with seed 3, independent of the features; "
        "test pairs ranked by cosine")
    assert BASELINES.get("pls").describe(8, 3, 0.5) == (
        "PLS with 8 components on standardised features, fitted in 0.50 s; test pairs ranked by cosine")
    assert BASELINES.get("cca").search_space(40) == {"n_components": {"low": 1, "high": 40, "log": True},
                                                     "regularization": {"low": 1e-6, "high": 1.0, "log": True}}
    assert BASELINES.get("pls").search_space(1) == {}  # one component possible: nothing to tune
    assert BASELINES.get("random").search_space(40) == {}
