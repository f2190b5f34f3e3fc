"""The shipped label vocabularies (package gcnretrieval.graphdata)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from gcnretrieval.graphs import available_label_vocabularies, load_label_vocabulary, node_features_from_names

MIRFLICKR = ("animals baby bird car clouds dog female flower food indoor lake male night people plant_life "
             "portrait river sea sky structures sunset transport tree water").split()
NUSWIDE = ("sky clouds person water animal grass buildings window plants lake ocean road flowers sunset "
           "reflection rocks vehicle snow tree beach mountain").split()
VOC = ("aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person "
       "pottedplant sheep sofa train tvmonitor").split()

# (C, num_images, first labels, known per-label image counts taken from the raw label files)
EXPECTED = {
    "mirflickr": (24, 20015, MIRFLICKR, {"structures": 8463, "people": 7848, "plant_life": 7413}),
    "nuswide": (21, 190421, NUSWIDE, {"sky": 72659, "clouds": 53066, "person": 49230}),
    # 123,287 annotation lines minus 1,069 empty lines (images without any label)
    "mscoco": (80, 122218, ["person", "bicycle", "car", "motorcycle", "airplane"],
               {"person": 66808, "chair": 13354, "car": 12786}),
    "voc": (20, 5011, VOC, {"aeroplane": 238, "person": 2008, "tvmonitor": 256}),
}

# GloVe-6B 300-d values recorded from the raw files (first four components)
PERSON = [-0.55598, 0.027967, -0.32289, -0.075042]
ZEBRA = [0.75947, -0.094278, 0.44133, 0.39647]


def test_available_vocabularies():
    assert available_label_vocabularies() == ["mirflickr", "mscoco", "nuswide", "voc"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vocabulary_round_trip(name):
    num_labels, num_images, first, counts = EXPECTED[name]
    vocab = load_label_vocabulary(name)
    assert vocab.name == name
    assert vocab.num_labels == num_labels == len(vocab.label_names) == len(set(vocab.label_names))
    assert vocab.label_names[: len(first)] == first
    assert vocab.num_images == num_images
    assert vocab.node_features.shape == (num_labels, 300) and vocab.node_features.dtype == np.float32
    assert np.isfinite(vocab.node_features).all()
    assert (np.linalg.norm(vocab.node_features, axis=1) > 1).all()
    n = vocab.cooccurrence
    assert n.shape == (num_labels, num_labels) and n.dtype == np.int64
    assert np.array_equal(n, n.T)
    assert (np.diag(n) > 0).all() and (np.diag(n) <= num_images).all()
    assert (n <= np.minimum.outer(np.diag(n), np.diag(n))).all()
    for label, count in counts.items():
        assert n[vocab.label_names.index(label), vocab.label_names.index(label)] == count
    # the label file next to the arrays lists the same order
    text = (resources.files("gcnretrieval.graphdata") / f"{name}_labels.txt").read_text(encoding="utf-8")
    assert text.split("\n")[:-1] == vocab.label_names


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_files_load_without_pickles(name):
    with resources.as_file(resources.files("gcnretrieval.graphdata") / f"{name}.npz") as path:
        with np.load(path, allow_pickle=False) as arrays:
            assert sorted(arrays.files) == ["cooccurrence", "label_names", "node_features", "num_images"]
            assert arrays["label_names"].dtype.kind == "U"


def test_mirflickr_label_cardinality_matches_the_dataset_notes():
    vocab = load_label_vocabulary("mirflickr")
    assert np.trace(vocab.cooccurrence) / vocab.num_images == pytest.approx(3.78, abs=0.005)


def test_node_features_by_name():
    coco = load_label_vocabulary("mscoco")
    voc = load_label_vocabulary("voc")
    # 'person' is row 0 of COCO (category-id order) and row 14 of VOC; 'zebra' is row 22 of COCO
    # (it is the last row of the alphabetical COCO file): the values follow the name, not the position
    np.testing.assert_allclose(coco.node_features[coco.label_names.index("person"), :4], PERSON, rtol=1e-6)
    np.testing.assert_allclose(voc.node_features[voc.label_names.index("person"), :4], PERSON, rtol=1e-6)
    assert coco.label_names.index("zebra") == 22
    np.testing.assert_allclose(coco.node_features[22, :4], ZEBRA, rtol=1e-6)


def test_vocabulary_arrays_are_read_only_and_usable_as_a_source():
    vocab = load_label_vocabulary("voc")
    with pytest.raises(ValueError):
        vocab.node_features[0, 0] = 1.0
    rows = node_features_from_names(["person", "cat"], vocab)
    np.testing.assert_array_equal(rows, vocab.node_features[[14, 7]])


def test_vocabulary_builds_its_graph():
    vocab = load_label_vocabulary("voc")
    data = vocab.build_graph(threshold=0.4)
    assert data.num_nodes == 20 and data.label_names == VOC
    # dining table implies chair (P(chair | diningtable) >= 0.4): the message diningtable -> chair exists
    table, chair = VOC.index("diningtable"), VOC.index("chair")
    assert [table, chair] in data.edge_index.t().tolist()


def test_damaged_vocabulary_file_is_named(tmp_path, monkeypatch):
    import contextlib
    import shutil
    import types

    from damage import flip_member_byte

    from gcnretrieval.errors import DataError
    from gcnretrieval.graphs import vocabulary

    with resources.as_file(resources.files("gcnretrieval.graphdata") / "voc.npz") as shipped:
        damaged = flip_member_byte(Path(shutil.copy(shipped, tmp_path / "voc.npz")), "cooccurrence.npy")
    monkeypatch.setattr(vocabulary, "resources", types.SimpleNamespace(files=lambda package: tmp_path,
                                                                        as_file=contextlib.nullcontext))
    with pytest.raises(DataError) as err:
        load_label_vocabulary("voc")
    assert str(err.value) == (f"{damaged} is not a readable label vocabulary file (BadZipFile: Bad CRC-32 for file "
                              "'cooccurrence.npy'); rebuild it with scripts/build_graph_data.py")
