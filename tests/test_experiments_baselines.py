"""CCA / PLS baselines: the closed-form CCA against its definition, planted data, run directories."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gcnretrieval.errors import ConfigError
from gcnretrieval.experiments import available_baselines, fit_baseline, run_baseline
from gcnretrieval.models.baselines import ClosedFormCCA
from gcnretrieval.metrics import retrieval_report

from test_experiments_compare import TINY


def correlated_views(n=400, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    x = np.c_[z, rng.standard_normal((n, 3))] @ rng.standard_normal((5, 5))
    y = np.c_[z * [1.0, 0.5], rng.standard_normal((n, 2))] @ rng.standard_normal((4, 4))
    y += 0.3 * rng.standard_normal((n, 4))
    return x, y


def test_closed_form_cca_meets_the_definition():
    x, y = correlated_views()
    cca = ClosedFormCCA(3, regularization=0.0).fit(x, y)
    a, b = cca.transform(x, y)
    n = x.shape[0] - 1
    # projections are uncorrelated with unit variance within each view ...
    np.testing.assert_allclose(a.T @ a / n, np.eye(3), atol=1e-8)
    np.testing.assert_allclose(b.T @ b / n, np.eye(3), atol=1e-8)
    # ... and the cross-correlation is diagonal, holding the canonical correlations, in decreasing order
    np.testing.assert_allclose(a.T @ b / n, np.diag(cca.correlations_), atol=1e-8)
    assert np.all(np.diff(cca.correlations_) <= 0)
    # the first canonical correlation is the largest correlation any pair of directions reaches
    rng = np.random.default_rng(1)
    xc, yc = x - x.mean(0), y - y.mean(0)
    for _ in range(200):
        u, v = xc @ rng.standard_normal(5), yc @ rng.standard_normal(4)
        assert abs(np.corrcoef(u, v)[0, 1]) <= cca.correlations_[0] + 1e-9


def test_pls_first_direction_maximises_covariance():
    x, y = correlated_views()
    fitted = fit_baseline("pls", x, y, n_components=1)
    xs, ys = (x - x.mean(0)) / x.std(0), (y - y.mean(0)) / y.std(0)
    u, s, vt = np.linalg.svd(xs.T @ ys)
    a, b = fitted.embed(x, y)
    expected_a, expected_b = xs @ u[:, :1], ys @ vt[:1].T
    sign = np.sign(a[0, 0] * expected_a[0, 0])
    np.testing.assert_allclose(a, sign * expected_a, atol=1e-8)
    np.testing.assert_allclose(b, sign * expected_b, atol=1e-8)


def planted(n, rng, maps):
    """8 classes (one label each, a second label 20 % of the time); each view is a fixed
    random map of the class signal plus noise."""
    labels = np.zeros((n, 8), dtype=np.float32)
    labels[np.arange(n), rng.integers(0, 8, n)] = 1
    labels[np.arange(n), rng.integers(0, 8, n)] += rng.random(n) < 0.2
    labels = np.minimum(labels, 1)
    views = [labels @ m + 0.5 * rng.standard_normal((n, m.shape[1])) for m in maps]
    return views[0], views[1], labels


@pytest.mark.parametrize("method", ["cca", "pls"])
def test_baselines_beat_random_ranking_on_planted_data(method):
    rng = np.random.default_rng(3)
    maps = [rng.standard_normal((8, 20)), rng.standard_normal((8, 16))]
    train_x, train_y, _ = planted(300, rng, maps)
    test_x, test_y, test_labels = planted(150, rng, maps)
    fitted = fit_baseline(method, train_x, train_y, n_components=8)
    image, text = fitted.embed(test_x, test_y)
    labels = torch.from_numpy(test_labels)
    got = retrieval_report(torch.from_numpy(image), torch.from_numpy(text), labels)
    generator = torch.Generator().manual_seed(0)
    chance = retrieval_report(torch.randn(150, 8, generator=generator), torch.randn(150, 8, generator=generator), labels)
    assert all(np.isfinite(v) for v in got.values())
    assert chance["avg_map"] < 0.35
    assert got["avg_map"] > chance["avg_map"] + 0.3, (got, chance)


def test_run_baseline_writes_a_run_directory(tmp_path):
    result = run_baseline(TINY, method="cca", out=tmp_path / "cca", n_components=3)
    final = json.loads((tmp_path / "cca" / "final_metrics.json").read_text())
    assert set(final["test"]) == {"i2t_map", "t2i_map", "avg_map"} and final["test"] == result.test
    assert final["selected_epoch"] is None and final["epochs_trained"] == 0
    assert final["baseline"]["method"] == "cca" and final["baseline"]["n_components"] == 3
    assert final["baseline"]["parameters"] == (12 + 10) * (3 + 2)
    config = json.loads((tmp_path / "cca" / "config.resolved.json").read_text())
    assert config["run"]["seed"] == 0
    assert sorted(p.name for p in (tmp_path / "cca").iterdir()) == [
        "config.resolved.json", "environment.json", "final_metrics.json", "metrics.jsonl", "recipe.toml", "report.md"]
    with pytest.raises(ConfigError, match="already exists"):
        run_baseline(TINY, method="cca", out=tmp_path / "cca")


def test_bad_component_count_and_option_are_user_errors(tmp_path):
    x, y = correlated_views(n=50)
    with pytest.raises(ConfigError, match=r"n_components of baseline 'pls' must be an integer in \[1, 4\]"):
        fit_baseline("pls", x, y, n_components=5)
    with pytest.raises(ConfigError, match="bad option for baseline 'pls'"):
        fit_baseline("pls", x, y, n_components=2, regularization=1.0)
    assert available_baselines() == ["cca", "mlcca", "pls", "random"]


def expected_random_ap(labels: np.ndarray) -> float:
    """Mean over image queries of E[AP] of a uniformly random ranking of all N items, written out:
    a query with R relevant items finds one at rank r with probability R/N, and then
    E[P@r] = (1 + (r - 1)(R - 1)/(N - 1)) / r, so E[AP] = (1/N) sum_r [1/r + (R-1)/(N-1) (r-1)/r]."""
    n = len(labels)
    relevant = (labels @ labels.T > 0).sum(axis=1)
    values = []
    for count in relevant:
        total = 0.0
        for rank in range(1, n + 1):
            total += 1.0 / rank + (count - 1) / (n - 1) * (rank - 1) / rank
        values.append(total / n)
    return float(np.mean(values))


def test_random_baseline_is_chance_level_and_ignores_the_features():
    rng = np.random.default_rng(3)
    maps = [rng.standard_normal((8, 20)), rng.standard_normal((8, 16))]
    train_x, train_y, _ = planted(300, rng, maps)
    test_x, test_y, test_labels = planted(150, rng, maps)
    scores = []
    for seed in range(20):
        fitted = fit_baseline("random", train_x, train_y, n_components=8, seed=seed)
        image, text = fitted.embed(test_x, test_y)
        other = fit_baseline("random", train_x[::-1] + 1.0, train_y ** 2, n_components=8, seed=seed)
        again, _ = other.embed(rng.standard_normal(test_x.shape), test_y[::-1])
        np.testing.assert_array_equal(image, again)  # the same draw whatever the features
        scores.append(retrieval_report(image, text, test_labels)["i2t_map"])
        assert fitted.num_parameters == 0 and fitted.flops_per_sample == 0
    assert len(set(scores)) == 20  # each seed draws its own embeddings
    chance = expected_random_ap(test_labels)
    # 20 draws of 150 queries: the spread of their mean is about 0.004 here
    assert abs(np.mean(scores) - chance) < 0.015, (np.mean(scores), chance)


def test_random_baseline_run_reports_chance_level(tmp_path):
    result = run_baseline(TINY, {"run.seed": 4}, method="random", out=tmp_path / "random")
    again = run_baseline(TINY, {"run.seed": 4}, method="random", out=tmp_path / "again")
    other = run_baseline(TINY, {"run.seed": 5}, method="random", out=tmp_path / "other")
    assert result.test == again.test and result.test != other.test
    final = json.loads((tmp_path / "random" / "final_metrics.json").read_text())
    assert final["baseline"]["parameters"] == 0
    assert "chance level" in (tmp_path / "random" / "report.md").read_text()
