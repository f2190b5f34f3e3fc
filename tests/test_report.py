"""`gcnretrieval report`: one self-contained HTML page, checked with html.parser."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

import gcnretrieval
from gcnretrieval.cli import cli
from gcnretrieval.errors import ConfigError
from gcnretrieval.retrieval import Retriever, write_report

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "synthetic.toml"
TINY = {
    "data.synthetic.num_train": 120,
    "data.synthetic.num_test": 30,
    "data.synthetic.num_labels": 5,
    "data.synthetic.image_dim": 16,
    "data.synthetic.text_dim": 12,
    "graph.node_feature_dim": 8,
    "model.common_dim": 16,
    "encoder.num_layers": 2,
    "train.batch_size": 32,
    "train.epochs": 1,
    "train.device": "cpu",
}


class _Page(HTMLParser):
    """Collects the title, the metrics cells, query rows, cards, images and every address."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.in_title = False
        self.map_cells: list[str] = []
        self.in_map = False
        self.rows: dict[str, int] = {"image": 0, "text": 0}
        self.cards: dict[str, int] = {}
        self.images: list[str] = []
        self.addresses: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        classes = (attrs.get("class") or "").split()
        if tag == "title":
            self.in_title = True
        if tag == "td" and "map" in classes:
            self.in_map = True
            self.map_cells.append("")
        if "query-row" in classes:
            self.rows[attrs["data-modality"]] += 1
        if "card" in classes:
            kind = next(c for c in classes if c != "card")
            self.cards[kind] = self.cards.get(kind, 0) + 1
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            if key in attrs:
                self.addresses.append(attrs[key])

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag == "td":
            self.in_map = False

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        if self.in_map:
            self.map_cells[-1] += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "demo"
    gcnretrieval.run(DEMO, TINY, out=out, progress=False)
    return out


def test_report_structure(run_dir, tmp_path):
    out = write_report(run_dir, tmp_path / "page.html", queries=3, top_k=5, device="cpu")
    assert out == tmp_path / "page.html"
    page = _parse(out)
    assert page.title == "Run demo"
    final = json.loads((run_dir / "final_metrics.json").read_text())
    expected = [final["test"][key] for key in ("i2t_map", "t2i_map", "avg_map")]
    assert [float(cell) for cell in page.map_cells] == pytest.approx(expected, abs=5e-5)
    assert page.rows == {"image": 3, "text": 3}
    assert page.cards["query"] == 6
    assert page.cards.get("relevant", 0) + page.cards.get("irrelevant", 0) == 6 * 5
    # the two figures, embedded; nothing fetched from anywhere
    assert len(page.images) == 2 and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert all(address.startswith("data:") for address in page.addresses)
    assert "script" not in page.tags and "link" not in page.tags
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left


def test_report_marks_relevance_like_the_retriever(run_dir, tmp_path):
    retriever = Retriever.from_run(run_dir, device="cpu")
    out = write_report(run_dir, tmp_path / "r.html", queries=2, top_k=4, retriever=retriever)
    page = _parse(out)
    relevant = sum(bool(hit.relevant) for n in (0, 29) for m in ("image", "text")
                   for hit in retriever.search_id(n, m, 4).hits)
    assert page.cards.get("relevant", 0) == relevant


def test_cli_report_default_path_and_errors(run_dir, tmp_path):
    out = CliRunner().invoke(cli, ["report", str(run_dir), "--queries", "1", "--top-k", "2"])
    assert out.exit_code == 0, out.output
    assert (run_dir / "report.html").is_file()
    assert _parse(run_dir / "report.html").rows == {"image": 1, "text": 1}
    missing = CliRunner().invoke(cli, ["report", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "does not exist" in missing.output
    with pytest.raises(ConfigError, match="at least 1"):
        write_report(run_dir, queries=0)


def test_cli_report_of_a_run_with_a_damaged_file(run_dir, tmp_path):
    import shutil

    from damage import truncate

    copy = Path(shutil.copytree(run_dir, tmp_path / "run"))
    (copy / "report.html").unlink(missing_ok=True)  # written by an earlier test of the same run
    final = truncate(copy / "final_metrics.json")
    out = CliRunner().invoke(cli, ["report", str(copy), "--queries", "1", "--top-k", "2"])
    assert out.exit_code == 1, out.output
    lines = out.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {final} is not a readable run file (JSON) (JSONDecodeError: ")
    assert lines[0].endswith("; train again into a new run directory")
    assert not (copy / "report.html").exists()
