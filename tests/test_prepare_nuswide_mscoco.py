"""`prepare nuswide` and `prepare mscoco` readers on tiny generated inputs."""
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
from gcnretrieval.graphs import load_label_vocabulary
from gcnretrieval.preparation import ImageOptions, prepare_mscoco, prepare_nuswide, read_mscoco, read_nuswide

HIST = ImageOptions(features="histogram")


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)).save(path)


def _nuswide(root):
    concepts = list(load_label_vocabulary("nuswide").label_names)
    images = ["actor\\0001_11.jpg", "beach\\0002_22.jpg", "beach\\0003_33.jpg", "sky\\0004_44.jpg", "sky\\0005_55.jpg"]
    tags = ["11 sea sun", "22 beach sea", "33 nothing", "44 sun", "55 sky sea beach"]
    labels = {"sky": [0, 0, 1, 1, 1], "beach": [1, 1, 0, 0, 0]}  # image 0 has tags and a label; image 2 no tag
    (root / "ImageList").mkdir(parents=True)
    (root / "ImageList/Imagelist.txt").write_text("".join(f"C:\\ImageData\\Flickr\\{i}\n" for i in images))
    (root / "NUS_WID_Tags").mkdir()
    (root / "NUS_WID_Tags/All_Tags.txt").write_text("".join(f"{t}\n" for t in tags))
    (root / "NUS_WID_Tags/TagList1k.txt").write_text("sea\r\nsun\r\nbeach\r\nsky\r\n")
    (root / "Groundtruth/AllLabels").mkdir(parents=True)
    for concept in concepts:
        values = labels.get(concept, [0] * 5)
        (root / f"Groundtruth/AllLabels/Labels_{concept}.txt").write_text("".join(f"{v}\n" for v in values))
    for name in images:
        _image(root / "images" / name.replace("\\", "/"))
    return concepts


def test_nuswide(tmp_path):
    concepts = _nuswide(tmp_path)
    pairs, vocabulary = read_nuswide(tmp_path, tmp_path / "images")
    assert vocabulary == ["sea", "sun", "beach", "sky"]
    assert pairs.image_names == ["actor/0001_11.jpg", "beach/0002_22.jpg", "sky/0004_44.jpg", "sky/0005_55.jpg"]
    assert pairs.notes["dropped_without_tag"] == 1 and pairs.notes["dropped_without_label"] == 0
    assert pairs.texts[0] == "sea sun"
    sky, beach = concepts.index("sky"), concepts.index("beach")
    assert [np.flatnonzero(row).tolist() for row in pairs.labels] == [[beach], [beach], [sky], [sky]]
    out = prepare_nuswide(tmp_path, tmp_path / "images", tmp_path / "out", image_options=HIST, num_test=1)
    dataset = load_dataset(out)
    assert (dataset.text_dim, dataset.num_labels, len(dataset.train) + len(dataset.test)) == (4, 21, 4)
    text = np.concatenate([dataset.train.text, dataset.test.text])
    names = (out / "train_images.txt").read_text().split() + (out / "test_images.txt").read_text().split()
    np.testing.assert_array_equal(text[names.index("sky/0005_55.jpg")], [1, 0, 1, 1])


def test_nuswide_missing_label_file(tmp_path):
    _nuswide(tmp_path)
    (tmp_path / "Groundtruth/AllLabels/Labels_mountain.txt").unlink()
    with pytest.raises(DataError, match="lacks Groundtruth/AllLabels/Labels_mountain.txt"):
        read_nuswide(tmp_path, tmp_path / "images")


def _coco(root):
    images = [{"id": 9, "file_name": "COCO_train2014_000000000009.jpg"},
              {"id": 3, "file_name": "COCO_train2014_000000000003.jpg"},
              {"id": 5, "file_name": "COCO_train2014_000000000005.jpg"},
              {"id": 7, "file_name": "COCO_train2014_000000000007.jpg"}]
    categories = [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 72, "name": "tv"}]
    annotations = [{"image_id": 9, "category_id": 18}, {"image_id": 9, "category_id": 1},
                   {"image_id": 3, "category_id": 72}, {"image_id": 7, "category_id": 1},
                   {"image_id": 9, "category_id": 18}]  # image 5 has no instance
    captions = [{"image_id": 9, "caption": "A man walks his dog."}, {"image_id": 9, "caption": "Dog and man"},
                {"image_id": 3, "caption": "A television on a table"}, {"image_id": 5, "caption": "Empty room"},
                {"image_id": 7, "caption": "A man on a table"}]
    (root / "instances.json").write_text(json.dumps({"images": images, "categories": categories, "annotations": annotations}))
    (root / "captions.json").write_text(json.dumps({"annotations": captions}))
    for entry in images:
        _image(root / "images" / "train2014" / entry["file_name"])


def test_mscoco(tmp_path):
    _coco(tmp_path)
    pairs = read_mscoco([tmp_path / "instances.json"], [tmp_path / "captions.json"], tmp_path / "images")
    names = list(load_label_vocabulary("mscoco").label_names)
    assert pairs.image_names == ["train2014/COCO_train2014_000000000003.jpg", "train2014/COCO_train2014_000000000007.jpg",
                                 "train2014/COCO_train2014_000000000009.jpg"]
    assert [[names[j] for j in np.flatnonzero(row)] for row in pairs.labels] == [["tv"], ["person"], ["person", "dog"]]
    assert pairs.texts[2] == "A man walks his dog. Dog and man"
    assert pairs.notes["dropped_without_label_or_caption"] == 1
    out = prepare_mscoco([tmp_path / "instances.json"], [tmp_path / "captions.json"], tmp_path / "images",
                         tmp_path / "out", top_k=3, image_options=HIST, num_test=1, seed=2)
    dataset = load_dataset(out)
    assert dataset.num_labels == 80 and dataset.text_dim <= 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["text_features"]["vocabulary_source"].startswith("top 3 words of the training captions")


def test_mscoco_unknown_category(tmp_path):
    _coco(tmp_path)
    data = json.loads((tmp_path / "instances.json").read_text())
    data["categories"][1]["name"] = "dgo"
    (tmp_path / "instances.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="unknown COCO category 'dgo' — did you mean 'dog'"):
        read_mscoco([tmp_path / "instances.json"], [tmp_path / "captions.json"], tmp_path / "images")


def test_cli_prepare_nuswide_passes_the_shared_options_on(tmp_path):
    _nuswide(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["prepare", "nuswide", "--root", str(tmp_path), "--images", str(tmp_path / "images"),
                                      "--features", "histogram", "--num-test", "2", "--seed", "3", "--format", "npy",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "prepared nuswide" in result.output and "train 2, test 2 pairs" in result.output
    assert "dropped without tag: 1" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"]["seed"] == 3 and manifest["image_features"]["name"] == "histogram"
    assert sorted(p.name for p in out.glob("*.npy"))


def test_cli_prepare_mscoco_passes_the_shared_options_on(tmp_path):
    _coco(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["prepare", "mscoco", "--instances", str(tmp_path / "instances.json"),
                                      "--captions", str(tmp_path / "captions.json"), "--images", str(tmp_path / "images"),
                                      "--top-k", "3", "--features", "histogram", "--num-test", "1", "--thumbnails", "16",
                                      "--name", "coco-tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "prepared coco-tiny" in result.output and "train 2, test 1 pairs" in result.output
    assert (out / "coco-tiny.npz").is_file() and len(list((out / "thumbnails").rglob("*.jpg"))) == 3


def test_cli_prepare_mscoco_truncated_annotation_file(tmp_path):
    _coco(tmp_path)
    damaged = truncate(tmp_path / "captions.json")
    result = CliRunner().invoke(cli, ["prepare", "mscoco", "--instances", str(tmp_path / "instances.json"),
                                      "--captions", str(damaged), "--images", str(tmp_path / "images"),
                                      "--features", "histogram", "--num-test", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {damaged} is not a readable COCO annotation file (JSON) (JSONDecodeError: "), result.output
    assert lines[0].endswith("; give the COCO annotation file as distributed")
    assert not (tmp_path / "out").exists()
