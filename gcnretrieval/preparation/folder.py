"""Your own data: a folder of images plus a table of pairs.

The table is a CSV file (header ``file,text,labels``; labels separated by ``|``) or a
JSON Lines file (one object per line with keys ``file``, ``text`` and ``labels``, the
labels a list of names or a ``|``-separated string). ``file`` is relative to the image
folder. The label list is given (its order is the column order) or, by default, the
sorted set of the labels that occur.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from gcnretrieval.defaults import DEFAULT_TOP_K
from gcnretrieval.errors import DataError
from gcnretrieval.preparation.common import RawPairs, WriteOptions, write_prepared_dataset
from gcnretrieval.readers import read_text, unreadable

log = logging.getLogger(__name__)

__all__ = ["prepare_folder", "read_folder"]

_COLUMNS = ("file", "text", "labels")


def _read_rows(table: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of each pair in a CSV or JSONL table."""
    if not table.is_file():
        raise DataError(f"table {table} does not exist; give a CSV or JSONL file with columns file, text, labels")
    rows: list[tuple[int, dict[str, Any]]] = []
    kind, fix = "table of pairs", "save it as UTF-8 CSV or JSONL with columns file, text, labels"
    if table.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(read_text(table, kind, fix).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise DataError(f"{table} line {number} is not valid JSON ({err.args[0]}); write one object per line") from None
            if not isinstance(record, dict):
                raise DataError(f"{table} line {number} is not a JSON object with keys file, text, labels")
            rows.append((number, record))
    elif table.suffix.lower() == ".csv":
        with unreadable(table, kind, fix, catch=(csv.Error,)):
            reader = csv.DictReader(io.StringIO(read_text(table, kind, fix), newline=""))
            absent = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
            if absent:
                raise DataError(f"{table} lacks the column(s) {', '.join(absent)}; its header must name file, text and labels")
            rows = [(reader.line_num, dict(record)) for record in reader]
    else:
        raise DataError(f"table {table} must be a .csv or .jsonl file")
    if not rows:
        raise DataError(f"table {table} holds no pairs")
    return rows


def _labels_of(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        names = [v.strip() for v in value.split("|")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value]
    else:
        raise DataError(f"{where}: labels must be a list of names or a '|'-separated string, got {value!r}")
    names = [n for n in names if n]
    if not names:
        raise DataError(f"{where} has no label; every pair needs at least one")
    return names


def read_folder(images: str | Path, table: str | Path, label_names: list[str] | None = None) -> RawPairs:
    """Read a table of pairs (see the module docstring) into :class:`RawPairs`.

    Args:
        images: the image folder.
        table: the ``.csv`` or ``.jsonl`` file.
        label_names: the labels in column order (default ``None``: the sorted labels found).

    Raises:
        DataError: a row names a missing file or a label outside ``label_names``, has an
            empty text or no label (the message gives the row's line number).
    """
    images, table = Path(images), Path(table)
    if not images.is_dir():
        raise DataError(f"image folder {images} does not exist")
    records = []
    for number, record in _read_rows(table):
        where = f"{table.name} row {number}"
        missing = [c for c in _COLUMNS if c not in record]
        if missing:
            raise DataError(f"{where} lacks {', '.join(missing)}; every row needs file, text and labels")
        name = str(record["file"] or "").strip()
        if not name:
            raise DataError(f"{where} has an empty file name")
        path = images / name
        if not path.is_file():
            raise DataError(f"{where} names {name}, which is not in {images}; fix the row or add the image")
        text = record["text"]
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where} has an empty text; every pair needs a text")
        records.append((path, name, text.strip(), _labels_of(record["labels"], where), where))
    if label_names is None:
        label_names = sorted({label for *_, labels, _ in records for label in labels})
    index = {label: j for j, label in enumerate(label_names)}
    matrix = np.zeros((len(records), len(label_names)), dtype=np.float32)
    for row, (*_, labels, where) in enumerate(records):
        for label in labels:
            if label not in index:
                from gcnretrieval.errors import did_you_mean

                raise DataError(f"{where}: {did_you_mean('label', label, label_names)}")
            matrix[row, index[label]] = 1.0
    return RawPairs(
        image_files=[r[0] for r in records],
        image_names=[Path(r[1]).as_posix() for r in records],
        texts=[r[2] for r in records],
        labels=matrix,
        label_names=list(label_names),
        source_files={"table": table},
    )


def prepare_folder(
    images: str | Path,
    table: str | Path,
    output: str | Path,
    *,
    label_names: list[str] | None = None,
    vocabulary: str | Path | None = None,
    separator: str | None = ",",
    top_k: int = DEFAULT_TOP_K,
    name: str | None = None,
    **options: Unpack[WriteOptions],
) -> Path:
    """Build a dataset folder from your own images and table.

    Args:
        images, table, label_names: see :func:`read_folder`.
        output: the output folder.
        vocabulary: a tag-list file (one tag per line): texts are then tag strings split
            on ``separator`` (default ``","``; ``None`` = whitespace). Default ``None``:
            the ``top_k`` most frequent words of the training texts (default ``2000``).
        name: dataset name (default: the output folder's name).

    The other options are those of :func:`~gcnretrieval.preparation.write_prepared_dataset`.
    Returns the output folder.
    """
    from gcnretrieval.features import BagOfWords, read_vocabulary

    pairs = read_folder(images, table, label_names)
    if vocabulary is not None:
        encoder = BagOfWords(read_vocabulary(vocabulary), separator=separator)
        source = f"{Path(vocabulary).name} (fixed tag list)"
        pairs.source_files["vocabulary"] = Path(vocabulary)
    else:
        encoder = BagOfWords(top_k=top_k)
        source = f"top {top_k} words of the training texts (English stop words removed)"
    return write_prepared_dataset(
        name or Path(output).name, pairs, output, encoder, vocabulary_source=source, **options,
    )
