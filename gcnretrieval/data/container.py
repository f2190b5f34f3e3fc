"""The in-memory (or memory-mapped) form of a paired image-text dataset.

A :class:`CrossModalDataset` holds three :class:`Split` objects (train, test and an
optional validation split); each split is three row-aligned arrays: image features,
text features and a 0/1 multi-label matrix. Row ``i`` of the three arrays is one
image-text pair. Features are ``float32``; memory-mapped arrays (``np.memmap``) are kept
as they are, so a large dataset is read from disk only when its rows are used.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from gcnretrieval.data.rows import RowSelection, select_rows
from gcnretrieval.errors import DataError

# Rows per block when scanning features for NaN/inf: about 64 MiB of float32 per block,
# so a memory-mapped split is checked without reading it into memory at once.
_SCAN_BYTES = 64 * 2**20


def _as_float32(array: object, what: str) -> np.ndarray:
    """Return ``array`` as a 2-D float32 ndarray; float32 arrays (and memmaps) pass through."""
    if isinstance(array, (np.ndarray, RowSelection)) and array.dtype == np.float32:
        out = array
    else:
        if hasattr(array, "detach"):  # a torch tensor
            array = array.detach().cpu().numpy()
        out = np.asarray(array, dtype=np.float32)
    if out.ndim != 2:
        raise DataError(f"{what} must be a 2-D array (rows x columns), got shape {tuple(out.shape)}")
    return out


def default_label_names(num_labels: int) -> list[str]:
    """Generic names ``label00``, ``label01``, ... (two digits at least)."""
    width = max(2, len(str(max(num_labels - 1, 0))))
    return [f"label{j:0{width}d}" for j in range(num_labels)]


@dataclass
class Split:
    """One split of a paired dataset: row ``i`` of every array is one image-text pair.

    Args:
        image: image features, ``(n, d_v)`` float32 (``np.memmap`` allowed, kept as is).
        text: text features, ``(n, d_t)`` float32.
        labels: multi-hot labels, ``(n, C)`` float32 with values 0 and 1.

    Other dtypes are converted to float32 on construction (memory-mapped arrays of
    another dtype are then read into memory).
    """

    image: np.ndarray
    text: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.image = _as_float32(self.image, "image features")
        self.text = _as_float32(self.text, "text features")
        self.labels = _as_float32(self.labels, "labels")

    def __len__(self) -> int:
        return int(self.image.shape[0])

    @property
    def num_samples(self) -> int:
        """Number of pairs (image rows)."""
        return len(self)

    def subset(self, indices: np.ndarray) -> Split:
        """Rows ``indices`` of every array: a copy in memory, except memory-mapped features,
        which become a :class:`~gcnretrieval.data.rows.RowSelection` (read when indexed)."""
        index = np.asarray(indices, dtype=np.int64)
        return Split(
            image=select_rows(self.image, index),
            text=select_rows(self.text, index),
            labels=np.asarray(self.labels[index]),
        )


@dataclass
class CrossModalDataset:
    """A paired image-text dataset with train, test and optional validation splits.

    Args:
        name: dataset name used in logs and reports.
        train: the training split (label graphs are built from its labels only).
        test: the test split (queries and database of the retrieval evaluation).
        val: optional validation split used for model selection (default ``None``).
        label_names: one name per label column; ``None`` gives ``label00``, ... (default).
    """

    name: str
    train: Split
    test: Split
    val: Split | None = None
    label_names: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.label_names is None:
            self.label_names = default_label_names(self.num_labels)
        else:
            self.label_names = [str(label) for label in self.label_names]

    @property
    def image_dim(self) -> int:
        """Image feature dimension ``d_v``."""
        return int(self.train.image.shape[1])

    @property
    def text_dim(self) -> int:
        """Text feature dimension ``d_t``."""
        return int(self.train.text.shape[1])

    @property
    def num_labels(self) -> int:
        """Number of labels ``C``."""
        return int(self.train.labels.shape[1])

    def splits(self) -> Iterator[tuple[str, Split]]:
        """``(name, split)`` for train, val (when present) and test."""
        yield "train", self.train
        if self.val is not None:
            yield "val", self.val
        yield "test", self.test

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(split)}" for name, split in self.splits())
        return (
            f"CrossModalDataset({self.name!r}, {sizes}, image_dim={self.image_dim}, "
            f"text_dim={self.text_dim}, num_labels={self.num_labels})"
        )

    def validate(self) -> CrossModalDataset:
        """Check shapes, labels and feature values; raise :class:`DataError` on the first problem.

        Checks, in order: row counts agree within each split; feature and label widths agree
        with the training split; ``label_names`` has one name per label; labels are 0/1;
        every pair has at least one label; features are finite (scanned in blocks of about
        64 MiB, so memory-mapped splits stay on disk). Returns ``self``.
        """
        for name, split in self.splits():
            _check_rows(name, split)
        for name, split in self.splits():
            if name != "train":
                _check_widths(name, split, self.train)
        if len(self.label_names) != self.num_labels:
            raise DataError(
                f"dataset '{self.name}' has {len(self.label_names)} label names but "
                f"{self.num_labels} label columns; give exactly one name per label column"
            )
        for name, split in self.splits():
            _check_labels(name, split.labels)
        for name, split in self.splits():
            _check_finite(name, "image", split.image)
            _check_finite(name, "text", split.text)
        return self


def _check_rows(name: str, split: Split) -> None:
    rows = (split.image.shape[0], split.text.shape[0], split.labels.shape[0])
    if len(set(rows)) != 1:
        raise DataError(
            f"split '{name}' has {rows[0]} image rows, {rows[1]} text rows and {rows[2]} label rows; "
            "each row must be one image-text pair, so the three counts must be equal"
        )
    if rows[0] == 0:
        raise DataError(f"split '{name}' is empty; every split needs at least one image-text pair")


def _check_widths(name: str, split: Split, train: Split) -> None:
    for what, ours, theirs in (
        ("image feature dimension", split.image.shape[1], train.image.shape[1]),
        ("text feature dimension", split.text.shape[1], train.text.shape[1]),
        ("number of label columns", split.labels.shape[1], train.labels.shape[1]),
    ):
        if ours != theirs:
            raise DataError(
                f"{what} differs between train ({theirs}) and {name} ({ours}); "
                "all splits must come from the same feature extractor and label set"
            )


def _check_labels(name: str, labels: np.ndarray) -> None:
    labels = np.asarray(labels)
    bad = (labels != 0) & (labels != 1)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"split '{name}' labels must be 0/1 but contain {labels[row, col].item()!r} (row {row}, column {col}); "
            "convert class ids or scores to a multi-hot 0/1 matrix"
        )
    empty = np.flatnonzero(labels.sum(axis=1) == 0)
    if empty.size:
        raise DataError(
            f"split '{name}' has {empty.size} pair(s) without any label (first at row {empty[0]}); "
            "drop unlabelled pairs, every pair needs at least one label"
        )


def _check_finite(name: str, modality: str, features: np.ndarray) -> None:
    rows, dim = features.shape
    block = max(1, _SCAN_BYTES // max(1, 4 * dim))
    for start in range(0, rows, block):
        chunk = np.asarray(features[start : start + block])
        finite = np.isfinite(chunk)
        if not finite.all():
            row = start + int(np.argwhere(~finite)[0, 0])
            count = int((~finite).sum())
            raise DataError(
                f"split '{name}' {modality} features contain NaN or inf (first at row {row}, "
                f"{count} value(s) in rows {start}-{start + len(chunk) - 1}); clean or re-extract the features"
            )
