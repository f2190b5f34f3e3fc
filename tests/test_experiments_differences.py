"""Paired differences between methods over the same seeds: the interval against a hand computation, the figure."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import gcnretrieval.experiments.plots as plots
from gcnretrieval.experiments.plots import grouped_bars
from gcnretrieval.experiments.summary import METRICS, format_difference, format_mean_std, paired_difference


def hand_interval(method: list[float], reference: list[float]) -> tuple[float, float, float]:
    differences = [m - r for m, r in zip(method, reference)]
    n = len(differences)
    mean = 0.0
    for d in differences:
        mean += d
    mean /= n
    squares = 0.0
    for d in differences:
        squares += (d - mean) ** 2
    half = stats.t.ppf(0.975, n - 1) * math.sqrt(squares / (n - 1)) / math.sqrt(n)
    return mean, mean - half, mean + half


@pytest.mark.parametrize("method, reference, verdict", [
    # seeds disagree a lot, the method beats the reference on every one of them by about 0.02
    ([0.70, 0.50, 0.60, 0.65], [0.68, 0.48, 0.585, 0.625], "better"),
    ([0.55, 0.50, 0.53], [0.50, 0.54, 0.51], "indistinguishable"),
    ([0.50, 0.53, 0.50], [0.60, 0.62, 0.61], "worse"),
])
def test_paired_difference_matches_a_hand_computation(method, reference, verdict):
    seeds = [3, 1, 7, 2][:len(method)]
    mean, low, high = hand_interval(method, reference)
    assert {"better": low > 0, "worse": high < 0, "indistinguishable": low <= 0 <= high}[verdict]
    # the reference lists its seeds in another order, and one seed the method did not run
    result = paired_difference(dict(zip(seeds, method)), {99: 0.1, **dict(zip(reversed(seeds), reversed(reference)))})
    assert result["seeds"] == seeds
    assert result["mean"] == pytest.approx(mean, abs=1e-12)
    assert result["low"] == pytest.approx(low, abs=1e-12) and result["high"] == pytest.approx(high, abs=1e-12)
    assert result["verdict"] == verdict


def test_pairing_matters():
    # the same numbers unpaired (Welch's t) overlap widely; paired, the difference is clear
    method, reference = [0.70, 0.50, 0.60, 0.65], [0.68, 0.48, 0.585, 0.625]
    assert stats.ttest_ind(method, reference, equal_var=False).pvalue > 0.5
    assert paired_difference(dict(enumerate(method)), dict(enumerate(reference)))["verdict"] == "better"


def test_one_seed_has_no_interval():
    result = paired_difference({0: 0.61}, {0: 0.60})
    assert result["mean"] == pytest.approx(0.01) and result["low"] is None and result["high"] is None
    assert result["verdict"] == "one seed"
    assert paired_difference({0: 0.61}, {1: 0.60})["verdict"] == "no seeds"


def test_bar_chart_shows_the_paired_intervals(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "write_figure", lambda figure, path, **options: figures.append(figure) or path)

    def row(group, diff=None, one_seed=False):
        out = {"group": group}
        for index, metric in enumerate(METRICS):
            out.update({f"{metric}_mean": 0.6 + 0.01 * index, f"{metric}_std": 0.01})
            if diff is not None:
                d = diff + 0.001 * index
                out.update({f"{metric}_diff": d, f"{metric}_diff_low": None if one_seed else d - 0.01,
                            f"{metric}_diff_high": None if one_seed else d + 0.02})
        return out

    grouped_bars([row("ref"), row("a", 0.03), row("b", -0.02, one_seed=True)], tmp_path / "c.png", reference="ref")
    [figure] = figures
    bars, differences = figure.axes[:2]
    assert "sample std" in bars.get_ylabel() and "95 % paired t interval" in differences.get_ylabel()
    spans = sorted((round(float(np.min(s[:, 1])), 6), round(float(np.max(s[:, 1])), 6))
                   for collection in differences.collections for s in collection.get_segments())
    expected = sorted((round(0.03 + 0.001 * i - 0.01, 6), round(0.03 + 0.001 * i + 0.02, 6)) for i in range(3))
    assert spans == expected  # one interval per metric for 'a'; none for 'b' (one seed)
    points = sorted(round(float(y), 6) for line in differences.lines if line.get_marker() == "o" for y in line.get_ydata())
    assert points == sorted([round(0.03 + 0.001 * i, 6) for i in range(3)] + [round(-0.02 + 0.001 * i, 6) for i in range(3)])


def test_a_missing_mean_or_difference_is_written_as_a_dash():
    assert format_mean_std(None, None) == "—"
    assert format_mean_std(0.81234, None) == "0.8123"
    assert format_mean_std(0.81234, 0.00412) == "0.8123 ± 0.0041"
    assert format_difference(paired_difference({}, {0: 0.5})) == "—"
    assert format_difference(paired_difference({0: 0.6}, {0: 0.5})) == "+0.1000 (one seed)"
