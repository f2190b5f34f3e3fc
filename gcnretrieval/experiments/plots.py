"""Figures of experiments (matplotlib, Agg backend, written atomically)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from gcnretrieval.files import write_figure
from gcnretrieval.experiments.summary import CONFIDENCE
from gcnretrieval.formatting import METRIC_TITLES
from gcnretrieval.metrics import METRIC_KEYS as METRICS

__all__ = ["epoch_curves", "grouped_bars", "heatmap", "lines"]


def colour_of(index: int, count: int) -> Any:
    """The colour of item ``index`` of ``count``: matplotlib's ten-colour cycle, or twenty distinct ones past ten."""
    return f"C{index}" if count <= 10 else matplotlib.colormaps["tab20"](index % 20)


def _figure(size: tuple[float, float], columns: int = 1) -> tuple[Figure, list[Any]]:
    """A figure that belongs to no GUI backend (no pyplot state), with ``columns`` axes side by side."""
    figure = Figure(figsize=size, layout="constrained" if columns > 1 else None)
    return figure, list(figure.subplots(1, columns, squeeze=False)[0])


#: positions of the three mAPs on the x axis of a bar chart, and the width the bars at one position share
_POSITIONS, _SPREAD = np.arange(len(METRICS)), 0.8


def _offsets(index: int, count: int) -> np.ndarray:
    """Positions of bar (or point) ``index`` of ``count`` side by side at each mAP (each ``_SPREAD / count`` wide)."""
    return _POSITIONS + (index - (count - 1) / 2) * _SPREAD / count


def distinct(values: Sequence[Any]) -> list[Any]:
    """The values in first-seen order, each once (compared, not hashed: arrays may be values)."""
    return [value for i, value in enumerate(values) if value not in values[:i]]


def grouped_bars(rows: list[dict[str, Any]], path: str | Path, title: str = "", reference: str | None = None) -> Path:
    """One group per mAP (I→T, T→I, mean), one bar per method (at least one row), error bars = sample std
    over seeds.

    With ``reference`` (and rows holding ``<metric>_diff``, ``_diff_low``, ``_diff_high`` as
    written by :func:`~gcnretrieval.experiments.compare`), a second panel shows each method's
    paired difference from the reference with its 95 % paired-t interval as error bars (a
    point without bars: one seed).
    """
    others = [row for row in rows if reference is not None and row["group"] != reference]
    panels = 2 if others else 1
    figure, axes = _figure((max(6.0, 1.2 + 0.45 * len(rows) * len(METRICS)) * panels, 4.0), panels)
    bars = axes[0]
    ends = []
    for index, row in enumerate(rows):
        means = [row[f"{m}_mean"] or 0.0 for m in METRICS]
        stds = [row[f"{m}_std"] or 0.0 for m in METRICS]  # one seed: no error bar
        ends += [mean + sign * std for mean, std in zip(means, stds) for sign in (-1, 1)]
        bars.bar(_offsets(index, len(rows)), means, _SPREAD / len(rows), yerr=stds, capsize=3,
                 label=str(row["group"]), color=colour_of(index, len(rows)))
    _metric_axis(bars, title=title, ylabel="test mAP@all (error bars: sample std over seeds)")
    bars.set_ylim(max(0.0, min(ends) - 0.05), min(1.0, max(ends) + 0.02))
    if others:
        _difference_panel(axes[1], rows, others, reference)
    axes[-1].legend(*bars.get_legend_handles_labels(), fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    frameon=False)
    return write_figure(figure, path, bbox_inches="tight")


def _difference_panel(axes: Any, rows: list[dict[str, Any]], others: list[dict[str, Any]], reference: str) -> None:
    """Paired differences from the reference, with their intervals, in the colours of the bars."""
    for index, row in enumerate(others):
        shown = [(x, row[f"{m}_diff"], row.get(f"{m}_diff_low"), row.get(f"{m}_diff_high"))
                 for x, m in zip(_offsets(index, len(others)), METRICS)
                 if row.get(f"{m}_diff") is not None]
        xs, means, lows, highs = zip(*shown) if shown else ((), (), (), ())
        errors = None if None in lows else [np.subtract(means, lows), np.subtract(highs, means)]  # one seed: points
        axes.errorbar(xs, means, yerr=errors, fmt="o", capsize=4, color=colour_of(rows.index(row), len(rows)))
    axes.axhline(0.0, color="black", linewidth=0.8)
    interval = f"{CONFIDENCE * 100:g} % paired t interval over seeds"
    _metric_axis(axes, title=f"difference from {reference}, same seeds",
                 ylabel=f"paired difference from {reference}\n(error bars: {interval})")


def _metric_axis(axes: Any, **labels: str) -> None:
    """The three mAPs on the x axis, the ``labels`` (title, ylabel), a horizontal grid."""
    axes.set(xticks=_POSITIONS, xticklabels=[METRIC_TITLES[m] for m in METRICS], **labels)
    axes.grid(axis="y", alpha=0.3)


def _axis_values(values: list[Any]) -> list[float]:
    """Numbers stay where they are on the axis; other values are spread evenly in their order."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values]
    return list(range(len(values)))


def lines(rows: list[dict[str, Any]], x_key: str, path: str | Path, series_key: str | None = None,
          metric: str = "avg_map", title: str = "") -> Path:
    """mAP against one swept key, with sample-std error bars.

    Without ``series_key``: one line per mAP (I→T, T→I, mean). With it: one line per value
    of ``series_key``, plotting ``metric`` (default the mean mAP).
    """
    figure, [axes] = _figure((6.4, 4.0))
    x_values = distinct([row["values"][x_key] for row in rows])
    xs = _axis_values(x_values)
    if series_key is None:
        series = [(METRIC_TITLES[m], m, rows) for m in METRICS]
    else:
        series = [(f"{series_key} = {name}", metric, [r for r in rows if r["values"][series_key] == name])
                  for name in distinct([row["values"][series_key] for row in rows])]
    for label, m, members in series:
        members = [r for r in members if r[f"{m}_mean"] is not None]
        axes.errorbar([xs[x_values.index(r["values"][x_key])] for r in members], [r[f"{m}_mean"] for r in members],
                      yerr=[r[f"{m}_std"] or 0.0 for r in members], marker="o", capsize=3, label=label)
    axes.set(xticks=xs, xticklabels=list(map(str, x_values)), xlabel=x_key, title=title,
             ylabel="test mAP@all" if series_key is None else f"test {METRIC_TITLES[metric]} mAP@all")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return write_figure(figure, path, bbox_inches="tight")


def heatmap(rows: list[dict[str, Any]], row_key: str, column_key: str, path: str | Path,
            metric: str = "avg_map", title: str = "") -> Path:
    """Mean ``metric`` over seeds for every pair of values of two swept keys, annotated."""
    row_values = distinct([r["values"][row_key] for r in rows])
    column_values = distinct([r["values"][column_key] for r in rows])
    grid = np.full((len(row_values), len(column_values)), np.nan)
    for r in rows:
        if r[f"{metric}_mean"] is not None:  # a missing mean stays NaN: a blank cell
            grid[row_values.index(r["values"][row_key]), column_values.index(r["values"][column_key])] = \
                r[f"{metric}_mean"]
    figure, [axes] = _figure((1.4 + 0.9 * len(column_values), 1.2 + 0.55 * len(row_values)))
    image = axes.imshow(grid, cmap="viridis", aspect="auto")
    middle = float(np.nanmean(grid)) if np.isfinite(grid).any() else 0.0
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            axes.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize="small",
                      color="black" if value > middle else "white")
    axes.set(xticks=range(len(column_values)), xticklabels=list(map(str, column_values)), xlabel=column_key,
             yticks=range(len(row_values)), yticklabels=list(map(str, row_values)), ylabel=row_key, title=title)
    figure.colorbar(image, ax=axes, label=f"test {METRIC_TITLES[metric]} mAP@all")
    return write_figure(figure, path, bbox_inches="tight")


def epoch_curves(groups: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]], keys: Sequence[str], path: str | Path,
                 title: str = "") -> Path:
    """Per-epoch values of several runs: one panel per ``metrics.jsonl`` key, one line per run,
    one colour per group (e.g. the seeds of one setting).

    Args:
        groups: ``{label: [history, ...]}``, each history the rows of a run's ``metrics.jsonl``.
        keys: the logged keys to draw, e.g. ``["lambda", "lambda_grad", "val_avg_map"]``.
        path: the PNG to write.
    """
    figure, axes = _figure((4.2 * len(keys), 3.6), columns=len(keys))
    for axis, key in zip(axes, keys):
        for index, (label, histories) in enumerate(groups.items()):
            for number, history in enumerate(histories):
                points = [(row["epoch"], row[key]) for row in history if isinstance(row.get(key), (int, float))]
                axis.plot(*zip(*points), color=f"C{index}", linewidth=1.2, alpha=0.8,
                          label=label if number == 0 else None)
        axis.set(xlabel="epoch", ylabel=key)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        figure.suptitle(title)
    return write_figure(figure, path, bbox_inches="tight")
