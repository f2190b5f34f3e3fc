"""Training curves: loss terms and retrieval mAP per epoch (matplotlib figures, PNG)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

from gcnretrieval.files import write_figure
from gcnretrieval.formatting import METRIC_TITLES

__all__ = ["HISTORY_FIGURES", "LOSS_FIGURE", "MAP_FIGURE", "plot_history"]

#: the figures of a run's history in its ``figures/`` folder: the loss terms, and the mAPs
LOSS_FIGURE, MAP_FIGURE = "loss.png", "map.png"
HISTORY_FIGURES = (LOSS_FIGURE, MAP_FIGURE)


def _draw(ax: Axes, history: Sequence[dict[str, Any]], lines: Sequence[tuple[str, str | None]], ylabel: str,
          title: str, **style: Any) -> None:
    """One line per ``(key, label)`` of ``lines`` that has finite values, over their epochs, with a grid."""
    for key, label in lines:
        rows = [row for row in history if isinstance(row.get(key), (int, float)) and math.isfinite(row[key])]
        if rows:
            ax.plot([row["epoch"] for row in rows], [row[key] for row in rows], marker="o", markersize=3, label=label,
                    **style)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)


def plot_history(history: Sequence[dict[str, Any]], folder: str | Path, selected_epoch: int | None = None) -> list[Path]:
    """Write ``loss.png`` (each loss term and lambda) and ``map.png`` (I->T, T->I, mean) to ``folder``.

    ``history`` holds the rows of ``metrics.jsonl``. Returns the written paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10, 4), layout="tight")
    ax, ax_lambda = fig.subplots(1, 2)
    terms = dict.fromkeys(key for row in history for key in row if key.startswith("loss_"))  # the objective's parts
    _draw(ax, history, [(key, key[len("loss_"):]) for key in terms], "loss (epoch mean)", "Training loss")
    ax.legend(fontsize=8)
    _draw(ax_lambda, history, [("lambda", None)], "lambda", "Circle-Soft weight", color="tab:purple")
    written = [write_figure(fig, folder / LOSS_FIGURE, dpi=120)]

    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    split = next((s for s in ("val", "test") if any(f"{s}_avg_map" in row for row in history)), "val")
    _draw(ax, history, [(f"{split}_{key}", label) for key, label in METRIC_TITLES.items()], f"mAP@all ({split})",
          "Retrieval mAP")
    if selected_epoch is not None:
        ax.axvline(selected_epoch, color="grey", linestyle="--", linewidth=1, label=f"selected (epoch {selected_epoch})")
    ax.legend(fontsize=8)
    return [*written, write_figure(fig, folder / MAP_FIGURE, dpi=120)]
