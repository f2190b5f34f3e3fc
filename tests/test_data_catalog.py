"""Catalog datasets: entries, missing-file errors, loading from a local path, label names."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import gcnretrieval.graphs
from gcnretrieval.data import (
    CrossModalDataset,
    Split,
    available_datasets,
    catalog_entry,
    load_catalog_dataset,
    save_npy_dir,
)
from gcnretrieval.errors import DataError, UnknownNameError


def _dataset(num_labels, n=6):
    rng = np.random.default_rng(0)
    labels = np.zeros((n, num_labels), dtype=np.float32)
    labels[np.arange(n), np.arange(n) % num_labels] = 1.0
    split = Split(rng.random((n, 8), dtype=np.float32), rng.random((n, 5), dtype=np.float32), labels)
    return CrossModalDataset("x", split, split)


def test_entries():
    assert available_datasets() == ["mirflickr", "mscoco", "nuswide"]
    assert [catalog_entry(n).num_labels for n in ("mirflickr", "nuswide", "mscoco")] == [24, 21, 80]
    assert [catalog_entry(n).text_dim for n in ("mirflickr", "nuswide", "mscoco")] == [1386, 1000, None]
    assert all(catalog_entry(n).image_dim == 4096 for n in available_datasets())
    assert str(catalog_entry("nuswide").default_path) == "data/nuswide"
    assert "LivXue/GNN4CMR" in catalog_entry("mirflickr").source


def test_unknown_name_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'mirflickr'"):
        catalog_entry("mirflikr")


def test_missing_files_lists_expected_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as info:
        load_catalog_dataset("mirflickr")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("no mirflickr features at data/mirflickr/: expected train_img.mat, train_txt.mat, train_lab.mat")
    for name in ("test_img.mat", "test_txt.mat", "test_lab.mat", "img_train.npy", "LivXue/GNN4CMR", "gcnretrieval prepare mirflickr"):
        assert name in message
    with pytest.raises(DataError, match=f"no nuswide features at {tmp_path / 'elsewhere'}/"):
        load_catalog_dataset("nuswide", tmp_path / "elsewhere")


def test_loads_local_files_and_takes_vocabulary_names(tmp_path, monkeypatch):
    @dataclass
    class Vocabulary:
        label_names: list

    names = [f"name{j}" for j in range(21)]
    monkeypatch.setattr(gcnretrieval.graphs, "load_label_vocabulary", lambda name: Vocabulary(names), raising=False)
    save_npy_dir(_dataset(21), tmp_path / "nus")
    (tmp_path / "nus" / "label_names.npy").unlink()  # like the community .mat files: no names
    ds = load_catalog_dataset("nuswide", tmp_path / "nus")
    assert ds.name == "nuswide" and ds.num_labels == 21
    assert ds.label_names == names
    assert isinstance(ds.train.image, np.memmap)


def test_explicit_label_names_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(gcnretrieval.graphs, "load_label_vocabulary", lambda name: 1 / 0, raising=False)
    ds = _dataset(24)
    ds.label_names = [f"own{j}" for j in range(24)]
    save_npy_dir(ds, tmp_path / "mir")
    assert load_catalog_dataset("mirflickr", tmp_path / "mir").label_names == ds.label_names


def test_label_count_must_match(tmp_path):
    save_npy_dir(_dataset(5), tmp_path / "coco")
    with pytest.raises(DataError, match="has 5 label columns but mscoco has 80"):
        load_catalog_dataset("mscoco", tmp_path / "coco")
