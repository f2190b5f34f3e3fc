"""Figures of experiments (matplotlib, Agg backend, written atomically)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from gcnretrieval.experiments.summary import METRIC_TITLES, METRICS
from gcnretrieval.files import write_figure

__all__ = ["epoch_curves", "grouped_bars", "heatmap", "lines"]


def colour_of(index: int, count: int) -> Any:
    """The colour of item ``index`` of ``count``: matplotlib's ten-colour cycle, or twenty distinct ones past ten."""
    if count <= 10:
        return f"C{index}"
    return matplotlib.colormaps["tab20"](index % 20)


def _figure(size: tuple[float, float], columns: int = 1) -> tuple[Figure, Any]:
    """A figure that belongs to no GUI backend (no pyplot state), with ``columns`` axes side by side."""
    if columns == 1:
        figure = Figure(figsize=size)
        return figure, figure.subplots()
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.subplots(1, columns)


def _std(value: float | None) -> float:
    return 0.0 if value is None else value


def grouped_bars(rows: list[dict[str, Any]], path: str | Path, title: str = "", reference: str | None = None) -> Path:
    """One group per mAP (I→T, T→I, mean), one bar per method, error bars = sample std over seeds.

    With ``reference`` (and rows holding ``<metric>_diff``, ``_diff_low``, ``_diff_high`` as
    written by :func:`~gcnretrieval.experiments.compare`), a second panel shows each method's
    paired difference from the reference with its 95 % paired-t interval as error bars (a
    point without bars: one seed).
    """
    others = [row for row in rows if reference is not None and row["group"] != reference]
    panels = 2 if others else 1
    width_each = max(6.0, 1.2 + 0.45 * len(rows) * len(METRICS))
    figure, axes = _figure((width_each * panels, 4.0), panels)
    bars, differences = (axes[0], axes[1]) if panels == 2 else (axes, None)
    width = 0.8 / max(len(rows), 1)
    positions = np.arange(len(METRICS))
    lows, highs = [], []
    for index, row in enumerate(rows):
        means = [row[f"{m}_mean"] or 0.0 for m in METRICS]
        stds = [_std(row[f"{m}_std"]) for m in METRICS]
        lows.extend(mean - std for mean, std in zip(means, stds))
        highs.extend(mean + std for mean, std in zip(means, stds))
        bars.bar(positions + (index - (len(rows) - 1) / 2) * width, means, width, yerr=stds, capsize=3,
                 label=str(row["group"]), color=colour_of(index, len(rows)))
    bars.set_xticks(positions, [METRIC_TITLES[m] for m in METRICS])
    bars.set_ylabel("test mAP@all (error bars: sample std over seeds)")
    if lows:
        bars.set_ylim(max(0.0, min(lows) - 0.05), min(1.0, max(highs) + 0.02))
    if title:
        bars.set_title(title)
    bars.grid(axis="y", alpha=0.3)
    if differences is not None:
        _difference_panel(differences, rows, others, reference)
    last = differences if differences is not None else bars
    last.legend(*bars.get_legend_handles_labels(), fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                frameon=False)
    return write_figure(figure, path, bbox_inches="tight")


def _difference_panel(axes: Any, rows: list[dict[str, Any]], others: list[dict[str, Any]], reference: str) -> None:
    """Paired differences from the reference, with their intervals, in the colours of the bars."""
    colours = {row["group"]: colour_of(index, len(rows)) for index, row in enumerate(rows)}
    width = 0.8 / max(len(others), 1)
    positions = np.arange(len(METRICS))
    for index, row in enumerate(others):
        xs = positions + (index - (len(others) - 1) / 2) * width
        means = [row.get(f"{m}_diff") for m in METRICS]
        lows, highs = [row.get(f"{m}_diff_low") for m in METRICS], [row.get(f"{m}_diff_high") for m in METRICS]
        shown = [i for i, mean in enumerate(means) if mean is not None]
        intervals = [i for i in shown if lows[i] is not None]
        if len(intervals) == len(shown):
            errors = [[means[i] - lows[i] for i in shown], [highs[i] - means[i] for i in shown]]
        else:  # one seed: points without bars
            errors = None
        axes.errorbar([xs[i] for i in shown], [means[i] for i in shown], yerr=errors, fmt="o", capsize=4,
                      color=colours[row["group"]])
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xticks(positions, [METRIC_TITLES[m] for m in METRICS])
    axes.set_ylabel(f"paired difference from {reference}\n(error bars: 95 % paired t interval over seeds)")
    axes.set_title(f"difference from {reference}, same seeds")
    axes.grid(axis="y", alpha=0.3)


def _axis_values(values: list[Any]) -> tuple[list[float], list[str], bool]:
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    labels = [str(v) for v in values]
    if numeric:
        return [float(v) for v in values], labels, True
    return list(range(len(values))), labels, False


def lines(rows: list[dict[str, Any]], x_key: str, path: str | Path, series_key: str | None = None,
          metric: str | None = None, title: str = "") -> Path:
    """mAP against one swept key, with sample-std error bars.

    Without ``series_key``: one line per mAP (I→T, T→I, mean). With it: one line per value
    of ``series_key``, plotting ``metric`` (default the mean mAP).
    """
    figure, axes = _figure((6.4, 4.0))
    x_values = list(dict.fromkeys(row["values"][x_key] for row in rows))
    xs, labels, numeric = _axis_values(x_values)
    position = dict(zip(map(repr, x_values), xs))
    if series_key is None:
        series = [(METRIC_TITLES[m], m, rows) for m in METRICS]
    else:
        metric = metric or "avg_map"
        names = list(dict.fromkeys(row["values"][series_key] for row in rows))
        series = [(f"{series_key} = {name}", metric, [r for r in rows if r["values"][series_key] == name])
                  for name in names]
    for label, m, members in series:
        members = [r for r in members if r[f"{m}_mean"] is not None]
        axes.errorbar([position[repr(r["values"][x_key])] for r in members], [r[f"{m}_mean"] for r in members],
                      yerr=[_std(r[f"{m}_std"]) for r in members], marker="o", capsize=3, label=label)
    axes.set_xticks(xs, labels)
    axes.set_xlabel(x_key)
    axes.set_ylabel("test mAP@all" if series_key is None else f"test {METRIC_TITLES[metric]} mAP@all")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title)
    return write_figure(figure, path, bbox_inches="tight")


def heatmap(rows: list[dict[str, Any]], row_key: str, column_key: str, path: str | Path,
            metric: str = "avg_map", title: str = "") -> Path:
    """Mean ``metric`` over seeds for every pair of values of two swept keys, annotated."""
    row_values = list(dict.fromkeys(r["values"][row_key] for r in rows))
    column_values = list(dict.fromkeys(r["values"][column_key] for r in rows))
    grid = np.full((len(row_values), len(column_values)), np.nan)
    for r in rows:
        i = row_values.index(r["values"][row_key])
        j = column_values.index(r["values"][column_key])
        if r[f"{metric}_mean"] is not None:
            grid[i, j] = r[f"{metric}_mean"]
    figure, axes = _figure((1.4 + 0.9 * len(column_values), 1.2 + 0.55 * len(row_values)))
    image = axes.imshow(grid, cmap="viridis", aspect="auto")
    finite = grid[np.isfinite(grid)]
    middle = float(finite.mean()) if finite.size else 0.0
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if np.isfinite(grid[i, j]):
                axes.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize="small",
                          color="black" if grid[i, j] > middle else "white")
    axes.set_xticks(range(len(column_values)), [str(v) for v in column_values])
    axes.set_yticks(range(len(row_values)), [str(v) for v in row_values])
    axes.set_xlabel(column_key)
    axes.set_ylabel(row_key)
    figure.colorbar(image, ax=axes, label=f"test {METRIC_TITLES[metric]} mAP@all")
    if title:
        axes.set_title(title)
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
    axes = [axes] if len(keys) == 1 else list(axes)
    colours = [f"C{i}" for i in range(len(groups))]
    for colour, (label, histories) in zip(colours, groups.items()):
        for number, history in enumerate(histories):
            for axis, key in zip(axes, keys):
                points = [(row["epoch"], row[key]) for row in history if isinstance(row.get(key), (int, float))]
                if points:
                    epochs, values = zip(*points)
                    axis.plot(epochs, values, color=colour, linewidth=1.2, alpha=0.8,
                              label=label if number == 0 else None)
    for axis, key in zip(axes, keys):
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        figure.suptitle(title)
    return write_figure(figure, path, bbox_inches="tight")
