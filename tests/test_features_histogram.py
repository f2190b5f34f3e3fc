"""Colour + gradient-orientation histogram features."""
from __future__ import annotations

import numpy as np
from PIL import Image

from gcnretrieval.features import HistogramFeaturizer


def _noise_image(seed: int, size=(70, 50)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8), "RGB")


def test_shape_non_negative_unit_norm_and_deterministic():
    featurizer = HistogramFeaturizer()
    images = [_noise_image(0), _noise_image(1), _noise_image(2, size=(200, 90))]
    first = featurizer.transform(images)
    again = HistogramFeaturizer().transform(images)
    assert first.shape == (3, featurizer.dim) == (3, 605)
    assert first.dtype == np.float32
    assert (first >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[0], first[1])


def test_solid_colour_image_matches_a_hand_computed_vector():
    # pure red: HSV (0, 255, 255) -> hue bin 0, the top saturation and value bins;
    # no gradient anywhere, so the gradient block stays zero.
    features = HistogramFeaturizer(size=16).features(Image.new("RGB", (40, 30), (255, 0, 0))).astype(np.float64)
    expected = np.zeros(605)
    expected[(0 * 4 + 3) * 4 + 3] = 1.0  # whole-image 8x4x4 histogram, one full bin
    for cell in range(4):  # each 2x2 cell: 8x3x3 histogram with one full bin, sqrt(1) = 1
        expected[128 + cell * 72 + (0 * 3 + 2) * 3 + 2] = 1.0
    expected[128:128 + 288] /= 2.0  # the block of four unit cells scaled to unit norm
    expected /= np.sqrt(3.0)
    np.testing.assert_allclose(features, expected, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(features), np.sqrt(2 / 3), rtol=1e-6)


def test_vertical_stripes_have_horizontal_gradients_only():
    stripes = np.zeros((64, 64, 3), dtype=np.uint8)
    stripes[:, ::8] = 255
    features = HistogramFeaturizer(size=64).features(Image.fromarray(stripes))
    gradient = features[128 + 288:].reshape(21, 9)
    # orientation 0 (horizontal gradient) carries every cell's mass
    assert (gradient[:, 0] > 0).all()
    np.testing.assert_allclose(gradient[:, 1:], 0.0)
