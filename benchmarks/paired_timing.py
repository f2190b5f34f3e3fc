r"""Paired timing of two training steps on a shared machine: the per-pair ratio, its median and a
95 % interval, and a verdict.

The two steps are taken alternately, one of each per pair, who goes first alternating from pair to
pair, so that a change of load hits both steps of a pair alike. For pair :math:`i` with step times
:math:`t^{ref}_i` and :math:`t^{ours}_i` the throughput ratio is

.. math::
    r_i = t^{ref}_i / t^{ours}_i \qquad (> 1: \text{ours is faster}).

The estimate is the median :math:`\tilde r` of the :math:`r_i`, with the distribution-free 95 %
interval of a median from the order statistics: :math:`[r_{(k)}, r_{(n+1-k)}]`, :math:`k` the
largest rank with coverage :math:`1 - 2\,P(B \le k - 1) \ge 0.95`, :math:`B \sim
\mathrm{Binomial}(n, 1/2)` (for :math:`n = 40`, :math:`k = 14`, coverage 96.2 %).

Verdict: ``"not slower"`` when the interval's lower bound is :math:`\ge 0.97` and
:math:`\tilde r \ge 1.0`; ``"slower"`` when the upper bound is :math:`< 1.0`; ``"undecided"``
otherwise.

    python benchmarks/paired_timing.py RATIO [RATIO ...]   # median, interval and verdict of given ratios
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import binom

#: the verdict's thresholds: lower bound of the interval, median (see the module docstring)
NOT_SLOWER_LOWER, NOT_SLOWER_MEDIAN, CONFIDENCE = 0.97, 1.0, 0.95


def median_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``(median, low, high)``: the order-statistics interval of the median (see the module docstring)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    ranks = np.arange(1, n // 2 + 1)
    ok = ranks[1.0 - 2.0 * binom.cdf(ranks - 1, n, 0.5) >= confidence]
    if ok.size == 0:
        raise ValueError(f"{n} pairs are too few for a {confidence:.0%} interval of the median; take at least 6")
    k = int(ok.max())
    return float(np.median(x)), float(x[k - 1]), float(x[n - k])


def verdict(low: float, median: float, high: float) -> str:
    """``"not slower"``, ``"slower"`` or ``"undecided"`` (the rule of the module docstring)."""
    if low >= NOT_SLOWER_LOWER and median >= NOT_SLOWER_MEDIAN:
        return "not slower"
    if high < 1.0:
        return "slower"
    return "undecided"


def paired_ratio(reference_step: Callable[[], Any], our_step: Callable[[], Any], pairs: int,
                 batch: int, warmup: int = 2) -> dict[str, Any]:
    """Time ``pairs`` alternating pairs of steps (after ``warmup`` steps of each); samples per second
    from the median step times, and the per-pair throughput ratio's median, interval and verdict."""
    for step in (reference_step, our_step):
        for _ in range(warmup):
            step()
    times = np.empty((pairs, 2))  # columns: reference, ours
    for i in range(pairs):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for who in order:
            start = time.perf_counter()
            (reference_step, our_step)[who]()
            times[i, who] = time.perf_counter() - start
    ratio, low, high = median_interval(times[:, 0] / times[:, 1])
    return {"pairs": pairs, "reference_samples_per_s": batch / float(np.median(times[:, 0])),
            "ours_samples_per_s": batch / float(np.median(times[:, 1])),
            "ratio_ours_over_ref_median": ratio, "ratio_ci95": [low, high], "verdict": verdict(low, ratio, high)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="median, 95 % interval and verdict of per-pair throughput ratios")
    parser.add_argument("ratios", type=float, nargs="+", help="per-pair ratios ours / reference (at least 6)")
    args = parser.parse_args(argv)
    median, low, high = median_interval(np.array(args.ratios))
    print(f"{len(args.ratios)} pairs: median {median:.3f}, 95 % interval [{low:.3f}, {high:.3f}]: "
          f"{verdict(low, median, high)}")


if __name__ == "__main__":
    main()
