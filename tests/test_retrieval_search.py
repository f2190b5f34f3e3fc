"""`gcnretrieval search` and the Retriever on tiny runs: query by id, text and image; bad inputs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from damage import truncate
from PIL import Image

import gcnretrieval
from gcnretrieval.cli import cli
from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.retrieval import Retriever

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "synthetic.toml"

TINY = {
    "data.synthetic.num_train": 150,
    "data.synthetic.num_test": 40,
    "data.synthetic.num_labels": 6,
    "data.synthetic.image_dim": 32,
    "data.synthetic.text_dim": 24,
    "graph.node_feature_dim": 16,
    "model.common_dim": 32,
    "encoder.num_layers": 2,
    "train.batch_size": 32,
    "train.epochs": 1,
    "train.device": "cpu",
}
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
SCENES = ["sky", "sea", "grass", "road"]
RESULT_KEYS = {"rank", "index", "score", "labels", "item", "relevant"}


def _cli(args: list[str]):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("search") / "demo"
    gcnretrieval.run(DEMO, TINY, out=out, progress=False)
    return out


def _tagged_folder(root: Path, features: str = "histogram") -> Path:
    """40 generated photos (a colour and a scene each) with tag texts and a tag list."""
    from gcnretrieval.preparation import ImageOptions, prepare_folder

    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(7)
    rows = ["file,text,labels"]
    for i in range(40):
        colour = list(COLOURS)[i % 3]
        scene = SCENES[i % 4]
        array = np.clip(np.array(COLOURS[colour]) + rng.integers(-40, 40, size=(24, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(array).save(images / f"p{i}.jpg")
        rows.append(f"p{i}.jpg,{colour} {scene} photo,{colour}|{scene}")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    (root / "tags.txt").write_text("\n".join([*COLOURS, *SCENES, "photo"]) + "\n")
    return prepare_folder(images, root / "pairs.csv", root / "tagged", vocabulary=root / "tags.txt", separator=None,
                          image_options=ImageOptions(features=features, device="cpu"), num_test=10, seed=0,
                          thumbnail_size=16)


def _tagged_run(root: Path, features: str = "histogram") -> Path:
    folder = _tagged_folder(root, features)
    recipe = {
        "run": {"name": "tagged", "seed": 5},
        "data": {"source": "files", "path": str(folder)},
        "graph": {"node_features": "random", "node_feature_dim": 8},
        "encoder": {"name": "l2gcn", "num_layers": 2},
        "model": {"common_dim": 16},
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu"},
        "eval": {"select_on": "val", "val_fraction": 0.1},
    }
    out = root / "run"
    gcnretrieval.run(recipe, out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def tagged_run(tmp_path_factory) -> Path:
    return _tagged_run(tmp_path_factory.mktemp("tagged"))


@pytest.fixture(scope="module")
def demo_retriever(demo_run) -> Retriever:
    return Retriever.from_run(demo_run, device="cpu")


@pytest.fixture(scope="module")
def tagged_retriever(tagged_run) -> Retriever:
    return Retriever.from_run(tagged_run, device="cpu")


def _loop_ranks(query: np.ndarray, database: np.ndarray) -> list[int]:
    """Reference ranking: float64 cosine, descending, ties by index."""
    rows = []
    for j, x in enumerate(database.astype(np.float64)):
        q = query.astype(np.float64)
        rows.append((-float(q @ x) / (math.sqrt(float(q @ q)) * math.sqrt(float(x @ x))), j))
    return [j for _, j in sorted(rows)]


@pytest.mark.parametrize("modality", ["image", "text"])
def test_search_id_ranks_the_other_modality_by_cosine(demo_retriever, modality):
    from gcnretrieval.training import embed_split

    r = demo_retriever
    result = r.search_id(5, modality, top_k=7)
    image, text = embed_split(r.model, r.database, r.device)
    query = (image if modality == "image" else text)[5].numpy()
    database = (text if modality == "image" else image).numpy()
    assert [hit.index for hit in result.hits] == _loop_ranks(query, database)[:7]
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True)
    assert result.database == {"modality": "text" if modality == "image" else "image", "size": 40}
    labels = r.labels
    for hit in result.hits:
        assert hit.relevant == bool((labels[5] * labels[hit.index]).sum() > 0)
        assert hit.labels == [r.label_names[j] for j in np.flatnonzero(labels[hit.index])]
    assert result.query["labels"] == r.item_labels(5)


def test_faiss_retriever_matches_exact(demo_run, demo_retriever):
    pytest.importorskip("faiss", reason="faiss-cpu is part of the test extra")
    faiss_retriever = Retriever.from_run(demo_run, device="cpu", index="faiss")
    for modality in ("image", "text"):
        a = demo_retriever.search_id(3, modality, 10)
        b = faiss_retriever.search_id(3, modality, 10)
        assert [h.index for h in a.hits] == [h.index for h in b.hits]
        assert b.index == "faiss"


@pytest.mark.parametrize("modality", ["image", "text"])
def test_cli_search_query_id_table_and_json(demo_run, modality):
    table = _cli(["search", demo_run, "--query-id", 2, "--modality", modality, "--top-k", 5])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].startswith(f"query: {modality} #2")
    assert lines[2].split()[:4] == ["rank", "index", "score", "relevant"]
    assert len(lines) == 3 + 5

    out = _cli(["search", demo_run, "--query-id", 2, "--modality", modality, "--top-k", 5, "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert set(payload) == {"run_dir", "checkpoint", "query", "database", "index", "results"}
    assert set(payload["query"]) == {"kind", "modality", "value", "index", "labels", "item", "ignored_words"}
    assert payload["query"]["kind"] == "id" and payload["query"]["index"] == 2
    assert [row["rank"] for row in payload["results"]] == [1, 2, 3, 4, 5]
    assert all(set(row) == RESULT_KEYS for row in payload["results"])
    scores = [row["score"] for row in payload["results"]]
    assert scores == sorted(scores, reverse=True)


def test_text_and_image_queries_on_a_prepared_dataset(tagged_run, tagged_retriever):
    r = tagged_retriever
    assert r.has_vocabulary and r.sources.test_images is not None
    # a text query with the words of test text 0 ranks exactly like test text 0
    words = r.describe("text", 0)
    assert words and set(words.split()) <= {*COLOURS, *SCENES, "photo"}
    by_text = r.search_text(words, top_k=6)
    by_id = r.search_id(0, "text", top_k=6)
    assert [h.index for h in by_text.hits] == [h.index for h in by_id.hits]
    assert by_text.query["ignored_words"] == [] and by_text.query["kind"] == "text"
    assert all(h.item and h.item.endswith(".jpg") for h in by_text.hits)  # images known by file name
    # comma-separated tags, one unknown word reported
    tagged = r.search_text("red, sky, zebra", top_k=3)
    assert tagged.query["ignored_words"] == ["zebra"] and len(tagged.hits) == 3
    # the image file of test item 4 ranks exactly like test image 4
    image_file = tagged_run.parent / "images" / r.sources.test_images[4]
    by_file = r.search_image(image_file, top_k=6)
    assert [h.index for h in by_file.hits] == [h.index for h in r.search_id(4, "image", 6).hits]
    assert by_file.query["item"] == image_file.name
    assert all(h.relevant is None for h in by_file.hits)  # a file query has no labels


def test_cli_text_and_image(tagged_run, tagged_retriever):
    out = _cli(["search", tagged_run, "--text", "green grass", "--top-k", 4, "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["query"]["kind"] == "text" and payload["database"]["modality"] == "image"
    assert len(payload["results"]) == 4
    image_file = tagged_run.parent / "images" / tagged_retriever.sources.test_images[1]
    out = _cli(["search", tagged_run, "--image", image_file, "--top-k", 3])
    assert out.exit_code == 0, out.output
    assert out.output.startswith(f"query: image '{image_file}'")


def test_bad_queries_raise_one_clear_error(tmp_path, demo_run, demo_retriever, tagged_retriever):
    with pytest.raises(DataError, match="out of range: the test split has 40 items"):
        demo_retriever.search_id(40, "image")
    with pytest.raises(DataError, match="out of range"):
        demo_retriever.search_id(-1, "text")
    with pytest.raises(ConfigError, match="modality"):
        demo_retriever.search_id(0, "audio")
    with pytest.raises(DataError, match="vocabulary.*--query-id"):
        demo_retriever.search_text("sky")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(photo)
    with pytest.raises(DataError, match="featurizer.*--query-id"):
        demo_retriever.search_image(photo)  # synthetic data record no featurizer
    with pytest.raises(DataError, match="empty"):
        tagged_retriever.search_text("   ")
    with pytest.raises(DataError, match="no word of the query"):
        tagged_retriever.search_text("zebra unicorn")
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not a picture")
    with pytest.raises(DataError, match="not a readable image"):
        tagged_retriever.search_image(not_image)
    with pytest.raises(ConfigError, match="does not exist"):
        Retriever.from_run(tmp_path / "missing")


@pytest.mark.parametrize("args, message", [
    (["--query-id", 0, "--text", "sky"], "exactly one query"),
    ([], "exactly one query"),
    (["--text", " "], "empty"),
    (["--query-id", 99], "out of range"),
    (["--text", "sky"], "vocabulary"),
    (["--image", "missing.jpg"], "does not exist"),
])
def test_cli_bad_input(demo_run, args, message):
    out = _cli(["search", demo_run, *args])
    assert out.exit_code != 0
    assert message in out.output
    assert "Traceback" not in out.output


@pytest.mark.parametrize("suffix, reason", [(".png", "OSError: image file is truncated"),
                                             (".jpg", "OSError: image file is truncated"),
                                             (".png", "UnidentifiedImageError: cannot identify image file")])
def test_cli_damaged_query_image(demo_run, tmp_path, suffix, reason):
    photo = tmp_path / f"photo{suffix}"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photo)
    if "truncated" in reason:
        truncate(photo)
    else:
        photo.write_text("a text file named like an image")
    out = _cli(["search", demo_run, "--image", photo])
    assert out.exit_code == 2, out.output
    lines = out.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {photo} is not a readable image ({reason}"), out.output
    assert lines[0].endswith("; give a JPEG/PNG file")


@pytest.mark.parametrize("name, reason", [
    ("manifest.json", "is not a readable dataset manifest (JSON) (JSONDecodeError: "),
    ("vocabulary.txt", "is not a readable list (UTF-8 text) (UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff"),
])
def test_cli_damaged_dataset_folder_file(tagged_run, name, reason):
    damaged = tagged_run.parent / "tagged" / name
    original = damaged.read_bytes()
    try:
        if name.endswith(".json"):
            truncate(damaged)
        else:
            damaged.write_bytes(b"\xff\xfe" + original)
        out = _cli(["search", tagged_run, "--text", "red sky"])
    finally:
        damaged.write_bytes(original)
    assert out.exit_code == 2, out.output
    lines = out.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {damaged} {reason}"), out.output
    assert lines[0].endswith("; write the dataset folder again with `gcnretrieval prepare`")


def test_cli_missing_run_dir(tmp_path):
    out = _cli(["search", tmp_path / "nope", "--query-id", 0])
    assert out.exit_code != 0 and "does not exist" in out.output


def test_report_embeds_thumbnails_and_words(tagged_run, tagged_retriever, tmp_path):
    from gcnretrieval.retrieval import write_report

    page = write_report(tagged_run, tmp_path / "tagged.html", queries=2, top_k=3,
                        retriever=tagged_retriever).read_text(encoding="utf-8")
    # image -> text rows: the query's thumbnail; text -> image rows: one per result
    assert page.count('src="data:image/jpeg;base64,') == 2 * 1 + 2 * 3
    assert page.count('src="data:image/png;base64,') == 2  # loss and mAP figures
    assert tagged_retriever.describe("text", 0) in page  # texts shown as their tags
    assert "http://" not in page and "https://" not in page


def test_cli_faiss_index_matches_exact(demo_run):
    pytest.importorskip("faiss", reason="faiss-cpu is part of the test extra")
    runs = [_cli(["search", demo_run, "--query-id", 7, "--json", "--index", name]) for name in ("exact", "faiss")]
    exact, flat = (json.loads(r.stdout) for r in runs)
    assert flat["index"] == "faiss"
    assert [row["index"] for row in flat["results"]] == [row["index"] for row in exact["results"]]


@pytest.fixture(scope="module")
def efficientnet_run(tmp_path_factory) -> Path:
    return _tagged_run(tmp_path_factory.mktemp("efficientnet"), features="efficientnet-lite0")


@pytest.fixture(scope="module")
def lite0():
    from gcnretrieval.features import EfficientNetLite0Featurizer

    return EfficientNetLite0Featurizer(device="cpu")


def test_image_query_uses_the_manifest_featurizer(efficientnet_run, lite0):
    from gcnretrieval.features import EfficientNetLite0Featurizer, open_image
    from gcnretrieval.training import embed_split

    r = Retriever.from_run(efficientnet_run, device="cpu")
    assert r.database.image.shape[1] == 1280
    photo = efficientnet_run.parent / "images" / r.sources.test_images[3]
    result = r.search_image(photo, top_k=10)
    assert isinstance(r._featurizer, EfficientNetLite0Featurizer)
    assert r._featurizer.identity() == r.sources.manifest["image_features"]
    # the photo through the featurizer directly: the same features as the query's ...
    direct = lite0.transform([open_image(photo)])[0]
    np.testing.assert_allclose(r.image_features(photo), direct, rtol=0, atol=1e-6)
    # ... and as the dataset's row of that photo (prepare extracted it the same way)
    np.testing.assert_allclose(r.database.image[3], direct, rtol=1e-5, atol=1e-5)
    # the scores are the cosines of the model's embedding of those features (float64 loop reference)
    _, text = embed_split(r.model, r.database, r.device)
    with torch.no_grad():
        query = r.model.embed_image(torch.from_numpy(direct[None])).numpy()[0]
    ranks = _loop_ranks(query, text.numpy())
    assert [h.index for h in result.hits] == ranks[:10]
    q = query.astype(np.float64)
    for hit in result.hits:
        x = text.numpy()[hit.index].astype(np.float64)
        assert hit.score == pytest.approx(float(q @ x) / math.sqrt(float(q @ q) * float(x @ x)), abs=1e-5)
    out = _cli(["search", efficientnet_run, "--image", photo, "--top-k", 3, "--json"])
    assert out.exit_code == 0, out.output
    assert [row["index"] for row in json.loads(out.stdout)["results"]] == ranks[:3]


def test_image_featurizer_is_rebuilt_from_the_manifest(efficientnet_run, lite0):
    import copy
    import dataclasses

    from gcnretrieval.features import EfficientNetLite0Featurizer, open_image
    from gcnretrieval.retrieval.sources import DatasetSources

    manifest = json.loads((efficientnet_run.parent / "tagged" / "manifest.json").read_text())
    sources = DatasetSources(manifest=manifest)
    image = open_image(efficientnet_run.parent / "images" / "p0.jpg")

    def rebuilt(change):
        changed = copy.deepcopy(manifest)
        change(changed["image_features"])
        return dataclasses.replace(sources, manifest=changed).image_featurizer()

    other = rebuilt(lambda f: f["preprocessing"].update(crop=160, interpolation="bilinear"))
    assert other.preprocessing()["crop"] == 160 and other.preprocessing()["interpolation"] == "bilinear"
    expected = EfficientNetLite0Featurizer(device="cpu", crop=160, interpolation="bilinear").transform([image])[0]
    np.testing.assert_allclose(other.transform([image])[0], expected, rtol=0, atol=1e-6)
    assert not np.allclose(expected, lite0.transform([image])[0])
    with pytest.raises(DataError, match="weights .* differ from the ones the dataset was prepared with"):
        rebuilt(lambda f: f["weights"].update(sha256="0" * 64))
    with pytest.raises(DataError, match="random EfficientNet-Lite0 weights.*--query-id"):
        rebuilt(lambda f: f.update(weights="random"))
    with pytest.raises(DataError, match="records no preprocessing"):
        rebuilt(lambda f: f.pop("preprocessing"))


def test_cli_search_top_k_beyond_the_database_reports_what_it_shows(demo_run):
    out = _cli(["search", demo_run, "--query-id", 0, "--top-k", 1_000_000_000])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    size = int(lines[1].split()[1])  # "database: 40 test texts, ..."
    assert len(lines) == 3 + size
    assert f"top {size} (--top-k 1000000000 asked for more than the database holds)" in lines[1]
    assert "top 1000000000" not in out.output
    exact = _cli(["search", demo_run, "--query-id", 0, "--top-k", size])
    assert f"top {size}, exact index" in exact.output.splitlines()[1]
