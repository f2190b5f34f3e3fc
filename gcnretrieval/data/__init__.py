"""Paired image-text datasets: container, loaders and writers, catalog, bundled datasets, splits, synthetic data."""
from gcnretrieval.data.bundled import available_bundled, bundled_label_vocabulary, bundled_manifest, bundled_path, load_bundled
from gcnretrieval.data.catalog import (
    DATASETS,
    CatalogEntry,
    available_datasets,
    catalog_entry,
    load_catalog_dataset,
)
from gcnretrieval.data.container import CrossModalDataset, Split, default_label_names
from gcnretrieval.data.loaders import (
    expected_files,
    load_dataset,
    load_mat_dir,
    load_npy_dir,
    load_npz,
    read_mat_array,
    save_npy_dir,
    save_npz,
)
from gcnretrieval.data.splits import carve_validation
from gcnretrieval.data.synthetic import make_synthetic

__all__ = [
    "DATASETS",
    "CatalogEntry",
    "CrossModalDataset",
    "Split",
    "available_bundled",
    "bundled_label_vocabulary",
    "available_datasets",
    "bundled_manifest",
    "bundled_path",
    "carve_validation",
    "catalog_entry",
    "default_label_names",
    "expected_files",
    "load_bundled",
    "load_catalog_dataset",
    "load_dataset",
    "load_mat_dir",
    "load_npy_dir",
    "load_npz",
    "make_synthetic",
    "read_mat_array",
    "save_npy_dir",
    "save_npz",
]
