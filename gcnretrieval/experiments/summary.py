"""Summaries of an experiment's cells: mean ± sample standard deviation over seeds, paired differences
between methods over the same seeds, and the files that show them."""
from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scipy.stats import ttest_1samp

from gcnretrieval.files import write_csv, write_json, write_text
from gcnretrieval.metrics import METRIC_KEYS as METRICS

__all__ = ["CONFIDENCE", "METRICS", "format_difference", "format_mean_std", "mean_std", "paired_difference",
           "summarise", "write_summary"]

#: coverage of the paired-difference intervals
CONFIDENCE = 0.95


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and *sample* standard deviation (``ddof=1``); the std is ``None`` for one value."""
    values = [float(v) for v in values if _finite(v)]
    return (statistics.fmean(values) if values else None), (statistics.stdev(values) if len(values) > 1 else None)


def format_mean_std(mean: float | None, std: float | None, digits: int = 4) -> str:
    """``0.8123 ± 0.0041``; ``0.8123`` with one seed; ``—`` without a value."""
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def paired_difference(values: dict[int, float], reference: dict[int, float],
                      confidence: float = CONFIDENCE) -> dict[str, Any]:
    r"""The difference of a method from a reference over the seeds both ran, with a paired-t interval.

    With :math:`d_s = x_s - r_s` over the :math:`n` common seeds,

    .. math::
        \bar d = \frac{1}{n} \sum_s d_s, \qquad
        s_d = \sqrt{\frac{1}{n - 1} \sum_s (d_s - \bar d)^2}, \qquad
        \bar d \pm t_{(1 + c)/2,\, n - 1} \, \frac{s_d}{\sqrt{n}}

    (:math:`t_{q, k}`: the :math:`q` quantile of Student's t with :math:`k` degrees of freedom;
    the confidence interval of :func:`scipy.stats.ttest_1samp` on the differences, the paired t test).
    The verdict is ``"better"`` when the interval lies above 0, ``"worse"`` below 0,
    ``"indistinguishable"`` when it contains 0, and ``"one seed"`` (no interval) for :math:`n = 1`.

    Args:
        values, reference: ``{seed: metric}`` of the method and of the reference (non-finite values
            and seeds only one of them ran are left out).
        confidence: the interval's coverage :math:`c` (default ``0.95``).

    Returns:
        ``{"seeds", "mean", "low", "high", "verdict"}`` (``None`` where undefined; verdict ``"no seeds"``
        without a common seed).
    """
    seeds = [s for s in values if s in reference and _finite(values[s]) and _finite(reference[s])]
    differences = [float(values[s]) - float(reference[s]) for s in seeds]
    out: dict[str, Any] = {"seeds": seeds, "mean": mean_std(differences)[0], "low": None, "high": None,
                           "verdict": "one seed" if len(seeds) == 1 else "no seeds"}
    if len(seeds) > 1:
        # equal differences: scipy warns of lost precision, and the interval is the mean
        with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
            out["low"], out["high"] = map(float, ttest_1samp(differences, 0.0).confidence_interval(confidence))
        out["verdict"] = "better" if out["low"] > 0 else "worse" if out["high"] < 0 else "indistinguishable"
    return out


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def format_difference(difference: dict[str, Any], digits: int = 4) -> str:
    """``+0.0123 [-0.0040, +0.0286] indistinguishable``; ``+0.0123 (one seed)``; ``—`` without seeds."""
    if difference["mean"] is None:
        return "—"
    interval = "({verdict})" if difference["low"] is None else "[{low:+.{digits}f}, {high:+.{digits}f}] {verdict}"
    return ("{mean:+.{digits}f} " + interval).format(**difference, digits=digits)


def summarise(cells: list[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    """Group cell dicts by ``key(cell)`` (first-seen order) and reduce each group over its seeds.

    Returns one dict per group: ``group``, ``seeds``, ``<metric>_mean``, ``<metric>_std``
    for the three mAPs, ``seconds_per_epoch`` and ``fit_seconds`` (means).
    """
    groups: dict[Any, list[dict[str, Any]]] = {}
    for cell in cells:
        groups.setdefault(key(cell), []).append(cell)
    return [{"group": group, "seeds": [m["seed"] for m in members],
             **{f"{metric}_{stat}": value for metric in METRICS
                for stat, value in zip(("mean", "std"), mean_std([m[metric] for m in members]))},
             **{name: mean_std([m[name] for m in members])[0] for name in ("seconds_per_epoch", "fit_seconds")}}
            for group, members in groups.items()]


def write_summary(out_dir: Path, stem: str, title: str, summary: dict[str, Any], rows: list[dict[str, Any]],
                  columns: list[str], table: str, figures: list[Path], notes: Sequence[str] = ()) -> None:
    """``<stem>.json`` (``summary``), ``<stem>.csv`` (``rows`` under ``columns``) and ``<stem>.md`` (the table,
    then the ``notes`` paragraphs, then the figures)."""
    seeds = summary["seeds"]
    write_json(out_dir / f"{stem}.json", {**summary, "std": "sample standard deviation over seeds (ddof=1)"})
    write_csv(out_dir / f"{stem}.csv", [{**row, "seeds": " ".join(map(str, row["seeds"]))} for row in rows], columns)
    over = (f"Test mAP@all of seed {seeds[0]} (one seed: no standard deviation)." if len(seeds) == 1 else
            f"Test mAP@all, mean ± sample standard deviation over seeds {', '.join(map(str, seeds))}.")
    text = [f"# {title}", "", over,
            "", table, "", *[line for note in notes for line in (note, "")],
            *[f"![{f.stem}]({f.name})" for f in figures], ""]
    write_text(out_dir / f"{stem}.md", "\n".join(text))
