"""Binary bag-of-words over fixed tag lists and learned vocabularies."""
from __future__ import annotations

import numpy as np
import pytest

from gcnretrieval.errors import DataError
from gcnretrieval.features import BagOfWords, read_vocabulary, split_tags


def test_fixed_tag_list_splits_on_commas_not_words():
    vocabulary = ["new york", "plant_life", "360°", "geo:tool=gmif", "sky", "york"]
    texts = ["sky,new york", "360°,geo:tool=gmif,unknown tag", "plant_life, sky ,sky", ""]
    expected = np.array(
        [
            [1, 0, 0, 0, 1, 0],  # "new york" is one tag: the word "york" alone does not fire
            [0, 0, 1, 1, 0, 0],  # tags outside the list are ignored
            [0, 1, 0, 0, 1, 0],  # binary: a repeated tag counts once; spaces around tags stripped
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
    features = BagOfWords(vocabulary).transform(texts)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, expected)


def test_fixed_tag_list_with_whitespace_separator_and_column_order():
    encoder = BagOfWords(["water", "sky", "beach"], separator=None)
    assert encoder.vocabulary == ["water", "sky", "beach"]
    np.testing.assert_array_equal(encoder.transform(["beach  sky", "cloud"]), [[0, 1, 1], [0, 0, 0]])


def test_learned_vocabulary_keeps_the_top_k_words_of_the_fitted_texts():
    texts = ["A dog runs on the grass", "the dog sits", "a cat sits", "dog"]
    encoder = BagOfWords(top_k=2).fit(texts)
    # counts without English stop words: dog 3, sits 2, runs 1, grass 1, cat 1
    assert encoder.vocabulary == ["dog", "sits"]
    np.testing.assert_array_equal(encoder.transform(["Dog dog SITS", "grass"]), [[1, 1], [0, 0]])


def test_learned_vocabulary_must_be_fitted():
    with pytest.raises(RuntimeError, match="fit"):
        BagOfWords(top_k=3).transform(["a dog"])


def test_split_tags():
    assert split_tags(" a b , c,,d ") == ["a b", "c", "d"]
    assert split_tags("a  b\tc", None) == ["a", "b", "c"]


def test_read_vocabulary_strips_carriage_returns(tmp_path):
    path = tmp_path / "TagList.txt"
    path.write_bytes(b"explore\r\nsky\r\nnew york\r\n")
    assert read_vocabulary(path) == ["explore", "sky", "new york"]


def test_read_vocabulary_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_vocabulary(tmp_path / "missing.txt")
    (tmp_path / "dup.txt").write_text("sky\nsea\nsky\n")
    with pytest.raises(DataError, match="lists 'sky' twice"):
        read_vocabulary(tmp_path / "dup.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="is empty"):
        read_vocabulary(tmp_path / "empty.txt")


def test_binary_vocabulary_file_is_named(tmp_path):
    binary = tmp_path / "tags.txt"
    binary.write_bytes(b"sky\n\x89PNG\r\n\x1a\n")
    with pytest.raises(DataError) as err:
        read_vocabulary(binary)
    assert str(err.value) == (f"{binary} is not a readable vocabulary file (UnicodeDecodeError: 'utf-8' codec can't "
                              "decode byte 0x89 in position 4: invalid start byte); give a UTF-8 text file with one "
                              "tag per line")
