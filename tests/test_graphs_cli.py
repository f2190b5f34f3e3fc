"""`gcnretrieval graph` through click's CliRunner."""
from __future__ import annotations

from click.testing import CliRunner

from gcnretrieval.cli import cli


def run(*args):
    return CliRunner().invoke(cli, ["graph", *args])


def test_graph_mscoco_summary():
    result = run("mscoco")
    assert result.exit_code == 0, result.output
    assert "nodes: 80" in result.output
    assert "edges: 111 directed (excluding self-loops), 106 undirected pairs" in result.output
    assert "isolated labels: 12 (airplane, bird, cat, sheep, cow, bear, zebra, giraffe, broccoli, bed, vase, " \
           "teddy bear)" in result.output
    # under the j -> i = P(i | j) convention most COCO labels borrow from nobody
    assert "labels receiving no message (in-degree 0): 57" in result.output
    person = next(line for line in result.output.splitlines() if line.strip().startswith("person "))
    assert person.split()[1:] == ["55", "0"]


def test_graph_mirflickr_summary():
    result = run("mirflickr", "--threshold", "0.4")
    assert result.exit_code == 0, result.output
    assert "edges: 77 directed" in result.output and "isolated labels: 0" in result.output
    assert "labels receiving no message (in-degree 0): 7" in result.output


def test_graph_embedding_kind_with_plot(tmp_path):
    path = tmp_path / "voc.png"
    result = run("voc", "--kind", "embedding", "--plot", str(path))
    assert result.exit_code == 0, result.output
    assert "embedding" in result.output and str(path) in result.output
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_graph_bad_inputs():
    unknown = run("cocoo")
    assert unknown.exit_code != 0 and "did you mean 'mscoco'" in unknown.output
    threshold = run("voc", "--threshold", "0")
    assert threshold.exit_code != 0 and "threshold must be in (0, 1]" in threshold.output
    kind = run("voc", "--kind", "spectral")
    assert kind.exit_code != 0
