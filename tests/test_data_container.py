"""CrossModalDataset / Split: construction and every validate() error."""
from __future__ import annotations

import numpy as np
import pytest

from gcnretrieval.data import CrossModalDataset, Split, default_label_names
from gcnretrieval.data import container
from gcnretrieval.errors import DataError


def _split(n, dv=6, dt=4, c=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < 0.5).astype(np.float32)
    labels[np.arange(n), rng.integers(0, c, n)] = 1.0
    return Split(rng.random((n, dv), dtype=np.float32), rng.random((n, dt), dtype=np.float32), labels)


def _dataset(**changes):
    fields = dict(name="tiny", train=_split(10), test=_split(5, seed=1), val=None, label_names=None)
    fields.update(changes)
    return CrossModalDataset(**fields)


def test_properties_and_default_names():
    ds = _dataset()
    assert (ds.image_dim, ds.text_dim, ds.num_labels) == (6, 4, 3)
    assert ds.label_names == ["label00", "label01", "label02"]
    assert default_label_names(120)[:2] == ["label000", "label001"]
    assert [name for name, _ in ds.splits()] == ["train", "test"]
    assert ds.validate() is ds


def test_split_converts_to_float32_and_keeps_float32_memmaps(tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(4, 3))
    mm[:] = 1.0
    split = Split(mm, np.ones((4, 2), dtype=np.float64), np.ones((4, 1), dtype=bool))
    assert isinstance(split.image, np.memmap)
    assert split.text.dtype == np.float32 and split.labels.dtype == np.float32


def test_split_rejects_non_matrix():
    with pytest.raises(DataError, match="2-D"):
        Split(np.ones(4), np.ones((4, 2)), np.ones((4, 1)))


def test_row_counts_differ():
    bad = _split(10)
    bad.text = bad.text[:9]
    with pytest.raises(DataError, match=r"split 'train' has 10 image rows, 9 text rows and 10 label rows"):
        _dataset(train=bad).validate()


def test_train_test_dimension_mismatch():
    with pytest.raises(DataError, match=r"image feature dimension differs between train \(6\) and test \(7\)"):
        _dataset(test=_split(5, dv=7)).validate()
    with pytest.raises(DataError, match=r"text feature dimension differs between train \(4\) and val \(2\)"):
        _dataset(val=_split(5, dt=2)).validate()


def test_label_row_of_zeros():
    bad = _split(10)
    bad.labels[[3, 7]] = 0.0
    with pytest.raises(DataError, match=r"split 'train' has 2 pair\(s\) without any label \(first at row 3\)"):
        _dataset(train=bad).validate()


def test_labels_not_binary():
    bad = _split(5, seed=1)
    bad.labels[2, 1] = 2.0
    with pytest.raises(DataError, match=r"split 'test' labels must be 0/1 but contain 2.0 \(row 2, column 1\)"):
        _dataset(test=bad).validate()


def test_label_names_length():
    with pytest.raises(DataError, match="2 label names but 3 label columns"):
        _dataset(label_names=["a", "b"]).validate()


@pytest.mark.parametrize("modality", ["image", "text"])
def test_nan_or_inf_in_features(modality):
    bad = _split(10)
    getattr(bad, modality)[6, 1] = np.nan if modality == "image" else np.inf
    with pytest.raises(DataError, match=rf"split 'train' {modality} features contain NaN or inf \(first at row 6"):
        _dataset(train=bad).validate()


def test_nan_scan_of_a_memmap_in_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(container, "_SCAN_BYTES", 4 * 6 * 3)  # three rows per block
    mm = np.lib.format.open_memmap(tmp_path / "img.npy", mode="w+", dtype=np.float32, shape=(10, 6))
    mm[:] = 0.5
    mm[8, 0] = np.nan
    mm.flush()
    test = _split(10, seed=1)
    test.image = np.load(tmp_path / "img.npy", mmap_mode="r")
    with pytest.raises(DataError, match=r"split 'test' image features contain NaN or inf \(first at row 8, 1 value\(s\) in rows 6-8\)"):
        _dataset(test=test).validate()
