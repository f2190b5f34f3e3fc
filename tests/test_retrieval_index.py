"""Search indexes: exact cosine top-k against a plain loop, FAISS flat parity, approximate recall."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.retrieval import ExactIndex, build_index


def _loop_ranking(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, list[list[int]]]:
    """Reference: float64 cosine of every pair, sorted by (score desc, index asc)."""
    scores_all, ranks = [], []
    for q in queries.astype(np.float64):
        row = []
        for j, x in enumerate(database.astype(np.float64)):
            cos = float(q @ x) / (math.sqrt(float(q @ q)) * math.sqrt(float(x @ x)))
            row.append((cos, j))
        row.sort(key=lambda pair: (-pair[0], pair[1]))
        ranks.append([j for _, j in row[:k]])
        scores_all.append([s for s, _ in row[:k]])
    return np.array(scores_all), ranks


def test_exact_index_equals_loop_ranking():
    rng = np.random.default_rng(0)
    database = rng.standard_normal((57, 9)).astype(np.float32)
    queries = rng.standard_normal((6, 9)).astype(np.float32)
    scores, indices = ExactIndex(database).search(queries, k=10)
    ref_scores, ref_ranks = _loop_ranking(queries, database, 10)
    assert indices.tolist() == ref_ranks
    np.testing.assert_allclose(scores.numpy(), ref_scores, atol=1e-5)
    assert scores.dtype == torch.float32 and indices.dtype == torch.int64


def test_exact_index_small_chunks_and_single_query_agree():
    rng = np.random.default_rng(1)
    database = rng.standard_normal((40, 5)).astype(np.float32)
    queries = rng.standard_normal((7, 5)).astype(np.float32)
    whole = ExactIndex(database).search(queries, 4)
    chunked = ExactIndex(database, max_chunk_bytes=1).search(queries, 4)  # one query per chunk
    assert torch.equal(whole[1], chunked[1])
    single = ExactIndex(database).search(queries[2], 4)  # a vector is one query
    assert single[1].tolist() == [whole[1][2].tolist()]


def test_exact_index_ties_go_to_the_lower_index():
    # items 1, 3 and 4 are power-of-two multiples of one row: bit-identical once normalised, so they
    # tie on every CPU (a multiple such as 3x may normalise one ulp apart and need not tie); item 0 is the best
    database = np.array([[1, 0], [1, 1], [0, 1], [2, 2], [4, 4], [-1, 0]], dtype=np.float32)
    scores, indices = ExactIndex(database).search(np.array([[1.0, 0.2]]), k=4)
    assert indices.tolist() == [[0, 1, 3, 4]]
    assert scores[0, 1] == scores[0, 2] == scores[0, 3]
    _, top3 = ExactIndex(database).search(np.array([[1.0, 0.2]]), k=3)
    assert top3.tolist() == [[0, 1, 3]]


def test_exact_index_clamps_k_and_rejects_bad_input():
    index = ExactIndex(np.eye(3, dtype=np.float32))
    _, indices = index.search(np.ones(3), k=10)
    assert indices.shape == (1, 3)
    with pytest.raises(DataError, match="top_k"):
        index.search(np.ones(3), k=0)
    with pytest.raises(DataError, match="dimensions"):
        index.search(np.ones(4), k=1)
    with pytest.raises(DataError, match="empty database"):
        ExactIndex(np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(DataError, match="NaN"):
        index.search(np.array([np.nan, 1.0, 0.0]), k=1)
    with pytest.raises(ConfigError, match="search index"):
        build_index("exakt", np.eye(3))


def test_faiss_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    with pytest.raises(ConfigError, match=r"pip install 'gcnretrieval\[faiss\]'"):
        build_index("faiss", np.eye(3, dtype=np.float32))


def test_faiss_flat_equals_exact():
    pytest.importorskip("faiss", reason="faiss-cpu is part of the test extra")
    from gcnretrieval.retrieval import FaissIndex

    rng = np.random.default_rng(2)
    database = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((30, 16)).astype(np.float32)
    exact = ExactIndex(database).search(queries, 10)
    flat = FaissIndex(database, kind="flat").search(queries, 10)
    assert torch.equal(exact[1], flat[1])
    np.testing.assert_allclose(flat[0].numpy(), exact[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("kind, options", [("hnsw", {}), ("ivf", {"nlist": 16, "nprobe": 4})])
def test_faiss_approximate_recall_at_10(kind, options):
    pytest.importorskip("faiss", reason="faiss-cpu is part of the test extra")
    from gcnretrieval.retrieval import FaissIndex

    rng = np.random.default_rng(3)
    centres = rng.standard_normal((16, 24))
    database = (centres[rng.integers(0, 16, 3000)] + 0.5 * rng.standard_normal((3000, 24))).astype(np.float32)
    queries = (centres[rng.integers(0, 16, 100)] + 0.5 * rng.standard_normal((100, 24))).astype(np.float32)
    _, truth = ExactIndex(database).search(queries, 10)
    scores, found = FaissIndex(database, kind=kind, threads=1, **options).search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth.tolist(), found.tolist())])
    assert recall >= 0.8, recall
    assert bool((scores[:, :-1] >= scores[:, 1:]).all())  # descending


def test_faiss_unknown_kind():
    pytest.importorskip("faiss", reason="faiss-cpu is part of the test extra")
    with pytest.raises(ConfigError, match="faiss index kind"):
        build_index("faiss", np.eye(3, dtype=np.float32), kind="lsh")


def test_top_k_fast_path_keeps_the_tie_rule():
    from gcnretrieval.retrieval.index import _top_k

    rng = np.random.default_rng(4)
    for _ in range(50):
        scores = rng.integers(0, 5, size=(4, 30)).astype(np.float32)  # many ties
        for k in (1, 4, 30):
            got = _top_k(torch.from_numpy(scores), k).tolist()
            expected = [sorted(range(30), key=lambda j: (-row[j], j))[:k] for row in scores.tolist()]
            assert got == expected


def _python_ranking(queries: np.ndarray, database: np.ndarray) -> list[list[int]]:
    """Reference: cosine with plain float64 sums (identical rows give identical sums, so ties are exact),
    sorted by (score desc, index asc)."""
    ranks = []
    for q in queries.tolist():
        qn = math.sqrt(sum(v * v for v in q))
        cos = [sum(a * b for a, b in zip(q, x)) / (qn * math.sqrt(sum(v * v for v in x))) for x in database.tolist()]
        ranks.append(sorted(range(len(database)), key=lambda j: (-cos[j], j)))
    return ranks


@pytest.mark.parametrize("group_scores", [None, 11])
def test_exact_index_duplicates_score_bit_identically_in_every_chunking(group_scores, monkeypatch):
    from gcnretrieval import metrics
    from gcnretrieval.retrieval.index import _BYTES_PER_PAIR

    if group_scores is not None:  # the query rows scored in groups of 11 // 5 = 2
        monkeypatch.setattr(metrics, "_GROUP_SCORES", group_scores)

    rng = np.random.default_rng(5)
    directions = rng.standard_normal((5, 7)).astype(np.float32)
    which = rng.integers(0, 5, 45)
    database = directions[which] * rng.choice([1.0, 2.0], (45, 1)).astype(np.float32)  # x2 normalises to the same row
    query_pick = rng.integers(0, 3, 12)
    queries = rng.standard_normal((3, 7)).astype(np.float32)[query_pick]
    reference = _python_ranking(queries, database)
    whole = ExactIndex(database).search(queries, 45)
    assert whole[1].tolist() == reference
    for step in range(1, len(queries) + 1):
        index = ExactIndex(database, max_chunk_bytes=step * _BYTES_PER_PAIR * len(database))
        for k in (1, 4, 45):
            scores, indices = index.search(queries, k)
            assert indices.tolist() == [r[:k] for r in reference], (step, k)
            assert torch.equal(scores, whole[0][:, :k]) and torch.equal(indices, whole[1][:, :k]), (step, k)
        full = torch.empty(len(queries), len(database))
        full.scatter_(1, indices, scores)
        for i in range(len(queries)):
            for j in range(len(database)):
                assert bool((full[i, which == which[j]] == full[i, j]).all())  # same direction: same bits
                assert bool((full[query_pick == query_pick[i], j] == full[i, j]).all())  # the same query
