"""Every bad input to the label-graph builder gives one clear GraphError line."""
from __future__ import annotations

import numpy as np
import pytest

from gcnretrieval.errors import GraphError, UnknownNameError
from gcnretrieval.graphs import (
    AdaptiveLabelGraph,
    build_label_graph,
    load_label_vocabulary,
    node_features_from_names,
    plot_label_graph,
)

Y = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]])
X = np.arange(12, dtype=np.float32).reshape(3, 4) + 1.0
NAMES = ["cat", "dog", "sky"]


def raises_one_line(match, fn, *args, **kwargs):
    with pytest.raises(GraphError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("labels", [Y * 2, Y - 0.5, np.where(Y == 1, np.nan, 0.0)])
def test_labels_not_zero_one(labels):
    raises_one_line("only 0 and 1", build_label_graph, labels, X)


def _edges_of(graph, node):
    source, target = graph.edge_index
    return {(int(j), int(i)) for j, i in zip(source, target) if node in (int(j), int(i))}


def test_label_that_never_occurs_is_named_and_left_isolated(caplog):
    labels = Y.copy()
    labels[:, 1] = 0
    graph = build_label_graph(labels, X, label_names=NAMES, threshold=0.01)
    assert "'dog'" in caplog.text and "never occurs" in caplog.text and "'cat'" not in caplog.text
    assert _edges_of(graph, 1) == {(1, 1)}  # its self-loop only
    assert len(_edges_of(graph, 0)) > 1  # the others keep their edges


def test_label_that_never_occurs_in_given_counts(caplog):
    counts = Y.T @ Y
    counts[2, :] = counts[:, 2] = 0
    graph = build_label_graph(None, X, cooccurrence=counts, label_names=NAMES, threshold=0.01)
    assert "'sky'" in caplog.text and _edges_of(graph, 2) == {(2, 2)}


def test_node_features_with_wrong_row_count():
    raises_one_line("4 rows but the labels have 3 columns", build_label_graph, Y, np.ones((4, 4)))


def test_node_features_with_nan():
    x = X.copy()
    x[2, 1] = np.nan
    message = raises_one_line("NaN", build_label_graph, Y, x, label_names=NAMES)
    assert "'sky'" in message


def test_label_names_missing_from_word_vector_source():
    source = {"cat": [1.0, 0.0], "sky": [0.0, 1.0]}
    message = raises_one_line("no word vector", build_label_graph, Y, source, label_names=["cat", "dgo", "sky"])
    assert "'dgo'" in message
    raises_one_line("no word vector", node_features_from_names, ["cat", "zebra"], source)


def test_word_vector_source_needs_names():
    raises_one_line("label_names", build_label_graph, Y, {"cat": [1.0]})


@pytest.mark.parametrize("t", [0.0, -0.1, 1.5, float("nan"), "0.4", True])
def test_threshold_outside_unit_interval(t):
    raises_one_line("threshold", build_label_graph, Y, X, threshold=t)


def test_unknown_kind_with_suggestion():
    raises_one_line("did you mean 'cooccurrence'", build_label_graph, Y, X, kind="coocurrence")


@pytest.mark.parametrize("options, match", [
    ({"reweight": 1.0}, "reweight"),
    ({"reweight": 0.0}, "reweight"),
    ({"edge_value": 0.0}, "edge_value"),
    ({"label_names": ["a", "b"]}, "2 label names for 3"),
])
def test_bad_options(options, match):
    raises_one_line(match, build_label_graph, Y, X, **options)


def test_cooccurrence_kind_needs_labels_or_counts():
    raises_one_line("needs the training labels", build_label_graph, None, X)
    raises_one_line("not both", build_label_graph, Y, X, cooccurrence=Y.T @ Y)
    raises_one_line("symmetric", build_label_graph, None, X, cooccurrence=np.triu(Y.T @ Y))


def test_labels_of_wrong_rank():
    raises_one_line("matrix", build_label_graph, Y[0], X)


def test_embedding_with_zero_vector():
    x = X.copy()
    x[0] = 0
    raises_one_line("all zeros", build_label_graph, None, x, kind="embedding", label_names=NAMES)


def test_adaptive_graph_bad_inputs():
    raises_one_line("threshold", AdaptiveLabelGraph, X, threshold=2.0)
    raises_one_line("NaN", AdaptiveLabelGraph, np.full((3, 4), np.nan))
    raises_one_line("num_weights", AdaptiveLabelGraph, X, num_weights=0)


def test_plot_to_unsupported_file_type(tmp_path):
    data = build_label_graph(Y, X)
    raises_one_line("unsupported file type", plot_label_graph, data, tmp_path / "graph.xyz")
    assert list(tmp_path.iterdir()) == []


def test_unknown_vocabulary_suggests_a_name():
    with pytest.raises(UnknownNameError, match="did you mean 'mscoco'"):
        load_label_vocabulary("coco")
