"""Files and folders that appear whole or not at all.

Everything the package writes goes through a temporary name in the destination's folder
(unique per writer, so two processes never share one) and one rename, so a crash or an
error leaves the old content or nothing, never half a file. Temporary files and folders
are created like any other file: their permissions follow the user's umask.
"""
from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gcnretrieval.errors import ConfigError

#: what a user is told whose output folder holds something else (another run, tuning, or no run at all)
OTHER_FOLDER = "choose another --out or --name, or move or delete it"

__all__ = ["OTHER_FOLDER", "atomic_directory", "atomic_path", "check_not_in_the_way", "write_csv", "write_figure",
           "write_json", "write_text"]


def _temporary_name(path: Path) -> Path:
    # keep the real suffix last: writers such as np.save or savefig go by it
    return path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path``; it replaces ``path`` when the block succeeds.

    The block writes the file itself (``torch.save(state, tmp)``, ``figure.savefig(tmp)``);
    on any error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, value: Any) -> Path:
    """Write ``value`` as indented JSON, atomically."""
    return write_text(path, json.dumps(value, indent=2) + "\n")


def write_csv(path: str | Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """Write ``rows`` under the header ``columns``, atomically; ``None`` is an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)  # the csv module writes None, and a missing key, as an empty cell
    return write_text(path, buffer.getvalue())


def write_figure(figure: Any, path: str | Path, dpi: int = 150, **options: Any) -> Path:
    """Save a matplotlib figure (format from the suffix) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, **options)
    return path


@contextmanager
def atomic_directory(path: str | Path, replace: bool = False) -> Iterator[Path]:
    """Yield a fresh staging folder next to ``path``; it becomes ``path`` when the block succeeds.

    ``path`` may be absent or an empty folder (which the staging folder replaces); the
    rename fails with ``OSError`` if something else appeared there meanwhile. With
    ``replace``, an existing ``path`` is deleted just before the rename. On any error the
    staging folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _temporary_name(path)
    staging.mkdir()
    try:
        yield staging
        if replace and path.exists():
            shutil.rmtree(path)
        os.rename(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after the rename


def check_not_in_the_way(path: Path, what: str, marker: str, ignore: tuple[str, ...] = ()) -> None:
    """Refuse a ``path`` that exists without ``marker`` (the file that makes it ``what``), unless it is an
    empty folder or holds only ``ignore``: ``ConfigError("<path> is in the way ...")``, never deleted."""
    if path.exists() and not (path / marker).is_file() and (
            not path.is_dir() or any(entry.name not in ignore for entry in path.iterdir())):
        raise ConfigError(f"{path} is in the way: it exists and holds no {marker}, so it is not {what}; "
                          f"{OTHER_FOLDER}")
