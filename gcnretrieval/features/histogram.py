r"""Colour and gradient-orientation histograms: image features that need no downloaded weights.

An offline stand-in for VGG19 fc7 when the pretrained weights are not available (the
bundled demo dataset uses it). It captures colour layout and coarse texture, not
objects, so retrieval on it is far weaker than on fc7: it is not a replacement.

Each image is resized to ``size x size`` pixels (aspect ratio not kept) and described by
three blocks:

- a joint HSV colour histogram of the whole image (``8 x 4 x 4`` bins of hue,
  saturation, value = 128 values);
- joint HSV histograms (``8 x 3 x 3`` = 72 bins) in each cell of a 2 x 2 grid (288);
- gradient-orientation histograms of the grey image: central differences, unsigned
  orientation in :math:`[0, \pi)` in 9 bins weighted by the gradient magnitude, in each
  cell of a 1 x 1, 2 x 2 and 4 x 4 spatial pyramid (21 cells, 189 values).

Every cell histogram :math:`h` is L1-normalised and square-rooted (the Hellinger map,
so that Euclidean distance and cosine compare distributions sensibly),

.. math::
    \hat h_k = \sqrt{h_k / \textstyle\sum_l h_l},

each block is scaled to unit L2 norm and the concatenation divided by :math:`\sqrt{3}`,
so a feature vector has 605 non-negative values and unit L2 norm (an empty cell, e.g. a
flat region without gradients, stays zero; an image without any gradient has norm
:math:`\sqrt{2/3}`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

__all__ = ["HistogramFeaturizer"]


def _cell_index(height: int, width: int, grid: int) -> np.ndarray:
    rows = np.arange(height) * grid // height
    cols = np.arange(width) * grid // width
    return (rows[:, None] * grid + cols[None, :]).ravel()


def _cell_histograms(bins: np.ndarray, cells: np.ndarray, num_bins: int, num_cells: int,
                     weights: np.ndarray | None = None) -> np.ndarray:
    counts = np.bincount(cells * num_bins + bins, weights=weights, minlength=num_cells * num_bins)
    return counts.reshape(num_cells, num_bins)


def _hellinger(histograms: np.ndarray) -> np.ndarray:
    histograms = histograms.astype(np.float64)
    totals = histograms.sum(axis=1, keepdims=True)
    normalised = np.divide(histograms, totals, out=np.zeros_like(histograms), where=totals > 0)
    return np.sqrt(normalised)


def _unit(block: np.ndarray) -> np.ndarray:
    flat = block.ravel()
    norm = np.linalg.norm(flat)
    return flat / norm if norm > 0 else flat


class HistogramFeaturizer:
    r"""Colour + gradient-orientation histogram features (see the module docstring).

    Args:
        size: side of the resized image in pixels (default ``128``).

    Shapes:
        - input: a list of ``n`` RGB PIL images (any size)
        - output: ``(n, 605)`` float32, non-negative, unit L2 norm per row (see above)
    """

    name = "histogram"
    dim = 128 + 4 * 72 + 21 * 9
    _ORIENTATIONS = 9

    def __init__(self, size: int = 128) -> None:
        if size < 8:
            raise ValueError("size must be at least 8 pixels")
        self.size = size
        self._grid2 = _cell_index(size, size, 2)
        self._grid4 = _cell_index(size, size, 4)

    def identity(self) -> dict[str, Any]:
        """Name and parameters (no weights)."""
        return {"name": self.name, "size": self.size, "weights": "histogram",
                "blocks": ["HSV 8x4x4 whole image", "HSV 8x3x3 on a 2x2 grid",
                           "9 gradient orientations on a 1x1+2x2+4x4 pyramid"]}

    def _hsv_bins(self, hsv: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        h, s, v = (hsv[..., c].astype(np.int64).ravel() for c in range(3))
        bh, bs, bv = shape
        return ((h * bh // 256) * bs + s * bs // 256) * bv + v * bv // 256

    def features(self, image: Image.Image) -> np.ndarray:
        """Features of one RGB image, ``(605,)`` float32."""
        image = image.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        hsv = np.asarray(image.convert("HSV"))
        colour_all = _cell_histograms(self._hsv_bins(hsv, (8, 4, 4)), np.zeros(self.size**2, dtype=np.int64), 128, 1)
        colour_grid = _cell_histograms(self._hsv_bins(hsv, (8, 3, 3)), self._grid2, 72, 4)

        grey = np.asarray(image.convert("L"), dtype=np.float64)
        gx = np.zeros_like(grey)
        gy = np.zeros_like(grey)
        gx[:, 1:-1] = grey[:, 2:] - grey[:, :-2]
        gy[1:-1, :] = grey[2:, :] - grey[:-2, :]
        magnitude = np.hypot(gx, gy).ravel()
        angle = np.mod(np.arctan2(gy, gx), np.pi).ravel()
        orient = np.minimum((angle / np.pi * self._ORIENTATIONS).astype(np.int64), self._ORIENTATIONS - 1)
        pyramid = [
            _cell_histograms(orient, np.zeros(self.size**2, dtype=np.int64), self._ORIENTATIONS, 1, magnitude),
            _cell_histograms(orient, self._grid2, self._ORIENTATIONS, 4, magnitude),
            _cell_histograms(orient, self._grid4, self._ORIENTATIONS, 16, magnitude),
        ]
        blocks = [
            _unit(_hellinger(colour_all)),
            _unit(_hellinger(colour_grid)),
            _unit(_hellinger(np.concatenate(pyramid, axis=0))),
        ]
        return (np.concatenate(blocks) / np.sqrt(len(blocks))).astype(np.float32)

    def transform(self, images: list) -> np.ndarray:
        """Features of a batch of RGB PIL images, ``(len(images), 605)`` float32."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.features(image) for image in images])
