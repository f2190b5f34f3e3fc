r"""A seeded synthetic paired dataset with planted label correlations.

Each pair belongs to a latent topic :math:`z`; the topic has its own label probability
profile (a few "core" labels likely, the rest rare), so labels co-occur the way a label
graph can exploit. Image and text features are produced from the labels (plus a shared
per-pair content vector) by two *different* random two-layer networks, then noise:

.. math::
    \mathbf{y} \sim \mathrm{Bernoulli}(\mathbf{p}_z), \qquad
    \mathbf{x}^v = \mathrm{ReLU}\big(W^v_2 \tanh(W^v_1 [\mathbf{y}; \mathbf{u}] + \mathbf{b}^v_1)
        + \sigma \boldsymbol{\epsilon}^v\big), \qquad
    \mathbf{x}^t = \mathrm{ReLU}\big(\mathrm{std}(W^t_2 \,\mathrm{ReLU}(W^t_1 [\mathbf{y}; \mathbf{u}]
        + \mathbf{b}^t_1)) + \sigma \boldsymbol{\epsilon}^t - \tau\big)

with :math:`\mathbf{u} \sim \mathcal{N}(0, I)` shared by the two modalities of a pair,
:math:`\mathrm{std}` a per-column standardisation and the offset
:math:`\tau = \sqrt{1 + \sigma^2}` making text features non-negative and sparse (about 16 %
non-zero), like bag-of-words counts.
Image features are non-negative like ReLU (fc7) activations.
"""
from __future__ import annotations

import numpy as np

from gcnretrieval.data.container import CrossModalDataset, Split
from gcnretrieval.errors import ConfigError

_HIDDEN = 64  # width of the random networks
_CONTENT = 8  # size of the per-pair content vector u
_TEXT_OFFSET = 1.0  # tau, in units of the signal-plus-noise standard deviation
_BACKGROUND = 0.03  # probability of a non-core label in a topic
_CHUNK_ROWS = 4096  # rows generated at a time (bounds temporary memory)


def make_synthetic(
    num_train: int = 18015,
    num_test: int = 2000,
    num_val: int = 0,
    num_labels: int = 24,
    image_dim: int = 4096,
    text_dim: int = 1386,
    num_topics: int | None = None,
    seed: int = 0,
    noise: float = 1.0,
    label_names: list[str] | None = None,
    name: str = "synthetic",
) -> CrossModalDataset:
    """Generate a paired dataset with correlated multi-labels; the same seed gives the same data.

    The defaults mirror MIRFlickr-25K's shapes (18,015 train / 2,000 test pairs, 24 labels,
    4,096-d images, 1,386-d texts); small sizes generate in milliseconds.

    Args:
        num_train: training pairs (default ``18015``).
        num_test: test pairs (default ``2000``).
        num_val: validation pairs (default ``0``: no validation split).
        num_labels: number of labels ``C`` (default ``24``).
        image_dim: image feature dimension (default ``4096``).
        text_dim: text feature dimension (default ``1386``).
        num_topics: latent topics, each with its own label profile (default
            ``max(2, C // 3)``).
        seed: random seed (default ``0``).
        noise: standard deviation :math:`\\sigma` of the feature noise relative to the
            unit-scale signal (default ``1.0``).
        label_names: names of the labels (default ``label00``, ``label01``, ...: the labels
            carry no real-world meaning, so real names would be misleading).
        name: dataset name (default ``"synthetic"``).

    Returns:
        A :class:`CrossModalDataset` in which every pair has at least one label.
    """
    for what, value, low in (
        ("num_train", num_train, 1), ("num_test", num_test, 1), ("num_val", num_val, 0),
        ("num_labels", num_labels, 1), ("image_dim", image_dim, 1), ("text_dim", text_dim, 1),
    ):
        if int(value) < low:
            raise ConfigError(f"make_synthetic: {what} must be at least {low}, got {value}")
    if noise < 0:
        raise ConfigError(f"make_synthetic: noise must be non-negative, got {noise}")
    num_topics = max(2, num_labels // 3) if num_topics is None else int(num_topics)
    if num_topics < 1:
        raise ConfigError(f"make_synthetic: num_topics must be at least 1, got {num_topics}")

    rng = np.random.default_rng(seed)
    total = num_train + num_val + num_test
    labels = _sample_labels(rng, total, num_labels, num_topics)
    content = rng.standard_normal((total, _CONTENT)).astype(np.float32)
    inputs = np.concatenate([labels, 0.5 * content], axis=1)

    image = _image_features(rng, inputs, image_dim, noise)
    text = _text_features(rng, inputs, text_dim, noise)

    bounds = {"train": (0, num_train), "val": (num_train, num_train + num_val), "test": (num_train + num_val, total)}
    splits = {key: Split(image[a:b], text[a:b], labels[a:b]) for key, (a, b) in bounds.items()}
    return CrossModalDataset(
        name=name,
        train=splits["train"],
        test=splits["test"],
        val=splits["val"] if num_val > 0 else None,
        label_names=label_names,
    )


def _sample_labels(rng: np.random.Generator, total: int, num_labels: int, num_topics: int) -> np.ndarray:
    """Topic-driven multi-labels; rows left empty get one label drawn from their topic profile."""
    core = min(num_labels, max(2, round(num_labels / num_topics) + 1))
    profiles = np.full((num_topics, num_labels), _BACKGROUND)
    for topic in range(num_topics):
        chosen = rng.choice(num_labels, size=core, replace=False)
        profiles[topic, chosen] = rng.uniform(0.55, 0.9, size=core)
    weights = rng.dirichlet(np.full(num_topics, 2.0))
    topics = rng.choice(num_topics, size=total, p=weights)
    labels = rng.random((total, num_labels)) < profiles[topics]
    for row in np.flatnonzero(~labels.any(axis=1)):
        profile = profiles[topics[row]]
        labels[row, rng.choice(num_labels, p=profile / profile.sum())] = True
    return labels.astype(np.float32)


def _random_layer(rng: np.random.Generator, fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    weight = rng.standard_normal((fan_in, fan_out)).astype(np.float32) / np.float32(np.sqrt(fan_in / 4.0))
    bias = (0.1 * rng.standard_normal(fan_out)).astype(np.float32)
    return weight, bias


def _image_features(rng: np.random.Generator, inputs: np.ndarray, dim: int, noise: float) -> np.ndarray:
    w1, b1 = _random_layer(rng, inputs.shape[1], _HIDDEN)
    w2 = rng.standard_normal((_HIDDEN, dim)).astype(np.float32) / np.float32(np.sqrt(_HIDDEN * 0.5))
    hidden = np.tanh(inputs @ w1 + b1)
    out = np.empty((len(inputs), dim), dtype=np.float32)
    for start in range(0, len(inputs), _CHUNK_ROWS):
        block = hidden[start : start + _CHUNK_ROWS] @ w2
        block += np.float32(noise) * rng.standard_normal(block.shape, dtype=np.float32)
        out[start : start + _CHUNK_ROWS] = np.maximum(block, 0.0)
    return out


def _text_features(rng: np.random.Generator, inputs: np.ndarray, dim: int, noise: float) -> np.ndarray:
    w1, b1 = _random_layer(rng, inputs.shape[1], _HIDDEN)
    w2 = rng.standard_normal((_HIDDEN, dim)).astype(np.float32)
    hidden = np.maximum(inputs @ w1 + b1, 0.0)
    clean = hidden @ w2
    mean = clean.mean(axis=0)
    std = clean.std(axis=0) + np.float32(1e-6)
    offset = np.float32(_TEXT_OFFSET * np.sqrt(1.0 + noise**2))
    out = np.empty((len(inputs), dim), dtype=np.float32)
    for start in range(0, len(inputs), _CHUNK_ROWS):
        block = (clean[start : start + _CHUNK_ROWS] - mean) / std
        block += np.float32(noise) * rng.standard_normal(block.shape, dtype=np.float32)
        out[start : start + _CHUNK_ROWS] = np.maximum(block - offset, 0.0)
    return out
