"""make_synthetic: shapes, determinism, labels and planted correlations, feature signal."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from gcnretrieval.data import make_synthetic
from gcnretrieval.errors import ConfigError
from gcnretrieval.metrics import mean_average_precision

SMALL = dict(num_train=300, num_test=60, num_val=40, image_dim=48, text_dim=40)


def test_shapes_and_names():
    ds = make_synthetic(**SMALL, num_labels=10)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (300, 40, 60)
    assert (ds.image_dim, ds.text_dim, ds.num_labels) == (48, 40, 10)
    assert ds.label_names == [f"label{j:02d}" for j in range(10)]
    assert make_synthetic(num_train=5, num_test=5, image_dim=4, text_dim=4).val is None
    ds.validate()


def test_defaults_are_mirflickr_shaped():
    defaults = {k: v.default for k, v in inspect.signature(make_synthetic).parameters.items()}
    assert (defaults["num_train"], defaults["num_test"], defaults["num_labels"]) == (18015, 2000, 24)
    assert (defaults["image_dim"], defaults["text_dim"]) == (4096, 1386)


def test_deterministic_per_seed():
    a, b, c = (make_synthetic(**SMALL, seed=s) for s in (5, 5, 6))
    for name in ("train", "val", "test"):
        for field in ("image", "text", "labels"):
            np.testing.assert_array_equal(getattr(getattr(a, name), field), getattr(getattr(b, name), field))
    assert not np.array_equal(a.train.labels, c.train.labels)
    assert not np.array_equal(a.train.image, c.train.image)


def test_every_pair_has_a_label_and_features_look_right():
    ds = make_synthetic(**SMALL, num_labels=30, num_topics=12, seed=1)  # sparse profiles: empty rows get filled
    for _, split in ds.splits():
        assert split.labels.sum(axis=1).min() >= 1
        assert set(np.unique(split.labels)) <= {0.0, 1.0}
        assert split.image.dtype == np.float32 and split.text.dtype == np.float32
        assert split.image.min() >= 0 and split.text.min() >= 0
        assert 0.02 < (split.text > 0).mean() < 0.4  # sparse-ish, like bag-of-words


def test_label_cooccurrence_is_planted():
    ds = make_synthetic(num_train=3000, num_test=10, image_dim=8, text_dim=8, seed=0)
    labels = ds.train.labels.astype(np.float64)
    counts = labels.T @ labels
    marginal = labels.mean(axis=0)
    conditional = counts / np.diag(counts)[:, None]  # [i, j] = P(j | i)
    np.fill_diagonal(conditional, 0.0)
    gain = conditional - marginal[None, :]
    assert gain.max() > 0.3  # some label makes another far more likely
    assert gain.min() < -0.05  # and some make others less likely
    assert 2.0 < labels.sum(axis=1).mean() < 6.0  # MIRFlickr averages 3.78 labels per pair


@pytest.mark.parametrize("modality", ["image", "text"])
def test_features_carry_label_signal(modality):
    ds = make_synthetic(num_train=400, num_test=100, image_dim=64, text_dim=64, seed=2)
    query = getattr(ds.test, modality)
    database = getattr(ds.train, modality)
    true = mean_average_precision(query, database, ds.test.labels, ds.train.labels)
    shuffled = ds.train.labels[np.random.default_rng(0).permutation(len(ds.train))]
    chance = mean_average_precision(query, database, ds.test.labels, shuffled)
    assert true > chance + 0.05


def test_bad_arguments():
    with pytest.raises(ConfigError, match="num_test must be at least 1"):
        make_synthetic(num_test=0)
    with pytest.raises(ConfigError, match="noise must be non-negative"):
        make_synthetic(noise=-1.0)
