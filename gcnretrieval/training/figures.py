"""Training curves: loss terms and retrieval mAP per epoch (matplotlib figures, PNG)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gcnretrieval.files import write_figure

__all__ = ["plot_history"]

_LOSS_TERMS = ("total", "circle_soft", "circle", "soft", "classification", "adversarial")


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in history:
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            xs.append(int(row["epoch"]))
            ys.append(float(value))
    return xs, ys


def plot_history(history: Sequence[dict[str, Any]], folder: str | Path, selected_epoch: int | None = None) -> list[Path]:
    """Write ``loss.png`` (each loss term and lambda) and ``map.png`` (I->T, T->I, mean) to ``folder``.

    ``history`` holds the rows of ``metrics.jsonl``. Returns the written paths.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    fig = Figure(figsize=(10, 4))
    ax, ax_lambda = fig.subplots(1, 2)
    for term in _LOSS_TERMS:
        xs, ys = _series(history, f"loss_{term}")
        if xs:
            ax.plot(xs, ys, marker="o", markersize=3, label=term)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (epoch mean)")
    ax.set_title("Training loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    xs, ys = _series(history, "lambda")
    ax_lambda.plot(xs, ys, marker="o", markersize=3, color="tab:purple")
    ax_lambda.set_xlabel("epoch")
    ax_lambda.set_ylabel("lambda")
    ax_lambda.set_title("Circle-Soft weight")
    ax_lambda.grid(alpha=0.3)
    fig.tight_layout()
    written.append(write_figure(fig, folder / "loss.png", dpi=120))

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    split = next((s for s in ("val", "test") if any(f"{s}_avg_map" in row for row in history)), "val")
    for key, label in (("i2t_map", "image → text"), ("t2i_map", "text → image"), ("avg_map", "mean")):
        xs, ys = _series(history, f"{split}_{key}")
        if xs:
            ax.plot(xs, ys, marker="o", markersize=3, label=label)
    if selected_epoch is not None:
        ax.axvline(selected_epoch, color="grey", linestyle="--", linewidth=1, label=f"selected (epoch {selected_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"mAP@all ({split})")
    ax.set_title("Retrieval mAP")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(write_figure(fig, folder / "map.png", dpi=120))
    return written
