"""carve_validation: seeded, disjoint, complete, stable."""
from __future__ import annotations

import numpy as np
import pytest

from gcnretrieval.data import CrossModalDataset, Split, carve_validation
from gcnretrieval.errors import ConfigError


def _dataset(n=50):
    # row i carries its own index in the first image column, so rows can be traced
    image = np.zeros((n, 3), dtype=np.float32)
    image[:, 0] = np.arange(n)
    labels = np.ones((n, 2), dtype=np.float32)
    train = Split(image, np.ones((n, 2)), labels)
    return CrossModalDataset("d", train, Split(image[:4], np.ones((4, 2)), labels[:4]))


def _rows(split):
    return split.image[:, 0].astype(int).tolist()


def test_disjoint_complete_and_ordered():
    ds = _dataset()
    out = carve_validation(ds, fraction=0.2, seed=3)
    train, val = _rows(out.train), _rows(out.val)
    assert len(val) == 10 and len(train) == 40
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(50))
    assert train == sorted(train) and val == sorted(val)
    # rows stay aligned across the three arrays
    assert out.val.text.shape == (10, 2) and out.val.labels.shape == (10, 2)
    assert out.test is ds.test or np.array_equal(out.test.image, ds.test.image)
    assert ds.val is None and len(ds.train) == 50  # input untouched


def test_same_seed_same_split_other_seed_differs():
    ds = _dataset()
    assert _rows(carve_validation(ds, 0.2, seed=1).val) == _rows(carve_validation(ds, 0.2, seed=1).val)
    assert _rows(carve_validation(ds, 0.2, seed=1).val) != _rows(carve_validation(ds, 0.2, seed=2).val)


def test_existing_validation_split_is_kept():
    ds = carve_validation(_dataset(), 0.2, seed=0)
    assert carve_validation(ds, 0.5, seed=9) is ds


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_fraction(fraction):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        carve_validation(_dataset(), fraction)


def test_tiny_fraction_still_carves_one_pair():
    out = carve_validation(_dataset(5), fraction=0.01, seed=0)
    assert (len(out.train), len(out.val)) == (4, 1)
