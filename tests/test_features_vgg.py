"""VGG19 fc7 features (random weights: offline), the missing-weights error, resumable extraction."""
from __future__ import annotations

import numpy as np
from damage import truncate
import pytest
import torch
from PIL import Image

from gcnretrieval.errors import DataError
from gcnretrieval.features import (
    HistogramFeaturizer,
    VGG19Featurizer,
    default_vgg19_weights_path,
    extract_image_features,
    extract_vgg19_features,
    vgg19_weights_url,
)


def _write_images(folder, count, size=(60, 40)):
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def random_vgg():
    torch.manual_seed(0)
    return VGG19Featurizer(weights=None, device="cpu")


def test_random_weights_give_4096_non_negative_features(tmp_path, random_vgg):
    paths = _write_images(tmp_path, 2)
    features = extract_image_features(paths, random_vgg, batch_size=2)
    assert features.shape == (2, 4096) and features.dtype == np.float32
    assert (features >= 0).all() and np.isfinite(features).all()
    assert (features > 0).any()


def test_classifier_is_cut_after_the_fc7_relu(random_vgg):
    featurizer = random_vgg
    layers = list(featurizer.network.classifier)
    assert [type(layer).__name__ for layer in layers] == ["Linear", "ReLU", "Dropout", "Linear", "ReLU"]
    assert layers[3].out_features == 4096
    assert not featurizer.network.training  # eval mode: the dropout is the identity
    assert featurizer.identity()["weights"] == "random"


def test_missing_weights_name_the_file_to_fetch_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert default_vgg19_weights_path() == expected
    with pytest.raises(DataError) as info:
        VGG19Featurizer(weights="imagenet", device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert vgg19_weights_url() == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert vgg19_weights_url() in message and str(expected) in message and "--weights" in message
    assert not expected.exists()  # nothing was downloaded


def test_missing_weights_file_given_explicitly(tmp_path):
    with pytest.raises(DataError, match="VGG19 weights not found at .*nope.pth"):
        VGG19Featurizer(weights=tmp_path / "nope.pth", device="cpu")


def test_unreadable_weights_file(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"bad\.pth is not a readable VGG19 weights file \("):
        VGG19Featurizer(weights=bad, device="cpu")
    with pytest.raises(DataError, match=r"bad\.pth is not a readable VGG19 weights file \("):
        extract_vgg19_features([], weights=bad, device="cpu")


def test_not_an_image_is_named(tmp_path):
    paths = _write_images(tmp_path, 1)
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is text")
    with pytest.raises(DataError, match=r"fake\.jpg is not a readable image"):
        extract_image_features([paths[0], fake], HistogramFeaturizer())


class _Counting(HistogramFeaturizer):
    def __init__(self):
        super().__init__(size=16)
        self.seen = 0

    def transform(self, images):
        self.seen += len(images)
        return super().transform(images)


def test_chunks_are_cached_and_skipped_on_resume(tmp_path):
    paths = _write_images(tmp_path, 5)
    cache = tmp_path / "cache"
    first = _Counting()
    features = extract_image_features(paths, first, batch_size=2, chunk_size=2, cache_dir=cache)
    assert first.seen == 5
    assert sorted(p.name for p in cache.glob("chunk-*.npy")) == ["chunk-00000.npy", "chunk-00001.npy", "chunk-00002.npy"]
    # an interrupted run: the last chunk is lost, the others are reused
    (cache / "chunk-00002.npy").unlink()
    resumed = _Counting()
    again = extract_image_features(paths, resumed, batch_size=2, chunk_size=2, cache_dir=cache)
    assert resumed.seen == 1
    np.testing.assert_array_equal(again, features)
    np.testing.assert_array_equal(features, HistogramFeaturizer(size=16).transform([Image.open(p).convert("RGB") for p in paths]))


def test_damaged_chunk_is_named(tmp_path):
    paths = _write_images(tmp_path, 5)
    cache = tmp_path / "cache"
    extract_image_features(paths, _Counting(), batch_size=2, chunk_size=2, cache_dir=cache)
    chunk = truncate(cache / "chunk-00001.npy", 0.9)
    with pytest.raises(DataError) as err:
        extract_image_features(paths, _Counting(), batch_size=2, chunk_size=2, cache_dir=cache)
    message = str(err.value)
    assert message.startswith(f"{chunk} is not a readable feature chunk (ValueError: Failed to read all data for array. "
                              "Expected (2, 605) = 1210 elements, could only read "), message
    assert message.endswith("); delete it and run again: only its images are extracted again") and "\n" not in message
    chunk.unlink()
    resumed = _Counting()
    extract_image_features(paths, resumed, batch_size=2, chunk_size=2, cache_dir=cache)
    assert resumed.seen == 2  # the images of the deleted chunk only


def test_cache_for_other_inputs_is_started_afresh(tmp_path):
    paths = _write_images(tmp_path, 3)
    cache = tmp_path / "cache"
    extract_image_features(paths, _Counting(), chunk_size=2, cache_dir=cache)
    other = _Counting()
    extract_image_features(paths[:2], other, chunk_size=2, cache_dir=cache)
    assert other.seen == 2
    assert sorted(p.name for p in cache.glob("chunk-*.npy")) == ["chunk-00000.npy"]
