"""Row selections of memory-mapped arrays, read only when indexed."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RowSelection", "is_lazy", "select_rows"]


class RowSelection:
    """Rows ``index`` of a 2-D array (typically an ``np.memmap``), without copying them.

    Indexing reads only the rows asked for (``sel[a:b]``, ``sel[rows]``, ``sel[i]``);
    ``np.asarray(sel)`` reads them all. A carved split of a memory-mapped training set
    stays on disk this way.

    Args:
        base: the 2-D array rows are taken from.
        index: row numbers into ``base`` (any order).
    """

    ndim = 2

    def __init__(self, base: Any, index: np.ndarray) -> None:
        self.base = base
        self.index = np.asarray(index, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.index.shape[0]), int(self.base.shape[1]))

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        rows = self.index[key]
        out = np.asarray(self.base[rows])
        return out[(slice(None), *rest)] if rest and out.ndim == 2 else (out[rest] if rest else out)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.base[self.index])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"RowSelection({self.shape[0]} of {self.base.shape[0]} rows, dtype={self.dtype})"


def is_lazy(array: Any) -> bool:
    """True for arrays read from disk on demand (``np.memmap``, :class:`RowSelection`)."""
    return isinstance(array, (np.memmap, RowSelection))


def select_rows(array: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of ``array``: a :class:`RowSelection` for lazy arrays, else a copy."""
    index = np.asarray(index, dtype=np.int64)
    if isinstance(array, RowSelection):
        return RowSelection(array.base, array.index[index])
    if isinstance(array, np.memmap):
        return RowSelection(array, index)
    return np.asarray(array[index])
