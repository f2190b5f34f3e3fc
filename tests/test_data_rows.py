"""Carved splits of memory-mapped data stay on disk (RowSelection) and read the right rows."""
from __future__ import annotations

import numpy as np

from gcnretrieval.data import carve_validation, load_dataset, make_synthetic
from gcnretrieval.data.loaders import save_npy_dir
from gcnretrieval.data.rows import RowSelection, is_lazy, select_rows


def test_row_selection_reads_the_selected_rows(tmp_path):
    base = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.save(tmp_path / "a.npy", base)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    index = np.array([7, 2, 9, 0])
    sel = select_rows(mapped, index)
    assert isinstance(sel, RowSelection) and is_lazy(sel)
    assert sel.shape == (4, 4) and len(sel) == 4 and sel.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(sel), base[index])
    np.testing.assert_array_equal(sel[1:3], base[index[1:3]])
    np.testing.assert_array_equal(sel[np.array([3, 0])], base[index[[3, 0]]])
    np.testing.assert_array_equal(sel[2], base[9])
    nested = select_rows(sel, np.array([1, 3]))
    np.testing.assert_array_equal(np.asarray(nested), base[[2, 0]])
    plain = select_rows(base, index)
    assert isinstance(plain, np.ndarray) and not is_lazy(plain)


def test_carved_memmap_split_stays_lazy(tmp_path):
    dataset = make_synthetic(num_train=30, num_test=5, num_labels=4, image_dim=6, text_dim=5, seed=1)
    save_npy_dir(dataset, tmp_path / "d")
    mapped = load_dataset(tmp_path / "d")
    carved = carve_validation(mapped, 0.2, seed=3)
    in_memory = carve_validation(dataset, 0.2, seed=3)
    for name in ("train", "val"):
        lazy, copy = getattr(carved, name), getattr(in_memory, name)
        assert is_lazy(lazy.image) and is_lazy(lazy.text)
        np.testing.assert_array_equal(np.asarray(lazy.image), copy.image)
        np.testing.assert_array_equal(np.asarray(lazy.text), copy.text)
        np.testing.assert_array_equal(lazy.labels, copy.labels)
    carved.validate()
