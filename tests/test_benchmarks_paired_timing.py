"""The interval and verdict of benchmarks/paired_timing.py against the binomial definition, written out."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "paired_timing.py"
spec = importlib.util.spec_from_file_location("paired_timing", PATH)
paired_timing = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired_timing)


def coverage(n: int, k: int) -> float:
    """P(X_(k) <= median < X_(n+1-k)) = 1 - 2 P(B <= k - 1), B ~ Binomial(n, 1/2), summed term by term."""
    tail = sum(math.comb(n, i) for i in range(k)) / 2 ** n
    return 1.0 - 2.0 * tail


@pytest.mark.parametrize("n", [6, 7, 12, 40, 41, 100])
def test_the_interval_is_the_widest_rank_with_95_percent_coverage(n):
    values = np.random.default_rng(n).lognormal(size=n)
    k = max(r for r in range(1, n // 2 + 1) if coverage(n, r) >= 0.95)
    if n == 40:
        assert k == 14 and abs(coverage(40, 14) - 0.9615) < 1e-4
    ordered = sorted(values)
    median, low, high = paired_timing.median_interval(values)
    assert median == pytest.approx(float(np.median(values)))
    assert (low, high) == (ordered[k - 1], ordered[n - k])


def test_too_few_pairs_are_refused():
    with pytest.raises(ValueError, match="too few"):
        paired_timing.median_interval(np.ones(5))


@pytest.mark.parametrize("low, median, high, expected", [
    (0.97, 1.0, 1.2, "not slower"), (0.99, 1.05, 1.1, "not slower"), (0.96, 1.1, 1.3, "undecided"),
    (0.98, 0.99, 1.01, "undecided"), (0.8, 0.9, 0.99, "slower"), (0.9, 0.95, 1.0, "undecided")])
def test_verdict(low, median, high, expected):
    assert paired_timing.verdict(low, median, high) == expected


def test_paired_ratio_alternates_and_reports_the_ratio_of_step_times():
    calls = []
    pairs = paired_timing.paired_ratio(lambda: calls.append("ref"), lambda: calls.append("ours"), pairs=8,
                                       batch=10, warmup=1)
    assert calls[:2] == ["ref", "ours"]  # warm-up
    timed = calls[2:]
    assert [timed[2 * i:2 * i + 2] for i in range(8)] == [["ref", "ours"], ["ours", "ref"]] * 4
    assert pairs["pairs"] == 8 and pairs["verdict"] in ("not slower", "slower", "undecided")
    low, high = pairs["ratio_ci95"]
    assert low <= pairs["ratio_ours_over_ref_median"] <= high
