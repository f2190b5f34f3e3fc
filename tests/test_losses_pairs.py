"""Multi-label pair masks against a plain loop."""
from __future__ import annotations

import pytest
import torch

from gcnretrieval.errors import DataError
from gcnretrieval.losses import multilabel_pair_masks


def test_masks_match_a_loop_over_label_overlaps():
    gen = torch.Generator().manual_seed(0)
    labels_a = (torch.rand(7, 5, generator=gen) < 0.3).float()
    labels_b = (torch.rand(4, 5, generator=gen) < 0.3).float()
    labels_a[0] = 0  # a sample without labels is negative with everything
    positive, negative = multilabel_pair_masks(labels_a, labels_b)
    assert positive.shape == negative.shape == (7, 4)
    assert positive.dtype == torch.bool
    for i in range(7):
        for j in range(4):
            shared = sum(int(labels_a[i, c]) * int(labels_b[j, c]) for c in range(5))
            assert bool(positive[i, j]) == (shared > 0)
            assert bool(negative[i, j]) == (shared == 0)


def test_self_pairs_are_kept_on_the_diagonal():
    labels = torch.tensor([[1, 0], [0, 1], [0, 0]])
    positive, negative = multilabel_pair_masks(labels, labels)
    assert positive.diagonal().tolist() == [True, True, False]
    assert negative.diagonal().tolist() == [False, False, True]


def test_label_vocabularies_must_match():
    with pytest.raises(DataError, match="columns"):
        multilabel_pair_masks(torch.ones(2, 3), torch.ones(2, 4))
