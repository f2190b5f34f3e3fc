"""How numbers and tables are written in logs, reports and summaries: one place for each format.

The three test mAPs are ``METRIC_KEYS`` (:mod:`gcnretrieval.metrics`); :func:`maps_text` writes them
in a line, :func:`markdown_table` builds every markdown table of the reports.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gcnretrieval.metrics import METRIC_KEYS

__all__ = ["METRIC_TITLES", "map_number", "maps_text", "markdown_table", "significant"]

#: column titles of the three mAPs
METRIC_TITLES = {"i2t_map": "image → text", "t2i_map": "text → image", "avg_map": "mean"}


def map_number(value: float | None) -> str:
    """An mAP (or a loss) to four decimals; ``nan`` for a missing or non-finite value."""
    return "nan" if value is None or not math.isfinite(value) else f"{value:.4f}"


def maps_text(scores: Mapping[str, float], prefix: str = "") -> str:
    """``"i2t 0.6100 t2i 0.6300 mean 0.6200"`` from ``{prefix + "i2t_map": ..., ...}``."""
    names = {"i2t_map": "i2t", "t2i_map": "t2i", "avg_map": "mean"}
    return " ".join(f"{names[key]} {map_number(scores[prefix + key])}" for key in METRIC_KEYS)


def significant(value: Any, digits: int = 4, scale: float = 1.0) -> str:
    """A number to ``digits`` significant digits (divided by ``scale``); ``—`` for ``None``; other values as text."""
    if value is None:
        return "—"
    if isinstance(value, float) or (scale != 1.0 and isinstance(value, int)):
        return f"{value / scale:.{digits}g}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table: the header cells, a rule, and one line per row (cells written with ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
