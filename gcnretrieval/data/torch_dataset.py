"""A split as a ``torch.utils.data.Dataset`` of whole batches."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from gcnretrieval.data.container import Split
from gcnretrieval.data.rows import is_lazy

__all__ = ["PairDataset", "batch_loader"]


def _float32(array: Any) -> np.ndarray:
    out = np.asarray(array, dtype=np.float32)
    return out if out.flags.writeable and out.flags.c_contiguous else np.array(out, order="C")


class PairDataset(Dataset):
    """The pairs of a :class:`~gcnretrieval.data.Split`, fetched a batch at a time.

    ``dataset[indices]`` (a list or 1-D tensor of row numbers) returns the
    ``(image, text, labels)`` float32 tensors of those rows, in that order, on ``device``.
    A split held in memory is converted to tensors once (and moved to ``device`` once);
    a memory-mapped split stays on disk and each batch reads its rows (in ascending
    order: the order of the rows within a batch does not matter to any loss).

    Args:
        split: the split.
        device: where the tensors go (default: the CPU).
    """

    def __init__(self, split: Split, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        arrays = (split.image, split.text, split.labels)
        self.lazy = any(is_lazy(a) for a in arrays)
        self.arrays = arrays if self.lazy else None
        self.tensors = None if self.lazy else tuple(torch.from_numpy(_float32(a)).to(self.device) for a in arrays)
        self.size = len(split)
        self.labels = split.labels

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, indices: Any) -> tuple[Tensor, Tensor, Tensor]:
        if self.lazy:
            rows = np.sort(np.asarray(indices, dtype=np.int64))
            return tuple(torch.from_numpy(_float32(a[rows])).to(self.device) for a in self.arrays)
        index = torch.as_tensor(indices, dtype=torch.long)
        if self.device.type == "cuda":  # an asynchronous copy needs page-locked memory
            index = index.pin_memory()
        index = index.to(self.device, non_blocking=True)
        return tuple(t.index_select(0, index) for t in self.tensors)


def _as_is(batch: Any) -> Any:
    return batch


def batch_loader(dataset: Dataset, batch_sampler: Sampler | None = None, batch_size: int = 1024) -> DataLoader:
    """A ``DataLoader`` whose sampler yields whole batches of row numbers (default: in order).

    Each batch is one ``dataset[indices]`` call (PyTorch's loading with automatic batching
    disabled), so a batch costs one gather instead of one call per row.
    """
    if batch_sampler is None:
        batch_sampler = BatchSampler(SequentialSampler(range(len(dataset))), batch_size, drop_last=False)
    return DataLoader(dataset, sampler=batch_sampler, batch_size=None, collate_fn=_as_is)
