"""Features from raw data: VGG19 fc7 and histogram image features, bag-of-words texts."""
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
    "IMAGE_SUFFIXES",
    "BagOfWords",
    "HistogramFeaturizer",
    "ImageFeaturizer",
    "VGG19Featurizer",
    "build_image_featurizer",
    "default_vgg19_weights_path",
    "extract_image_features",
    "extract_vgg19_features",
    "open_image",
    "read_vocabulary",
    "split_tags",
    "vgg19_weights_url",
]


def build_image_featurizer(name: str, weights: str | None = "imagenet", device: str = "auto") -> ImageFeaturizer:
    """``"vgg19"`` (:class:`VGG19Featurizer` with ``weights``) or ``"histogram"`` (:class:`HistogramFeaturizer`)."""
    from gcnretrieval.errors import UnknownNameError, did_you_mean

    if name == "vgg19":
        return VGG19Featurizer(weights, device=device)
    if name == "histogram":
        return HistogramFeaturizer()
    raise UnknownNameError(did_you_mean("image featurizer", name, ["vgg19", "histogram"]))
