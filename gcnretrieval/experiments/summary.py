"""Summaries of an experiment's cells: mean ± sample standard deviation over seeds, and the files that show them."""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from gcnretrieval.files import write_csv, write_json, write_text

__all__ = ["METRICS", "format_mean_std", "mean_std", "summarise", "write_summary"]

METRICS = ("i2t_map", "t2i_map", "avg_map")
METRIC_TITLES = {"i2t_map": "image → text", "t2i_map": "text → image", "avg_map": "mean"}


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and *sample* standard deviation (``ddof=1``); the std is ``None`` for one value."""
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def format_mean_std(mean: float | None, std: float | None, digits: int = 4) -> str:
    """``0.8123 ± 0.0041``; ``0.8123`` with one seed; ``—`` without a value."""
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarise(cells: list[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    """Group cell dicts by ``key(cell)`` (first-seen order) and reduce each group over its seeds.

    Returns one dict per group: ``group``, ``seeds``, ``<metric>_mean``, ``<metric>_std``
    for the three mAPs, ``seconds_per_epoch`` and ``fit_seconds`` (means).
    """
    groups: dict[Any, list[dict[str, Any]]] = {}
    for cell in cells:
        groups.setdefault(key(cell), []).append(cell)
    rows = []
    for group, members in groups.items():
        row: dict[str, Any] = {"group": group, "seeds": [m["seed"] for m in members]}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean_std([m[metric] for m in members])
        row["seconds_per_epoch"] = mean_std([m["seconds_per_epoch"] for m in members])[0]
        row["fit_seconds"] = mean_std([m["fit_seconds"] for m in members])[0]
        rows.append(row)
    return rows


def write_summary(out_dir: Path, stem: str, title: str, summary: dict[str, Any], rows: list[dict[str, Any]],
                  columns: list[str], table: str, figures: list[Path]) -> None:
    """``<stem>.json`` (``summary``), ``<stem>.csv`` (``rows`` under ``columns``) and ``<stem>.md`` (the table)."""
    seeds = summary["seeds"]
    write_json(out_dir / f"{stem}.json", {**summary, "std": "sample standard deviation over seeds (ddof=1)"})
    write_csv(out_dir / f"{stem}.csv", [{**row, "seeds": " ".join(map(str, row["seeds"]))} for row in rows], columns)
    text = [f"# {title}", "", f"Test mAP@all, mean ± sample standard deviation over seeds {', '.join(map(str, seeds))}.",
            "", table, "", *[f"![{f.stem}]({f.name})" for f in figures], ""]
    write_text(out_dir / f"{stem}.md", "\n".join(text))
