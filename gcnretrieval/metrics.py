r"""Retrieval metrics for multi-label cross-modal search: mAP@all / mAP@k, precision@k, PR curves.

Every query ranks the whole database by cosine similarity (both sides L2-normalised),
descending, ties broken by database index (a stable sort). A database item is relevant
to a query when the two share at least one label. The average precision of query
:math:`q` over a ranking of length :math:`K` is

.. math::
    \mathrm{AP}(q) = \frac{1}{R_q} \sum_{k=1}^{K} P_q(k)\, \mathrm{rel}_q(k), \qquad
    P_q(k) = \frac{1}{k} \sum_{i=1}^{k} \mathrm{rel}_q(i),

where :math:`R_q` counts the relevant items in the ranking (the whole database for
mAP@all, the top :math:`k` for mAP@k). A query with :math:`R_q = 0` scores 0.

Queries are processed in chunks on the inputs' device (float32). A chunk of :math:`b`
queries against :math:`N` database items holds at most about :math:`32\,bN` bytes of
temporaries: at the sort, relevance 1 + scores 4 + sorted values 4 + indices 8 = 17 bytes
per pair (the label product, 4, comes and goes before); afterwards the ranked relevance
and its float and cumulated copies, 9. The bound 32 leaves headroom, and the chunk size
is chosen so that :math:`32\,bN` stays below ``max_chunk_bytes`` (default 512 MiB). Total memory is therefore about
:math:`4 (N d + N C + n_q (d + C)) + \min(32\,bN, \texttt{max\_chunk\_bytes})` bytes for
:math:`d`-dimensional embeddings and :math:`C` labels; for 2,000 queries against 200,000
items that is well under 2 GB.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from gcnretrieval.errors import DataError

ArrayLike = np.ndarray | torch.Tensor

#: bytes of temporaries per (query, database item) pair in one chunk; see the module docstring
BYTES_PER_PAIR = 32
DEFAULT_MAX_CHUNK_BYTES = 512 * 2**20

__all__ = [
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "retrieval_report",
]


def _to_tensor(x: ArrayLike, device: torch.device | None, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        tensor = x.detach()
    else:
        array = np.asarray(x, dtype=np.float32)
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = np.array(array, dtype=np.float32, order="C")
        tensor = torch.from_numpy(array)
    if tensor.dim() != 2:
        raise DataError(f"{what} must be a 2-D matrix, got shape {tuple(tensor.shape)}")
    return tensor.to(device=device, dtype=torch.float32)


def _prepare(query, database, query_labels, database_labels):
    device = query.device if isinstance(query, torch.Tensor) else None
    q = _to_tensor(query, device, "query")
    d = _to_tensor(database, q.device, "database")
    ql = _to_tensor(query_labels, q.device, "query_labels")
    dl = _to_tensor(database_labels, q.device, "database_labels")
    if q.shape[0] != ql.shape[0]:
        raise DataError(f"query has {q.shape[0]} rows but query_labels has {ql.shape[0]}; give one label row per query")
    if d.shape[0] != dl.shape[0]:
        raise DataError(f"database has {d.shape[0]} rows but database_labels has {dl.shape[0]}; give one label row per item")
    if q.shape[1] != d.shape[1]:
        raise DataError(f"query embeddings are {q.shape[1]}-d but database embeddings are {d.shape[1]}-d; embed both in the same space")
    if ql.shape[1] != dl.shape[1]:
        raise DataError(f"query labels have {ql.shape[1]} columns but database labels have {dl.shape[1]}; use the same label set")
    if q.shape[0] == 0 or d.shape[0] == 0:
        raise DataError("retrieval needs at least one query and one database item")
    return F.normalize(q, dim=1), F.normalize(d, dim=1), ql, dl


def _chunk_size(num_database: int, chunk_size: int | None, max_chunk_bytes: int) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise DataError(f"chunk_size must be a positive number of queries, got {chunk_size}")
        return int(chunk_size)
    return max(1, int(max_chunk_bytes) // (BYTES_PER_PAIR * num_database))


def _top_k_stable(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` best scores per row, ordered by score then database index.

    ``torch.topk`` may break ties arbitrarily: items scoring exactly the k-th value are
    replaced by the lowest-index ones, then the k survivors are sorted stably.
    """
    kth = torch.topk(scores, k, dim=1, sorted=False).values.min(dim=1, keepdim=True).values
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(dim=1, keepdim=True)
    keep = above | (tied & (torch.cumsum(tied, dim=1, dtype=torch.int32) <= room))
    index = keep.nonzero()[:, 1].view(scores.shape[0], k)  # row-major: ascending database index
    order = torch.sort(scores.gather(1, index), dim=1, descending=True, stable=True).indices
    return index.gather(1, order)


def _ranked_relevance(
    query: ArrayLike,
    database: ArrayLike,
    query_labels: ArrayLike,
    database_labels: ArrayLike,
    top_k: int | None,
    chunk_size: int | None,
    max_chunk_bytes: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield, per query chunk, the relevance of the ranked list ``(b, K)`` and ``R_q`` over the database ``(b,)``."""
    q, d, ql, dl = _prepare(query, database, query_labels, database_labels)
    num_database = d.shape[0]
    if top_k is not None and top_k < 1:
        raise DataError(f"top_k must be a positive rank, got {top_k}")
    k = num_database if top_k is None else min(int(top_k), num_database)
    step = _chunk_size(num_database, chunk_size, max_chunk_bytes)
    for start in range(0, q.shape[0], step):
        relevant = (ql[start : start + step] @ dl.T) > 0
        block = q[start : start + step]
        if block.shape[0] == 1:
            # a one-row product takes a matrix-vector kernel whose rounding can differ between
            # columns, splitting exact ties (duplicate items); a two-row product keeps them exact
            scores = (torch.cat([block, block]) @ d.T)[:1]
        else:
            scores = block @ d.T
        if k == num_database:
            ranking = torch.sort(scores, dim=1, descending=True, stable=True).indices
        else:
            ranking = _top_k_stable(scores, k)
        del scores
        ranked, relevant_total = relevant.gather(1, ranking), relevant.sum(dim=1)
        del ranking, relevant
        yield ranked, relevant_total


def mean_average_precision(
    query: ArrayLike,
    database: ArrayLike,
    query_labels: ArrayLike,
    database_labels: ArrayLike,
    top_k: int | None = None,
    *,
    chunk_size: int | None = None,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> float:
    r"""Mean average precision of cosine retrieval with shared-label relevance.

    .. math::
        \mathrm{mAP} = \frac{1}{|Q|} \sum_{q \in Q} \frac{1}{R_q} \sum_{k=1}^{K} P_q(k)\,\mathrm{rel}_q(k)

    Args:
        query: query embeddings ``(n_q, d)`` (numpy or torch; computed on this tensor's device).
        database: database embeddings ``(N, d)``.
        query_labels: ``(n_q, C)`` 0/1 labels of the queries.
        database_labels: ``(N, C)`` 0/1 labels of the database items.
        top_k: ``None`` for mAP@all (default); otherwise mAP@k, where :math:`R_q` counts the
            relevant items within the top ``k``.
        chunk_size: queries per chunk (default: from ``max_chunk_bytes``).
        max_chunk_bytes: memory budget of one chunk's temporaries, about
            ``32 * chunk_size * N`` bytes (default 512 MiB).

    Returns:
        The mean over queries; a query without relevant items contributes 0.
    """
    total = 0.0
    count = 0
    for rel, _ in _ranked_relevance(query, database, query_labels, database_labels, top_k, chunk_size, max_chunk_bytes):
        rel = rel.float()
        ranks = torch.arange(1, rel.shape[1] + 1, device=rel.device, dtype=torch.float32)
        precision = torch.cumsum(rel, dim=1).div_(ranks).mul_(rel)  # P(k) * rel(k), in place
        hits = rel.sum(dim=1, dtype=torch.float64)
        summed = precision.sum(dim=1, dtype=torch.float64)
        del precision
        ap = torch.where(hits > 0, summed / hits.clamp_min(1.0), torch.zeros_like(summed))
        total += float(ap.sum())
        count += rel.shape[0]
    return total / count


def precision_at_k(
    query: ArrayLike,
    database: ArrayLike,
    query_labels: ArrayLike,
    database_labels: ArrayLike,
    k: int,
    *,
    chunk_size: int | None = None,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> float:
    """Mean over queries of the share of relevant items among the top ``k`` (ranking as in mAP).

    ``k`` larger than the database is clipped to the database size.
    """
    total = 0.0
    count = 0
    for rel, _ in _ranked_relevance(query, database, query_labels, database_labels, k, chunk_size, max_chunk_bytes):
        total += float(rel.sum(dtype=torch.float64)) / rel.shape[1]
        count += rel.shape[0]
    return total / count


def precision_recall_curve(
    query: ArrayLike,
    database: ArrayLike,
    query_labels: ArrayLike,
    database_labels: ArrayLike,
    *,
    chunk_size: int | None = None,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every rank cut-off, averaged over queries.

    At rank ``k``: precision = mean over all queries of (relevant in top k) / k; recall =
    mean over the queries that have at least one relevant item of (relevant in top k) /
    :math:`R_q` (recall is undefined for the others, which are left out of it).

    Returns:
        ``(precision, recall, ranks)``: float64 arrays of length ``N``, ``ranks = 1..N``.
    """
    precision_sum = None
    recall_sum = None
    num_queries = 0
    num_with_relevant = 0
    for rel, relevant_total in _ranked_relevance(query, database, query_labels, database_labels, None, chunk_size, max_chunk_bytes):
        hits = torch.cumsum(rel, dim=1, dtype=torch.float64)
        has = relevant_total > 0
        chunk_recall = (hits[has] / relevant_total[has, None].double()).sum(dim=0)
        precision_sum = hits.sum(dim=0) if precision_sum is None else precision_sum + hits.sum(dim=0)
        recall_sum = chunk_recall if recall_sum is None else recall_sum + chunk_recall
        num_queries += rel.shape[0]
        num_with_relevant += int(has.sum())
    ranks = np.arange(1, precision_sum.shape[0] + 1, dtype=np.float64)
    precision = precision_sum.cpu().numpy() / ranks / num_queries
    recall = recall_sum.cpu().numpy() / max(num_with_relevant, 1)
    return precision, recall, ranks


def retrieval_report(
    image_embedding: ArrayLike,
    text_embedding: ArrayLike,
    labels: ArrayLike,
    top_k: int | None = None,
    *,
    chunk_size: int | None = None,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> dict[str, float]:
    """Image->text and text->image mAP on one paired set, and their mean.

    I->T: every image queries all texts; T->I: every text queries all images; row ``i`` of
    both embeddings is one pair with labels ``labels[i]``.

    Returns:
        ``{"i2t_map", "t2i_map", "avg_map"}`` (mAP@``top_k`` when ``top_k`` is given).
    """
    options = {"top_k": top_k, "chunk_size": chunk_size, "max_chunk_bytes": max_chunk_bytes}
    i2t = mean_average_precision(image_embedding, text_embedding, labels, labels, **options)
    t2i = mean_average_precision(text_embedding, image_embedding, labels, labels, **options)
    return {"i2t_map": i2t, "t2i_map": t2i, "avg_map": (i2t + t2i) / 2.0}
