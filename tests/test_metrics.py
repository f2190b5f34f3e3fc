"""Retrieval metrics against plain-loop references written from the method's mAP definition."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from gcnretrieval.errors import DataError
from gcnretrieval.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    retrieval_report,
)


# --- plain-loop references (float64) ---------------------------------------------------


def _ranking(query_vec, database):
    """Database indices by cosine similarity, descending, ties by database index."""
    scores = []
    qn = np.sqrt(sum(float(v) ** 2 for v in query_vec))
    for j in range(len(database)):
        dn = np.sqrt(sum(float(v) ** 2 for v in database[j]))
        dot = sum(float(a) * float(b) for a, b in zip(query_vec, database[j]))
        scores.append(dot / (qn * dn))
    return sorted(range(len(database)), key=lambda j: (-scores[j], j))


def _relevant(label_a, label_b):
    return any(a > 0 and b > 0 for a, b in zip(label_a, label_b))


def reference_map(query, database, query_labels, database_labels, top_k=None):
    aps = []
    for i in range(len(query)):
        order = _ranking(query[i], database)
        if top_k is not None:
            order = order[:top_k]
        hits = 0
        total = 0.0
        for position, j in enumerate(order, start=1):
            if _relevant(query_labels[i], database_labels[j]):
                hits += 1
                total += hits / position
        aps.append(total / hits if hits else 0.0)
    return sum(aps) / len(aps)


def reference_precision_at_k(query, database, query_labels, database_labels, k):
    values = []
    for i in range(len(query)):
        order = _ranking(query[i], database)[:k]
        values.append(sum(_relevant(query_labels[i], database_labels[j]) for j in order) / k)
    return sum(values) / len(values)


def _data(seed, n_query=13, n_database=29, dim=6, num_labels=5, density=0.3, quantize=False):
    rng = np.random.default_rng(seed)
    query = rng.standard_normal((n_query, dim))
    database = rng.standard_normal((n_database, dim))
    if quantize:  # rows drawn from a few distinct vectors -> many exact ties
        query = query[rng.integers(0, 4, n_query)]
        database = database[rng.integers(0, 5, n_database)]
    query_labels = (rng.random((n_query, num_labels)) < density).astype(np.float64)
    database_labels = (rng.random((n_database, num_labels)) < density).astype(np.float64)
    return query, database, query_labels, database_labels


# --- mAP ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_matches_loop_reference(seed):
    data = _data(seed)
    expected = reference_map(*data)
    assert mean_average_precision(*data) == pytest.approx(expected, abs=1e-6)


def test_map_matches_sklearn_without_ties():
    query, database, query_labels, database_labels = _data(3, n_query=20, n_database=50, density=0.25)
    qn = query / np.linalg.norm(query, axis=1, keepdims=True)
    dn = database / np.linalg.norm(database, axis=1, keepdims=True)
    scores = qn @ dn.T
    aps = []
    for i in range(len(query)):
        relevant = (database_labels @ query_labels[i]) > 0
        assert len(np.unique(scores[i])) == len(scores[i])  # continuous scores, no ties
        aps.append(average_precision_score(relevant, scores[i]) if relevant.any() else 0.0)
    assert sum(((database_labels @ ql) > 0).any() for ql in query_labels) >= 15  # most queries have relevant items
    assert mean_average_precision(query, database, query_labels, database_labels) == pytest.approx(np.mean(aps), abs=1e-6)


def _duplicated_data(seed, n_query=37, n_database=53, dim=6, num_labels=5, density=0.3):
    """Few distinct directions, each repeated at many positions (some scaled by a power of two,
    which normalises to the bit-identical row): many exact ties in the queries and the database."""
    rng = np.random.default_rng(seed)
    query_base = rng.standard_normal((4, dim)).astype(np.float32)
    database_base = rng.standard_normal((6, dim)).astype(np.float32)
    query = query_base[rng.integers(0, 4, n_query)] * rng.choice([0.5, 1.0, 2.0], (n_query, 1)).astype(np.float32)
    database = database_base[rng.integers(0, 6, n_database)] * rng.choice([1.0, 4.0], (n_database, 1)).astype(np.float32)
    query_labels = (rng.random((n_query, num_labels)) < density).astype(np.float64)
    database_labels = (rng.random((n_database, num_labels)) < density).astype(np.float64)
    return query, database, query_labels, database_labels


def reference_pr_curve(query, database, query_labels, database_labels):
    n_database = len(database)
    expected_p = np.zeros(n_database)
    expected_r = np.zeros(n_database)
    with_relevant = 0
    for i in range(len(query)):
        order = _ranking(query[i], database)
        rel = [_relevant(query_labels[i], database_labels[j]) for j in order]
        total = sum(rel)
        with_relevant += total > 0
        hits = 0
        for k in range(n_database):
            hits += rel[k]
            expected_p[k] += hits / (k + 1)
            if total:
                expected_r[k] += hits / total
    return expected_p / len(query), expected_r / with_relevant


def test_chunked_equals_unchunked_bit_identically():
    data = _duplicated_data(4, n_query=25)

    def figures(chunk_size):
        return {
            "map": mean_average_precision(*data, chunk_size=chunk_size),
            "map@5": mean_average_precision(*data, top_k=5, chunk_size=chunk_size),
            "p@10": precision_at_k(*data, k=10, chunk_size=chunk_size),
            "pr": [array.tolist() for array in precision_recall_curve(*data, chunk_size=chunk_size)],
        }

    whole = figures(10_000)
    for chunk_size in range(1, 101):
        assert figures(chunk_size) == whole, chunk_size  # == on floats: bit for bit
    # and the unchunked values are the plain-loop ones, whose float64 ties are exact
    assert whole["map"] == pytest.approx(reference_map(*data), abs=1e-6)
    assert whole["map@5"] == pytest.approx(reference_map(*data, top_k=5), abs=1e-6)
    assert whole["p@10"] == pytest.approx(reference_precision_at_k(*data, 10), abs=1e-9)


@pytest.mark.parametrize("group_scores", [None, 20])
def test_duplicated_items_rank_by_index_in_every_chunking(group_scores, monkeypatch):
    from gcnretrieval import metrics

    if group_scores is not None:  # groups of 20 // 6 = 3 distinct query rows
        monkeypatch.setattr(metrics, "_GROUP_SCORES", group_scores)
    data = _duplicated_data(5)
    expected_p, expected_r = reference_pr_curve(*data)
    for chunk_size in range(1, len(data[0]) + 1):
        precision, recall, _ = precision_recall_curve(*data, chunk_size=chunk_size)
        np.testing.assert_allclose(precision, expected_p, atol=1e-12, err_msg=f"chunk_size={chunk_size}")
        np.testing.assert_allclose(recall, expected_r, atol=1e-12, err_msg=f"chunk_size={chunk_size}")
        assert mean_average_precision(*data, chunk_size=chunk_size) == pytest.approx(reference_map(*data), abs=1e-9)


@pytest.mark.parametrize("group_scores", [None, 13])
def test_identical_rows_score_bit_identically_in_every_block(group_scores, monkeypatch):
    from gcnretrieval import metrics
    from gcnretrieval.metrics import _distinct_rows, _normalized_rows, _score_blocks

    if group_scores is not None:  # groups of 13 // 6 = 2 distinct query rows
        monkeypatch.setattr(metrics, "_GROUP_SCORES", group_scores)

    query, database, _, _ = _duplicated_data(6, n_query=40, n_database=70, dim=9)
    q_rows, q_inverse = _distinct_rows(_normalized_rows(torch.from_numpy(query)))
    d_rows, d_inverse = _distinct_rows(_normalized_rows(torch.from_numpy(database)))
    assert len(q_rows) == 4 and len(d_rows) == 6  # scaled copies are the same normalised row
    first_of = torch.tensor([int((d_inverse == g).nonzero()[0]) for g in range(len(d_rows))])
    first_query_of = torch.tensor([int((q_inverse == g).nonzero()[0]) for g in range(len(q_rows))])
    whole = None
    for step in [len(query)] + list(range(1, len(query))):
        scores = torch.full((len(query), len(database)), float("nan"))
        for queries, block, expand in _score_blocks(q_rows, q_inverse, d_rows, d_inverse, step):
            assert len(queries) <= step
            scores[queries] = block if expand is None else block[expand]
        assert not bool(scores.isnan().any())  # every query once
        # the same database direction: the bit-identical score of its first occurrence; the same for queries
        assert torch.equal(scores, scores[:, first_of[d_inverse]])
        assert torch.equal(scores, scores[first_query_of[q_inverse]])
        whole = scores if whole is None else whole
        assert torch.equal(scores, whole), step  # and the same bits in every chunking


@pytest.mark.parametrize("group_scores", [None, 7 * 2000])
def test_near_ties_do_not_depend_on_chunking(group_scores, monkeypatch):
    # continuous scores: with 4,000 items, most queries have distinct items within float32
    # rounding of each other, whose order follows the computed bits; those must not move
    from gcnretrieval import metrics

    if group_scores is not None:  # groups of 7 distinct query rows
        monkeypatch.setattr(metrics, "_GROUP_SCORES", group_scores)
    rng = np.random.default_rng(14)
    query = rng.standard_normal((50, 16)).astype(np.float32)
    database = rng.standard_normal((4000, 16)).astype(np.float32)
    database[2000:] = database[:2000]
    query_labels = (rng.random((50, 6)) < 0.3).astype(np.float32)
    database_labels = (rng.random((4000, 6)) < 0.3).astype(np.float32)
    data = (query, database, query_labels, database_labels)
    whole = mean_average_precision(*data)
    whole_k = mean_average_precision(*data, top_k=100)
    for chunk_size in (1, 2, 3, 7, 16, 49):
        assert mean_average_precision(*data, chunk_size=chunk_size) == whole, chunk_size
        assert mean_average_precision(*data, top_k=100, chunk_size=chunk_size) == whole_k, chunk_size


@pytest.mark.parametrize("height", [1, 2, 3, 5, 8, 17, 64])
def test_normalized_rows_depend_on_the_row_alone(height):
    from gcnretrieval.metrics import _normalized_rows

    rng = np.random.default_rng(height)
    for dim in (1, 2, 3, 7, 16, 33, 300):
        row = rng.standard_normal(dim).astype(np.float32)
        block = rng.standard_normal((height, dim)).astype(np.float32)
        block[rng.integers(0, height, max(1, height // 2))] = row
        block[0] = row * 8.0  # a power-of-two multiple normalises to the same bits
        out = _normalized_rows(torch.from_numpy(block))
        alone = _normalized_rows(torch.from_numpy(row[None]))[0]
        for i in range(height):
            if np.array_equal(block[i], row) or np.array_equal(block[i], row * 8.0):
                assert torch.equal(out[i], alone)
        reference = block.astype(np.float64) / np.linalg.norm(block.astype(np.float64), axis=1, keepdims=True)
        np.testing.assert_allclose(out.numpy(), reference, rtol=0, atol=4e-7)


def test_normalized_rows_zero_row_and_signed_zero():
    from gcnretrieval.metrics import _distinct_rows, _normalized_rows

    rows = torch.tensor([[0.0, 0.0], [-0.0, 3.0], [0.0, 3.0], [0.0, -0.0]])
    out = _normalized_rows(rows)
    assert out.tolist() == [[0.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    assert not bool(torch.signbit(out).any())  # -0.0 is written as +0.0: one row, one key
    distinct, inverse = _distinct_rows(out)
    assert distinct.tolist() == [[0.0, 0.0], [0.0, 1.0]] and inverse.tolist() == [0, 1, 1, 0]


def test_distinct_rows_in_order_of_first_appearance_with_key_collisions():
    from gcnretrieval.metrics import _distinct_rows

    rng = np.random.default_rng(13)
    base = rng.standard_normal((5, 40)).astype(np.float32)
    base[:, :] = base[0]  # the rows differ in one column only: the key columns alone cannot tell them apart
    base[np.arange(5), 7 * np.arange(5) + 1] += 1.0
    pick = rng.integers(0, 5, 60)
    distinct, inverse = _distinct_rows(torch.from_numpy(base[pick]))
    first = [int(np.flatnonzero(pick == g)[0]) for g in dict.fromkeys(pick.tolist())]
    assert torch.equal(distinct, torch.from_numpy(base[pick][first]))
    assert torch.equal(distinct[inverse], torch.from_numpy(base[pick]))


def test_memory_budget_sets_chunks():
    data = _data(5)
    # a budget of one pair forces one query per chunk; the result must not change
    assert mean_average_precision(*data, max_chunk_bytes=1) == mean_average_precision(*data)


def test_ties_break_by_database_index():
    # item 0 and item 1 score exactly the same; item 0 (irrelevant) must come first
    query = np.array([[1.0, 0.0]])
    database = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    query_labels = np.array([[1.0, 0.0]])
    database_labels = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    # ranking 0, 1, 2 -> rel 0, 1, 1 -> AP = (1/2 + 2/3) / 2 = 7/12 (the other order would give 5/6)
    assert mean_average_precision(query, database, query_labels, database_labels) == pytest.approx(7 / 12, abs=1e-6)
    # top-1 is the tied irrelevant item 0 -> no relevant item in the top 1 -> 0
    assert mean_average_precision(query, database, query_labels, database_labels, top_k=1) == 0.0
    # top-2: rel 0, 1 -> AP@2 = (1/2) / 1
    assert mean_average_precision(query, database, query_labels, database_labels, top_k=2) == pytest.approx(0.5, abs=1e-6)


def test_ties_at_the_top_k_threshold():
    # four items tie; only the two lowest indices may enter the top 2
    query = np.array([[1.0, 0.0]])
    database = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [3.0, 1.0]])
    query_labels = np.array([[1.0]])
    database_labels = np.array([[1.0], [0.0], [1.0], [1.0], [1.0], [1.0]])
    # ranking: 1 (tie group 1..4 ordered by index), 2, 3, 4, then 5 (cos ~0.95), then 0
    # top 2 = items 1, 2 -> rel 0, 1 -> AP@2 = (1/2) / 1
    assert mean_average_precision(query, database, query_labels, database_labels, top_k=2) == pytest.approx(0.5, abs=1e-6)
    assert mean_average_precision(query, database, query_labels, database_labels, top_k=2) == pytest.approx(
        reference_map(query, database, query_labels, database_labels, top_k=2), abs=1e-6
    )


def test_query_without_relevant_items_scores_zero():
    query = np.array([[1.0, 0.0], [0.0, 1.0]])
    database = np.array([[1.0, 1.0], [1.0, -1.0]])
    query_labels = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # query 0 shares nothing
    database_labels = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    value = mean_average_precision(query, database, query_labels, database_labels)
    assert not np.isnan(value)
    # query 1: item 0 (cos 1/sqrt2, relevant) ranks before item 1 (cos -1/sqrt2) -> AP 1; query 0 -> 0
    assert value == pytest.approx(0.5, abs=1e-6)
    assert mean_average_precision(query[:1], database, query_labels[:1], database_labels) == 0.0
    assert mean_average_precision(query[:1], database, query_labels[:1], database_labels, top_k=1) == 0.0


@pytest.mark.parametrize("top_k", [1, 2, 5, 11, 29, 100])
@pytest.mark.parametrize("quantize", [False, True])
def test_top_k_matches_loop_reference(top_k, quantize):
    data = _data(6, quantize=quantize)
    expected = reference_map(*data, top_k=min(top_k, 29))
    assert mean_average_precision(*data, top_k=top_k) == pytest.approx(expected, abs=1e-6)


def test_numpy_and_torch_inputs_agree():
    data = _data(7)
    as_torch = [torch.from_numpy(x).float() for x in data]
    assert mean_average_precision(*as_torch) == pytest.approx(mean_average_precision(*data), abs=1e-7)


def test_bad_shapes_raise_data_error():
    query, database, query_labels, database_labels = _data(8)
    with pytest.raises(DataError, match="query_labels"):
        mean_average_precision(query, database, query_labels[:-1], database_labels)
    with pytest.raises(DataError, match="same space"):
        mean_average_precision(query[:, :3], database, query_labels, database_labels)
    with pytest.raises(DataError, match="top_k"):
        mean_average_precision(query, database, query_labels, database_labels, top_k=0)


# --- precision@k, PR curve, report ----------------------------------------------------------


@pytest.mark.parametrize("k", [1, 4, 29])
def test_precision_at_k_matches_loop_reference(k):
    data = _data(9, quantize=True)
    assert precision_at_k(*data, k=k) == pytest.approx(reference_precision_at_k(*data, k), abs=1e-9)


def test_precision_recall_curve_matches_loop_reference():
    query, database, query_labels, database_labels = _data(10, quantize=True)
    precision, recall, ranks = precision_recall_curve(query, database, query_labels, database_labels, chunk_size=4)
    assert ranks.tolist() == list(range(1, len(database) + 1))
    expected_p, expected_r = reference_pr_curve(query, database, query_labels, database_labels)
    np.testing.assert_allclose(precision, expected_p, atol=1e-12)
    np.testing.assert_allclose(recall, expected_r, atol=1e-12)
    assert recall[-1] == pytest.approx(1.0)


def test_retrieval_report_directions():
    rng = np.random.default_rng(11)
    image = rng.standard_normal((15, 4))
    text = rng.standard_normal((15, 4))
    labels = (rng.random((15, 3)) < 0.4).astype(np.float64)
    report = retrieval_report(image, text, labels)
    assert report["i2t_map"] == pytest.approx(reference_map(image, text, labels, labels), abs=1e-6)
    assert report["t2i_map"] == pytest.approx(reference_map(text, image, labels, labels), abs=1e-6)
    assert report["avg_map"] == pytest.approx((report["i2t_map"] + report["t2i_map"]) / 2)
    assert report["i2t_map"] != pytest.approx(report["t2i_map"])
