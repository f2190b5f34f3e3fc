"""What a run's dataset folder tells about its items: image names, thumbnails, vocabulary, featurizer.

A dataset written by ``gcnretrieval prepare`` (and the bundled ``mirflickr-mini``) has a
``manifest.json`` next to its arrays, with ``test_images.txt`` (the image of each test
row), ``vocabulary.txt`` (the words of the text features, in column order), optionally
``thumbnails/`` and the identity of the image featurizer. Synthetic data and bare
``.npz``/``.mat`` files have none of these: their items are known by index only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcnretrieval.defaults import MANIFEST
from gcnretrieval.errors import DataError
from gcnretrieval.readers import read_json, read_text

log = logging.getLogger(__name__)

__all__ = ["DatasetSources", "dataset_sources"]


def _dataset_folder(config: Any) -> Path | None:
    """The folder holding the run's data files (``None`` for synthetic data)."""
    data = config.data
    if data.source == "bundled":
        from gcnretrieval.data.bundled import bundled_path

        return bundled_path(data.dataset)
    if data.source != "files" or data.path is None:
        return None
    path = Path(data.path)
    return path if path.is_dir() else path.parent


_FIX = "write the dataset folder again with `gcnretrieval prepare`"


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in read_text(path, "list (UTF-8 text)", _FIX).splitlines() if line.strip()]


@dataclass
class DatasetSources:
    """Item identities of a run's test split, when its dataset folder records them.

    Attributes:
        folder: the dataset folder with ``manifest.json`` (``None`` when there is none).
        manifest: the manifest (empty when there is none).
        test_images: the image file of each test row (``None`` when unknown).
        vocabulary: the word of each text-feature column (``None`` when unknown).
        thumbnails: the thumbnail folder (``None`` when there is none).
    """

    folder: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    test_images: list[str] | None = None
    vocabulary: list[str] | None = None
    thumbnails: Path | None = None

    def thumbnail(self, index: int) -> Path | None:
        """The thumbnail file of test image ``index``, if there is one."""
        if self.thumbnails is None or self.test_images is None:
            return None
        path = self.thumbnails / self.test_images[index]
        return path if path.is_file() else None

    def text_words(self, features: np.ndarray) -> list[str] | None:
        """The vocabulary words present in one bag-of-words row (``None`` without a vocabulary)."""
        if self.vocabulary is None:
            return None
        return [self.vocabulary[j] for j in np.flatnonzero(np.asarray(features) > 0)]

    @property
    def fixed_tag_list(self) -> bool:
        """Whether the text features are a fixed tag list (else words learned from captions)."""
        source = str(self.manifest.get("text_features", {}).get("vocabulary_source", ""))
        return "words of the training texts" not in source

    def image_featurizer(self) -> Any:
        """The featurizer that made the image features, rebuilt from the manifest.

        Raises:
            DataError: the dataset records no featurizer, or one that cannot be rebuilt.
        """
        identity = self.manifest.get("image_features")
        if not identity:
            raise DataError("image-file queries need the dataset's image featurizer, and this run's data record none "
                            "(no manifest.json from `gcnretrieval prepare`); query a test item with --query-id instead")
        from gcnretrieval.features import EfficientNetLite0Featurizer, HistogramFeaturizer, VGG19Featurizer

        name = identity.get("name")
        if name == EfficientNetLite0Featurizer.name:
            return _efficientnet_featurizer(identity)
        if name == "histogram":
            return HistogramFeaturizer(size=int(identity.get("size", 128)))
        if name == VGG19Featurizer.name:
            weights = identity.get("weights")
            if not isinstance(weights, dict):
                raise DataError("the dataset's images were featurised with random VGG19 weights, which cannot be "
                                "reproduced for a query image; query a test item with --query-id instead")
            featurizer = VGG19Featurizer("imagenet")
            if weights.get("sha256") and featurizer.weights_sha256 != weights["sha256"]:
                raise DataError(f"the VGG19 weights at {featurizer.weights_file} differ from the ones the dataset was "
                                f"prepared with ({weights.get('file')}); put those weights there")
            return featurizer
        raise DataError(f"the dataset's image featurizer '{name}' is unknown to this version; "
                        "query a test item with --query-id instead")


def _efficientnet_featurizer(identity: dict[str, Any]) -> Any:
    """The EfficientNet-Lite0 featurizer a manifest records: the same preprocessing, the same weights file."""
    from gcnretrieval.features import EFFICIENTNET_LITE0_PACKAGE, EfficientNetLite0Featurizer

    weights = identity.get("weights")
    if not isinstance(weights, dict):
        raise DataError("the dataset's images were featurised with random EfficientNet-Lite0 weights, which cannot be "
                        "reproduced for a query image; query a test item with --query-id instead")
    preprocessing = identity.get("preprocessing")
    if not isinstance(preprocessing, dict):
        raise DataError("the dataset's manifest records no preprocessing for its EfficientNet-Lite0 features; "
                        "prepare the dataset again with this version, or query a test item with --query-id")
    allowed = ("resize", "crop", "interpolation", "mean", "std")
    featurizer = EfficientNetLite0Featurizer(
        "imagenet", **{key: preprocessing[key] for key in allowed if key in preprocessing})
    if weights.get("sha256") and featurizer.weights_sha256 != weights["sha256"]:
        raise DataError(f"the EfficientNet-Lite0 weights at {featurizer.weights_file} differ from the ones the dataset "
                        f"was prepared with ({weights.get('file')}); install the {EFFICIENTNET_LITE0_PACKAGE} version "
                        "the dataset was prepared with")
    return featurizer


def dataset_sources(config: Any, num_test: int) -> DatasetSources:
    """The :class:`DatasetSources` of a run's configuration (its test split has ``num_test`` rows)."""
    folder = _dataset_folder(config)
    if folder is None or not (folder / MANIFEST).is_file():
        return DatasetSources()
    manifest = read_json(folder / MANIFEST, "dataset manifest (JSON)", _FIX)
    sources = DatasetSources(folder=folder, manifest=manifest)
    lists = manifest.get("image_lists") or {}
    test_list = folder / lists.get("test", "test_images.txt")
    if test_list.is_file():
        names = _read_lines(test_list)
        if len(names) == num_test:
            sources.test_images = names
        else:
            log.warning("%s lists %d images for %d test rows; image names ignored", test_list, len(names), num_test)
    vocabulary_file = folder / (manifest.get("text_features") or {}).get("vocabulary_file", "vocabulary.txt")
    if vocabulary_file.is_file():
        sources.vocabulary = _read_lines(vocabulary_file)
    thumbnails = manifest.get("thumbnails") or {}
    if thumbnails and (folder / thumbnails.get("folder", "thumbnails")).is_dir():
        sources.thumbnails = folder / thumbnails.get("folder", "thumbnails")
    return sources
