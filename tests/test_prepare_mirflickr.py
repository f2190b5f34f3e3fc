"""`prepare mirflickr` on a tiny generated copy of the cleaned 20,015-pair layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gcnretrieval.cli import cli
from gcnretrieval.data import load_dataset
from gcnretrieval.errors import DataError
from gcnretrieval.graphs import load_label_vocabulary
from gcnretrieval.preparation import ImageOptions, prepare_mirflickr, read_mirflickr

TAGS = ["explore", "new york", "360°", "plant_life", "sky"]
PAIRS = [  # (image number, tags, label columns)
    (1, "sky,explore", [18]),
    (2, "new york,360°", [3, 19]),
    (5, "plant_life", [14, 22]),
    (7, "sky,sky,unlisted", [4, 18]),
    (9, "explore,plant_life,sky", [0]),
]


def _layout(root, with_images=(1, 2, 5, 7, 9)):
    root.mkdir()
    (root / "all_imgs.txt").write_text("".join(f"mirflickr/im{n}.jpg\n" for n, _, _ in PAIRS))
    (root / "all_tags.txt").write_text("".join(f"{t}\n" for _, t, _ in PAIRS))
    rows = []
    for _, _, cols in PAIRS:
        row = ["0"] * 24
        for c in cols:
            row[c] = "1"
        rows.append(" ".join(row) + "\n")
    (root / "all_labels.txt").write_text("".join(rows))
    (root / "TagList1386.txt").write_bytes("".join(f"{t}\r\n" for t in TAGS).encode("utf-8"))
    images = root / "thumbs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for n in with_images:
        Image.fromarray(rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)).save(images / f"im{n}.jpg")
    return root, images


def test_end_to_end(tmp_path):
    root, images = _layout(tmp_path / "mir")
    out = prepare_mirflickr(root, images, tmp_path / "out", image_options=ImageOptions(features="histogram"),
                            num_test=2, seed=4, name="tiny")
    dataset = load_dataset(out)
    assert dataset.label_names == list(load_label_vocabulary("mirflickr").label_names)
    assert (len(dataset.train), len(dataset.test), dataset.text_dim, dataset.num_labels) == (3, 2, 5, 24)
    names = (out / "train_images.txt").read_text().split() + (out / "test_images.txt").read_text().split()
    text = np.concatenate([dataset.train.text, dataset.test.text])
    labels = np.concatenate([dataset.train.labels, dataset.test.labels])
    by_name = {f"im{n}.jpg": (t, cols) for n, t, cols in PAIRS}
    for row, name in enumerate(names):
        tags, cols = by_name[name]
        expected = [1.0 if tag in tags.split(",") else 0.0 for tag in TAGS]
        np.testing.assert_array_equal(text[row], expected)
        assert np.flatnonzero(labels[row]).tolist() == cols
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "tiny"
    assert manifest["counts"]["skipped_missing_images"] == 0
    assert set(manifest["source_files"]) == {"all_imgs.txt", "all_tags.txt", "all_labels.txt", "TagList1386.txt"}
    assert "TagList1386.txt" in manifest["text_features"]["vocabulary_source"]
    assert (out / "vocabulary.txt").read_text().splitlines() == TAGS


def test_missing_images_need_available_only(tmp_path):
    root, images = _layout(tmp_path / "mir", with_images=(1, 5, 7, 9))
    with pytest.raises(DataError, match=r"1 of 5 images are missing .* \(first: mirflickr/im2.jpg\); pass --available-only"):
        read_mirflickr(root, images)
    pairs = read_mirflickr(root, images, available_only=True)
    assert pairs.image_names == ["im1.jpg", "im5.jpg", "im7.jpg", "im9.jpg"]
    assert pairs.notes == {"source_pairs": 5, "skipped_missing_images": 1}


def test_cli_reports_skipped_pairs(tmp_path):
    root, images = _layout(tmp_path / "mir", with_images=(1, 2, 5, 9))
    result = CliRunner().invoke(cli, ["prepare", "mirflickr", "--annotations", str(root), "--images", str(images),
                                      "--available-only", "--features", "histogram", "--num-test", "1",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "train 3, test 1 pairs" in result.output and "skipped missing images: 1" in result.output


def test_bad_annotation_files(tmp_path):
    root, images = _layout(tmp_path / "mir")
    (root / "all_labels.txt").write_text((root / "all_labels.txt").read_text().replace("1", "2", 1))
    with pytest.raises(DataError, match="all_labels.txt line 1 must hold 24 values 0 or 1"):
        read_mirflickr(root, images)
    (root / "all_tags.txt").write_text("sky\n")
    with pytest.raises(DataError, match="have 5, 1 and 5 lines"):
        read_mirflickr(root, images)
    (root / "all_tags.txt").write_bytes("caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"all_tags\.txt is not a readable MIRFlickr annotation file \(UnicodeDecodeError: "):
        read_mirflickr(root, images)
    (root / "TagList1386.txt").unlink()
    with pytest.raises(DataError, match="lacks TagList1386.txt"):
        read_mirflickr(root, images)


def test_vgg19_without_weights_fails_before_reading_images(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    root, images = _layout(tmp_path / "mir")
    with pytest.raises(DataError, match="VGG19 weights not found at .*vgg19-dcbb9e9d.pth: download https://"):
        prepare_mirflickr(root, images, tmp_path / "out", num_test=2)
