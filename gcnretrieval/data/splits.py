"""Carve a seeded validation split out of the training split."""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from gcnretrieval.data.container import CrossModalDataset
from gcnretrieval.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def carve_validation(dataset: CrossModalDataset, fraction: float = 0.1, seed: int = 0) -> CrossModalDataset:
    """Move a random ``fraction`` of the training pairs into a validation split.

    The rows are drawn with ``numpy.random.default_rng(seed)``, so the same seed gives the
    same split; both parts keep the original row order and never overlap. The test split
    is untouched. A dataset that already has a validation split is returned unchanged
    (a split shipped with the data wins over a carved one).

    Args:
        dataset: the dataset to split.
        fraction: share of the training pairs moved to validation, in ``(0, 1)``
            (default ``0.1``); at least one pair goes to each part.
        seed: seed of the random draw (default ``0``).

    Returns:
        A new :class:`CrossModalDataset`; the input is not modified. Both new splits are
        in-memory copies, except memory-mapped features, which stay on disk as row
        selections (:class:`~gcnretrieval.data.rows.RowSelection`).
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"validation fraction must be between 0 and 1 (exclusive), got {fraction}")
    if dataset.val is not None:
        log.info("%s already has a validation split of %d pairs; keeping it", dataset.name, len(dataset.val))
        return dataset
    num_train = len(dataset.train)
    if num_train < 2:
        raise DataError(f"cannot carve a validation split from {num_train} training pair(s); need at least 2")
    num_val = min(num_train - 1, max(1, int(round(fraction * num_train))))
    order = np.random.default_rng(seed).permutation(num_train)
    val_rows = np.sort(order[:num_val])
    train_rows = np.sort(order[num_val:])
    log.info("%s: carved %d validation pairs from %d training pairs (seed %d)", dataset.name, num_val, num_train, seed)
    return replace(dataset, train=dataset.train.subset(train_rows), val=dataset.train.subset(val_rows))
