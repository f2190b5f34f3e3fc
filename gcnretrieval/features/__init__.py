"""Features from raw data: VGG19 fc7, EfficientNet-Lite0 and histogram image features, bag-of-words texts."""
from gcnretrieval.defaults import DEFAULT_DEVICE
from gcnretrieval.features.efficientnet import (
    EFFICIENTNET_LITE0_PACKAGE,
    EfficientNetLite0Featurizer,
    default_efficientnet_lite0_weights_path,
)
from gcnretrieval.features.extract import ImageFeaturizer, extract_image_features
from gcnretrieval.features.histogram import HistogramFeaturizer
from gcnretrieval.features.images import IMAGE_SUFFIXES, open_image
from gcnretrieval.features.text import BagOfWords, read_vocabulary, split_tags
from gcnretrieval.features.vgg import (
    VGG19Featurizer,
    default_vgg19_weights_path,
    extract_vgg19_features,
    vgg19_weights_url,
)

__all__ = [
    "EFFICIENTNET_LITE0_PACKAGE",
    "IMAGE_SUFFIXES",
    "IMAGE_FEATURIZERS",
    "BagOfWords",
    "EfficientNetLite0Featurizer",
    "HistogramFeaturizer",
    "ImageFeaturizer",
    "VGG19Featurizer",
    "build_image_featurizer",
    "default_efficientnet_lite0_weights_path",
    "default_vgg19_weights_path",
    "extract_image_features",
    "extract_vgg19_features",
    "open_image",
    "read_vocabulary",
    "split_tags",
    "vgg19_weights_url",
]


#: the names :func:`build_image_featurizer` (and ``gcnretrieval prepare --features``) accepts
IMAGE_FEATURIZERS = ("vgg19", "efficientnet-lite0", "histogram")


def build_image_featurizer(name: str, weights: str | None = "imagenet", device: str = DEFAULT_DEVICE) -> ImageFeaturizer:
    """An image featurizer by name.

    Args:
        name: ``"vgg19"`` (:class:`VGG19Featurizer`), ``"efficientnet-lite0"``
            (:class:`EfficientNetLite0Featurizer`) or ``"histogram"`` (:class:`HistogramFeaturizer`).
        weights: the network's weights: ``"imagenet"`` (default), a file, or ``None``
            (random, tests only); ignored by ``"histogram"``.
        device: ``"auto"`` (default) or a torch device.
    """
    from gcnretrieval.errors import UnknownNameError, did_you_mean

    if name == "vgg19":
        return VGG19Featurizer(weights, device=device)
    if name == "efficientnet-lite0":
        return EfficientNetLite0Featurizer(weights, device=device)
    if name == "histogram":
        return HistogramFeaturizer()
    raise UnknownNameError(did_you_mean("image featurizer", name, list(IMAGE_FEATURIZERS)))
