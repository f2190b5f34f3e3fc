"""The benchmark datasets this project knows by name: MIRFlickr-25K, NUS-WIDE, MS-COCO.

Their pre-extracted features (VGG19 fc7 images, bag-of-words texts) are distributed by
the community in the MATLAB layout read by :func:`gcnretrieval.data.load_mat_dir`:
the feature files linked from the README of the ``LivXue/GNN4CMR`` GitHub repository
(P-GNN / I-GNN, "Dual Adversarial Graph Neural Networks for Multi-label Cross-modal
Retrieval", AAAI 2021) for MIRFlickr, NUS-WIDE (top-21 concepts) and MS-COCO, and the
``penghu-cs/DSCMR`` repository, whose loader defines the same file names. Those links
point to cloud drives and cannot be fetched by this package; ``gcnretrieval prepare``
builds the same files from the raw images and tags instead.

Each entry records the expected shapes; dimensions are always read from the files.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gcnretrieval.data.container import CrossModalDataset, default_label_names
from gcnretrieval.data.loaders import expected_files, load_dataset
from gcnretrieval.errors import DataError, GcnRetrievalError
from gcnretrieval.registry import Registry

log = logging.getLogger(__name__)

_SOURCE = (
    "the pre-extracted features linked from the README of the GitHub repositories LivXue/GNN4CMR "
    "(MIRFlickr, NUS-WIDE top-21, MS-COCO) and penghu-cs/DSCMR (same file layout)"
)


@dataclass(frozen=True)
class CatalogEntry:
    """What is known about one benchmark dataset.

    Args:
        name: catalog name (``"mirflickr"``).
        title: human-readable name.
        num_labels: number of labels ``C``.
        image_dim: expected image feature dimension (VGG19 fc7).
        text_dim: expected text feature dimension, ``None`` when it depends on the
            vocabulary built by ``prepare`` (MS-COCO caption bag-of-words).
        num_pairs: image-text pairs after the usual cleaning.
        num_test: size of the test split.
    """

    name: str
    title: str
    num_labels: int
    image_dim: int
    text_dim: int | None
    num_pairs: int
    num_test: int = 2000

    @property
    def default_path(self) -> Path:
        """``data/<name>/`` relative to the working directory."""
        return Path("data") / self.name

    @property
    def source(self) -> str:
        """Where the community distributes the features."""
        return _SOURCE


DATASETS: Registry[CatalogEntry] = Registry("dataset")

for _entry in (
    CatalogEntry("mirflickr", "MIRFlickr-25K (cleaned, 24 labels)", 24, 4096, 1386, 20015),
    CatalogEntry("nuswide", "NUS-WIDE (21 most frequent concepts)", 21, 4096, 1000, 190421),
    CatalogEntry("mscoco", "MS-COCO 2014 (80 categories)", 80, 4096, None, 122218),
):
    DATASETS.register(_entry.name)(_entry)


def catalog_entry(name: str) -> CatalogEntry:
    """The :class:`CatalogEntry` called ``name`` (did-you-mean error when unknown)."""
    return DATASETS.get(name)


def available_datasets() -> list[str]:
    """Names of the catalog datasets."""
    return DATASETS.names()


def _has_files(path: Path) -> bool:
    if path.is_file():
        return True
    if not path.is_dir():
        return False
    return any(path.glob("*.mat")) or any(path.glob("*.npy")) or any(path.glob("*.npz"))


def load_catalog_dataset(name: str, path: str | Path | None = None, validate: bool = True) -> CrossModalDataset:
    """Load a catalog dataset from ``path`` (default ``data/<name>/``).

    The files may be in any format :func:`gcnretrieval.data.load_dataset` reads. The label
    count must match the catalog; feature dimensions are read from the files (a mismatch
    with the usual dimension is only logged). Label names come from the project's label
    vocabulary for ``name`` when it has one name per column, assuming the files' label
    columns follow that vocabulary's order (the order of the distributed label files).

    Raises:
        DataError: the files are missing (the message lists the files expected at that
            path and where to get them) or do not match the catalog entry.
    """
    entry = catalog_entry(name)
    path = Path(path) if path is not None else entry.default_path
    if not _has_files(path):
        raise DataError(
            f"no {entry.name} features at {path}/: expected {', '.join(expected_files('mat'))} "
            f"(or {', '.join(expected_files('npy'))}); get them from {entry.source}, "
            f"or build them with `gcnretrieval prepare {entry.name}`"
        )
    dataset = load_dataset(path, name=entry.name, validate=validate)
    if dataset.num_labels != entry.num_labels:
        raise DataError(
            f"{path} has {dataset.num_labels} label columns but {entry.name} has {entry.num_labels}; "
            "check that these are the right files"
        )
    for what, found, expected in (("image", dataset.image_dim, entry.image_dim), ("text", dataset.text_dim, entry.text_dim)):
        if expected is not None and found != expected:
            log.warning("%s: %s features are %d-d (the usual features are %d-d)", entry.name, what, found, expected)
    if dataset.label_names == default_label_names(dataset.num_labels):
        dataset.label_names = _vocabulary_names(entry.name, dataset.num_labels) or dataset.label_names
    return dataset


def _vocabulary_names(name: str, num_labels: int) -> list[str] | None:
    try:
        from gcnretrieval.graphs import load_label_vocabulary

        names = list(load_label_vocabulary(name).label_names)
    except (ImportError, AttributeError, GcnRetrievalError) as err:
        log.debug("no label vocabulary for %s (%s); keeping generic label names", name, err)
        return None
    return names if len(names) == num_labels else None
