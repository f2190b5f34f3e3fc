"""Atomic writes of the files an experiment produces (JSON, CSV, text, figures)."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["write_csv", "write_figure", "write_json", "write_text"]


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, value: Any) -> Path:
    """Write ``value`` as indented JSON (atomically)."""
    return write_text(path, json.dumps(value, indent=2) + "\n")


def write_csv(path: str | Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """Write ``rows`` (dicts) under the header ``columns`` (atomically); ``None`` is an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if row.get(key) is None else row.get(key)) for key in columns})
    return write_text(path, buffer.getvalue())


def write_figure(figure: Any, path: str | Path, dpi: int = 150) -> Path:
    """Save a matplotlib figure (format from the suffix) atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(figure)
    return path
