"""Small real datasets shipped inside the package.

``mirflickr-mini``
    730 real MIRFlickr-25K pairs (photos, Flickr tags, 24 labels): train 580, test 150;
    1,280-d ImageNet-pretrained EfficientNet-Lite0 image features (pooled, see
    :class:`~gcnretrieval.features.EfficientNetLite0Featurizer`), 1,386-d binary tag
    bag-of-words. Built by ``gcnretrieval prepare mirflickr``; see
    ``gcnretrieval/bundled/mirflickr_mini/ATTRIBUTION.md`` for the sources and licences.

Each folder also holds ``manifest.json``, the image of each row
(``train_images.txt``, ``test_images.txt``), the text vocabulary (``vocabulary.txt``)
and ``thumbnails/``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gcnretrieval.data.container import CrossModalDataset
from gcnretrieval.data.loaders import load_dataset
from gcnretrieval.defaults import MANIFEST
from gcnretrieval.errors import UnknownNameError, did_you_mean
from gcnretrieval.readers import read_json

__all__ = ["available_bundled", "bundled_label_vocabulary", "bundled_manifest", "bundled_path", "load_bundled"]

# dataset name -> folder under gcnretrieval/bundled/
_FOLDERS = {"mirflickr-mini": "mirflickr_mini"}


def available_bundled() -> list[str]:
    """Names of the datasets shipped with the package."""
    return sorted(_FOLDERS)


def bundled_path(name: str) -> Path:
    """The folder of the bundled dataset ``name`` (did-you-mean error when unknown)."""
    import gcnretrieval.bundled

    if name not in _FOLDERS:
        raise UnknownNameError(did_you_mean("bundled dataset", name, _FOLDERS))
    return Path(gcnretrieval.bundled.__file__).parent / _FOLDERS[name]


def bundled_manifest(name: str) -> dict[str, Any]:
    """The ``manifest.json`` of the bundled dataset ``name``."""
    return read_json(bundled_path(name) / MANIFEST, "dataset manifest (JSON)", "reinstall gcnretrieval")


def load_bundled(name: str, validate: bool = True) -> CrossModalDataset:
    """Load the bundled dataset ``name`` (e.g. ``"mirflickr-mini"``) from the package data."""
    return load_dataset(bundled_path(name), name=name, validate=validate)


def bundled_label_vocabulary(name: str) -> Any:
    """The label vocabulary of the bundled dataset ``name``: its label names, their word vectors
    (``label_node_features(..., "auto")``, as the ``demo`` recipe reads them) and the
    co-occurrence counts of its *training* labels, as a
    :class:`~gcnretrieval.graphs.LabelVocabulary` (``build_graph`` draws its label graph).

    A run's graph also leaves out the validation pairs it carves, so its counts differ slightly."""
    import numpy as np

    from gcnretrieval.graphs import LabelVocabulary, label_node_features

    dataset = load_bundled(name)
    labels = np.asarray(dataset.train.labels, dtype=np.int64)
    names = list(dataset.label_names)
    features = label_node_features(names, "auto").features
    return LabelVocabulary(name=name, label_names=names, node_features=np.asarray(features, dtype=np.float32),
                           cooccurrence=labels.T @ labels, num_images=len(dataset.train))
