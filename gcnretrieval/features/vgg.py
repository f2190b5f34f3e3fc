r"""VGG19 fc7 image features, the image representation of the MIRFlickr, NUS-WIDE and
MS-COCO benchmark features.

The feature is the 4,096-d output of the second fully connected layer (fc7) after its
ReLU: ``torchvision.models.vgg19`` with its classifier cut after the second ReLU
(``classifier[:5]`` = fc6, ReLU, dropout, fc7, ReLU). The network runs in eval mode, so
the dropout between fc6 and fc7 is the identity. Images get the standard ImageNet
preprocessing: resize the shorter side to 256, center-crop 224 x 224, scale to [0, 1]
and normalise with the ImageNet channel means and standard deviations.

Weights are never downloaded. They are read from torchvision's cache
(``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``, the file torchvision itself
would store for ``VGG19_Weights.IMAGENET1K_V1``) or from a file you give;
``weights=None`` gives randomly initialised weights, for tests only (the features are
then meaningless).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcnretrieval.errors import DataError
from gcnretrieval.readers import load_torch

log = logging.getLogger(__name__)

__all__ = ["VGG19Featurizer", "default_vgg19_weights_path", "extract_vgg19_features", "vgg19_weights_url"]

_WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def default_vgg19_weights_path() -> Path:
    """Where torchvision caches the ImageNet VGG19 weights: ``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / _WEIGHTS_FILE


def vgg19_weights_url() -> str:
    """Download address of ``VGG19_Weights.IMAGENET1K_V1`` as torchvision records it."""
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1.url


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class VGG19Featurizer:
    r"""VGG19 fc7 (after ReLU) features of RGB images.

    Args:
        weights: ``"imagenet"`` (default) reads torchvision's cached ImageNet weights
            (:func:`default_vgg19_weights_path`); a path reads that ``state_dict`` file;
            ``None`` keeps random weights (tests only).
        device: ``"auto"`` (default: CUDA when available, else CPU) or a torch device.

    Shapes:
        - input: a list of ``n`` RGB PIL images (any size)
        - output: ``(n, 4096)`` float32, non-negative

    Raises:
        DataError: the weights file is not there (the message gives the URL to fetch and
            where to put it) or cannot be read.
    """

    name = "vgg19_fc7"
    dim = 4096

    def __init__(self, weights: str | Path | None = "imagenet", device: str | torch.device = "auto") -> None:
        from torchvision import transforms
        from torchvision.models import vgg19

        self.device = _resolve_device(device)
        self.weights_file: Path | None = None
        self.weights_sha256: str | None = None
        state = None
        if weights is not None:
            path = default_vgg19_weights_path() if str(weights) == "imagenet" else Path(weights).expanduser()
            if not path.is_file():
                raise DataError(
                    f"VGG19 weights not found at {path}: download {vgg19_weights_url()} to "
                    f"{default_vgg19_weights_path()} (or pass the file with --weights / weights=PATH), "
                    "or use the EfficientNet-Lite0 features, whose ImageNet weights ship with the package "
                    "and need no download (--features efficientnet-lite0)"
                )
            state = load_torch(path, "VGG19 weights file", f"fetch {vgg19_weights_url()} again")
            self.weights_file = path
            self.weights_sha256 = _sha256(path)
        network = vgg19(weights=None)  # built empty: weights are only ever read from a local file
        if state is not None:
            try:
                network.load_state_dict(state)
            except (RuntimeError, TypeError) as err:
                raise DataError(f"{self.weights_file} does not hold VGG19 weights ({str(err).splitlines()[0]}); "
                                f"fetch {vgg19_weights_url()}") from None
        else:
            log.warning("VGG19 with random weights: the features are meaningless (use for tests only)")
        network.classifier = network.classifier[:5]  # fc6, ReLU, Dropout, fc7, ReLU
        self.network = network.eval().to(self.device)
        self.preprocess = transforms.Compose([
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(_MEAN, _STD),
        ])

    def identity(self) -> dict[str, Any]:
        """Name, layer and weights identity (file name + sha256, or ``"random"``)."""
        weights: Any = "random"
        if self.weights_file is not None:
            weights = {"file": self.weights_file.name, "sha256": self.weights_sha256}
        return {"name": self.name, "layer": "classifier[:5] (fc7 + ReLU)", "input": "resize 256, center crop 224, ImageNet normalisation",
                "weights": weights}

    @torch.no_grad()
    def transform(self, images: list) -> np.ndarray:
        """fc7 features of a batch of RGB PIL images, ``(len(images), 4096)`` float32."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        return self.network(batch).float().cpu().numpy()


def extract_vgg19_features(
    paths: list[str | Path],
    weights: str | Path | None = "imagenet",
    *,
    device: str | torch.device = "auto",
    batch_size: int = 32,
    chunk_size: int = 1024,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """VGG19 fc7 features of the image files ``paths``, ``(len(paths), 4096)`` float32.

    Args:
        paths: image files.
        weights: see :class:`VGG19Featurizer` (default ``"imagenet"``; ``None`` = random, tests only).
        device: ``"auto"`` (default) or a torch device.
        batch_size: images per forward pass (default ``32``).
        chunk_size: images per resumable chunk in ``cache_dir`` (default ``1024``).
        cache_dir: folder for the chunk files; finished chunks are skipped on a rerun
            (default ``None``: no cache).
        progress: progress bar; ``None`` (default) shows it only when stderr is a terminal.
    """
    from gcnretrieval.features.extract import extract_image_features

    featurizer = VGG19Featurizer(weights, device=device)
    return extract_image_features(paths, featurizer, batch_size=batch_size, chunk_size=chunk_size,
                                  cache_dir=cache_dir, progress=progress)
