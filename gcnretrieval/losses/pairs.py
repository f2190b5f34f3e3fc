"""Multi-label positive / negative pair masks."""
from __future__ import annotations

import torch
from torch import Tensor

from gcnretrieval.errors import DataError
from gcnretrieval.losses._checks import check_labels
from gcnretrieval.losses.pair_kernels import label_overlap


def multilabel_pair_masks(labels_a: Tensor, labels_b: Tensor) -> tuple[Tensor, Tensor]:
    r"""Positive and negative pair masks for multi-label samples.

    .. math::
        P_{ij} = [\mathbf{y}^a_i \cdot \mathbf{y}^b_j > 0], \qquad N_{ij} = 1 - P_{ij}

    Two samples form a positive pair when they share at least one label, a negative pair
    when they share none. A sample without any label is negative with everything.

    Self-pairs are *not* removed: with ``labels_a is labels_b`` a labelled sample is
    positive with itself (the diagonal). Callers decide what to drop (the Circle loss keeps
    ``i < j`` or ``j != i``; the soft contrastive loss keeps the diagonal).

    Args:
        labels_a: multi-hot 0/1 labels of the rows.
        labels_b: multi-hot 0/1 labels of the columns.

    Shapes:
        - **input:** :math:`(n_a, C)`, :math:`(n_b, C)`
        - **output:** two boolean :math:`(n_a, n_b)` masks, complementary
    """
    check_labels(labels_a)
    check_labels(labels_b)
    if labels_a.size(1) != labels_b.size(1):
        raise DataError(
            f"label matrices have {labels_a.size(1)} and {labels_b.size(1)} columns; "
            "both must use the same label vocabulary"
        )
    positive = label_overlap(labels_a, labels_b, torch.float32) > 0
    return positive, ~positive

