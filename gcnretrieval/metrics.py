r"""Retrieval metrics for multi-label cross-modal search: mAP@all / mAP@k, precision@k, PR curves.

Every query ranks the whole database by cosine similarity, descending, ties broken by
database index. A database item is relevant to a query when the two share at least one
label. The average precision of query :math:`q` over a ranking of length :math:`K` is

.. math::
    \mathrm{AP}(q) = \frac{1}{R_q} \sum_{k=1}^{K} P_q(k)\, \mathrm{rel}_q(k), \qquad
    P_q(k) = \frac{1}{k} \sum_{i=1}^{k} \mathrm{rel}_q(i),

where :math:`R_q` counts the relevant items in the ranking (the whole database for
mAP@all, the top :math:`k` for mAP@k). A query with :math:`R_q = 0` scores 0.

**The tie rule.** Rows are L2-normalised in float32 by a fixed sequence of IEEE operations
on that row alone (squares, a pairwise sum in a tree fixed by the width, a square root, a
division; :math:`-0` written as :math:`+0`), so a row's normalised bits do not depend on
where it sits, on the other rows or on the CPU kernel. Two database items *tie* when their
normalised rows are bit-identical: the same raw row, rows that differ by a power-of-two
factor, or any rows whose normalisation rounds to the same bits. Tied items get
bit-identical scores for every query, whatever the chunk size, block shape or BLAS kernel,
and are ranked by ascending database index (a stable sort, or a stable top-k). Identical
normalised query rows likewise get the same score row, hence the same ranking (and the
same AP, given the same labels), wherever they sit. On one machine the rankings, and every
figure computed from them, are bit-identical for every ``chunk_size`` and
``max_chunk_bytes``. What remains approximate: *distinct* normalised rows whose cosines
with a query differ by less than float32 rounding (including distinct rows that tie only
mathematically) are ordered by their computed float32 scores, and the last bit of a score
depends on the BLAS kernel (CPU, instruction set, thread count, GPU). Such near-ties are common in large databases:
for 500 random 64-d queries against 5,000 items, ``MKL_CBWR=COMPATIBLE`` moves mAP by
4e-9.

Why and how: a matrix product rounds differently with its shape and with a row's or a
column's position in it (a one-row product takes a matrix-vector kernel, small products
take other kernels), so identical rows must not be scored separately, and no score may come
from a product whose shape depends on the chunking. Each distinct normalised database row
is scored once and its scores are expanded to every item with the inverse index; the
distinct query rows are scored once, in fixed groups of consecutive distinct rows whose
size depends on the data alone, and the queries are visited group by group
(:func:`_score_blocks`). Distinct rows are found by sorting an exact integer key made of
the float32 bit patterns of up to 16 columns, then comparing every row whose key an
earlier row holds with that row bit for bit; a key shared by different rows falls back to
:func:`torch.unique` over whole rows. :func:`torch.unique` with ``dim=0`` alone would sort,
and copy, the whole ``N x d`` matrix on every call; on two cores, 200,000 x 1,024 random
rows take 0.03 s with the key (0.18 s when half are duplicates) against 0.5-0.6 s, and
200,000 x 64 rows 0.02-0.03 s against 0.14 s. The fixed-order normalisation costs 0.29 s
there against 0.12 s for :func:`torch.nn.functional.normalize` (0.02 s against 0.01 s at
64-d), small next to the sort of the scores. The sums are order-fixed as well: a query's
AP is a sequential float64 cumulative sum over its ranking, the mean over queries is
:func:`math.fsum`, precision@k counts hits as integers, the precision curve sums integer
hit counts, and the recall curve adds the queries' rows one by one in the visiting order.

Queries are processed in blocks of at most ``chunk_size`` on the inputs' device. For a
block of :math:`b` queries, :math:`v \le b` of them distinct, against :math:`N` database
items (:math:`U \le N` distinct) the temporaries peak at about :math:`18\,bN` bytes: the
distinct scores (4 bytes per pair, :math:`vU`) are expanded to :math:`vN` (4); the label
product (4) becomes the relevance (1); the sort holds relevance 1 + scores 4 + sorted
values 4 + indices 8 = 17; the ranking expanded to the block's :math:`b` rows (8) and the
ranked relevance (1) make 1 + 8 + 8 + 1 = 18; afterwards the ranked relevance and its
float64 cumulated precision (or, for the PR curve, cumulated hits), 9.
``BYTES_PER_PAIR = 32`` leaves headroom, and the chunk size is chosen so that
:math:`32\,bN` stays below ``max_chunk_bytes`` (default 512 MiB). Beside it lives the
current group of query scores, :math:`G = \max(1, \lfloor 2^{24} / U \rfloor)` rows, at most
64 MiB (with the default budget and no duplicates a group is exactly one chunk, and a
block's scores are a view of it). Total memory is therefore about
:math:`4 (N d + N C + n_q (d + C)) + 8 (N + n_q) + \min(32\,bN, \texttt{max\_chunk\_bytes}) + 64\,\mathrm{MiB}`
bytes for :math:`d`-dimensional embeddings and :math:`C` labels (the normalised distinct
rows, the labels, the inverse indices, one block, one group), plus, while the rows are
prepared, one more normalised copy of each matrix; for 2,000 queries against 200,000 items
that is well under 2 GB.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from gcnretrieval.errors import DataError

ArrayLike = np.ndarray | torch.Tensor

#: bytes of temporaries per (query, database item) pair in one chunk; see the module docstring
BYTES_PER_PAIR = 32
DEFAULT_MAX_CHUNK_BYTES = 512 * 2**20
#: elements per block while normalising or comparing rows (16 MiB of float32)
_ROW_BLOCK = 2**22
_NORM_EPS = 1e-12
#: columns whose bits make a row's grouping key in :func:`_distinct_rows`
_KEY_COLUMNS = 16
#: scores of one group of distinct query rows (at most); see :func:`_score_blocks`
_GROUP_SCORES = 2**24

__all__ = [
    "METRIC_KEYS",
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
    return q, d, ql, dl


def _normalized_rows(x: torch.Tensor) -> torch.Tensor:
    r"""Float32 rows divided by their L2 norm, each by a fixed sequence of IEEE operations on that row.

    .. math::
        \hat{x}_i = \frac{x_i}{\max(\lVert x_i \rVert_2, 10^{-12})}

    The squares are summed pairwise in a tree fixed by the width alone (column :math:`j`
    with column :math:`j + w/2`, halving :math:`w`; an odd last column joins the first),
    so the result is the same for a row wherever it sits and on every CPU kernel
    (elementwise float32 operations are correctly rounded); ``-0.0`` is written as
    ``+0.0``. A power-of-two multiple of a row normalises to the same bits.

    Shapes:
        - x: ``(n, d)`` float32 -> ``(n, d)`` float32
    """
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    rows = max(1, _ROW_BLOCK // max(x.shape[1], 1))
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows]
        folded = block * block
        width = folded.shape[1]
        while width > 1:
            half = width // 2
            summed = folded[:, :half] + folded[:, half : 2 * half]
            if width % 2:
                summed[:, :1] += folded[:, 2 * half :]
            folded, width = summed, half
        norm = folded.sqrt_().clamp_min_(_NORM_EPS)
        torch.div(block, norm, out=out[start : start + rows])
    return out.masked_fill_(out == 0, 0.0)


def _same_rows(bits: torch.Tensor, rows: torch.Tensor, like: torch.Tensor) -> bool:
    """Whether ``bits[rows[i]]`` equals ``bits[like[i]]`` for every ``i`` (compared in blocks)."""
    step = max(1, _ROW_BLOCK // max(bits.shape[1], 1))
    for start in range(0, rows.shape[0], step):
        if not bool((bits[rows[start : start + step]] == bits[like[start : start + step]]).all()):
            return False
    return True


def _distinct_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The distinct rows of ``x`` (bit for bit) in order of first appearance, and each row's index among them.

    A key per row (the float32 bits of up to ``_KEY_COLUMNS`` evenly spaced columns times
    fixed random weights, summed exactly in int64) is sorted; every row whose key an earlier
    row holds is compared bit for bit with the first row holding that key, and if any
    differs the whole matrix is grouped by :func:`torch.unique` over its rows instead.

    Returns:
        ``(distinct, inverse)`` with ``distinct[inverse] == x``; ``inverse`` is ``None``
        when all rows are distinct (then ``distinct`` is ``x`` itself).

    Shapes:
        - x: ``(n, d)`` contiguous float32 -> distinct ``(u, d)``, inverse ``(n,)`` int64
    """
    n, dim = x.shape
    bits = x.contiguous().view(torch.int32)
    if dim == 0:
        return x[:1], torch.zeros(n, dtype=torch.long, device=x.device)
    columns = torch.linspace(0, dim - 1, min(dim, _KEY_COLUMNS)).round().long().unique().to(x.device)
    weights = torch.randint(1, 2**27, (columns.shape[0],), generator=torch.Generator().manual_seed(0)).to(x.device)
    key = (bits[:, columns].long() * weights).sum(dim=1)  # |key| < 16 * 2**31 * 2**27 = 2**62: exact
    _, group, count = torch.unique(key, return_inverse=True, return_counts=True)
    if count.shape[0] == n:
        return x, None
    order = torch.arange(n, device=x.device)
    first = torch.full((count.shape[0],), n, device=x.device).scatter_reduce_(0, group, order, "amin")
    later = (first[group] != order).nonzero().squeeze(1)  # rows whose key an earlier row holds
    if not _same_rows(bits, later, first[group[later]]):
        _, group = torch.unique(bits, dim=0, return_inverse=True)
        first = torch.full((int(group.max()) + 1,), n, device=x.device).scatter_reduce_(0, group, order, "amin")
        if first.shape[0] == n:
            return x, None
    by_appearance = torch.argsort(first)
    position = torch.empty_like(by_appearance)
    position[by_appearance] = torch.arange(by_appearance.shape[0], device=x.device)
    return x[first[by_appearance]], position[group]


def _block_scores(group: torch.Tensor, rows: torch.Tensor, database_inverse: torch.Tensor | None) -> torch.Tensor:
    """Rows ``rows`` (ascending) of a group's scores, expanded to every database item."""
    if int(rows[-1] - rows[0]) + 1 == rows.shape[0]:
        scores = group[int(rows[0]) : int(rows[-1]) + 1]  # a view
    else:
        scores = group.index_select(0, rows)
    return scores if database_inverse is None else scores.index_select(1, database_inverse)


def _score_blocks(
    query_rows: torch.Tensor,
    query_inverse: torch.Tensor | None,
    database_rows: torch.Tensor,
    database_inverse: torch.Tensor | None,
    step: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    r"""Cosine scores of the queries against every database item, each distinct pair of rows scored once.

    The distinct query rows are scored in fixed *groups* of :math:`G = \max(1, 2^{24} / U)`
    consecutive rows against all :math:`U` distinct database rows (at most :math:`2^{24}`
    scores, 64 MiB, per group). :math:`G` depends on the data alone, so the bits of a score do
    not depend on ``step``. The queries are visited group by group, by distinct row, then by
    index (an order fixed by the data), at most ``step`` at a time.

    Args:
        query_rows, query_inverse: the distinct normalised query rows and each query's row
            (``None``: every query is its own row), from :func:`_distinct_rows`.
        database_rows, database_inverse: the same for the database.
        step: at most this many queries per block.

    Yields:
        ``(queries, scores, expand)``: the indices of ``b`` queries ``(b,)``; ``scores``
        ``(v, N)`` for their ``v`` distinct rows (items sharing a distinct row share its score
        bit for bit); ``expand`` ``(b,)``, the row of ``scores`` of each query, or ``None``
        when ``v == b`` and row ``i`` belongs to ``queries[i]``.
    """
    device = query_rows.device
    if query_inverse is None:
        order = torch.arange(query_rows.shape[0], device=device)
        row_of = order
    else:
        order = torch.sort(query_inverse, stable=True).indices
        row_of = query_inverse[order]
    group_rows = max(1, _GROUP_SCORES // database_rows.shape[0])
    for first_row in range(0, query_rows.shape[0], group_rows):
        bounds = torch.tensor([first_row, first_row + group_rows], device=device)
        low, high = torch.searchsorted(row_of, bounds).tolist()
        group = [query_rows[first_row : first_row + group_rows] @ database_rows.T]
        for start in range(low, high, step):
            stop = min(start + step, high)
            local = row_of[start:stop] - first_row
            rows, expand = torch.unique_consecutive(local, return_inverse=True)
            if rows.shape[0] == local.shape[0]:
                expand = None
            # no name here holds the block's scores while the caller uses them, nor the group
            # once its last block is handed out (then only a view may keep it alive)
            last = stop == high
            yield order[start:stop], _block_scores(group.pop() if last else group[0], rows, database_inverse), expand


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
    """Yield, per block of queries, the relevance of the ranked list ``(b, K)`` and ``R_q`` over the database ``(b,)``.

    The blocks visit every query once, in the order of :func:`_score_blocks`.
    """
    q, d, ql, dl = _prepare(query, database, query_labels, database_labels)
    num_database = d.shape[0]
    if top_k is not None and top_k < 1:
        raise DataError(f"top_k must be a positive rank, got {top_k}")
    k = num_database if top_k is None else min(int(top_k), num_database)
    step = _chunk_size(num_database, chunk_size, max_chunk_bytes)
    q_rows, q_inverse = _distinct_rows(_normalized_rows(q))
    d_rows, d_inverse = _distinct_rows(_normalized_rows(d))
    del q, d
    for queries, scores, expand in _score_blocks(q_rows, q_inverse, d_rows, d_inverse, step):
        relevant = (ql[queries] @ dl.T) > 0
        if k == num_database:
            ranking = torch.sort(scores, dim=1, descending=True, stable=True).indices
        else:
            ranking = _top_k_stable(scores, k)
        del scores
        if expand is not None:
            ranking = ranking.index_select(0, expand)
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
    average_precisions: list[float] = []
    for rel, _ in _ranked_relevance(query, database, query_labels, database_labels, top_k, chunk_size, max_chunk_bytes):
        ranks = torch.arange(1, rel.shape[1] + 1, device=rel.device, dtype=torch.float64)
        precision = rel.to(torch.float64).cumsum_(dim=1).div_(ranks).mul_(rel)  # P(k) * rel(k), in place
        summed = precision.cumsum_(dim=1)[:, -1]  # a sequential sum: the same for the row in any chunk
        hits = rel.sum(dim=1)
        ap = torch.where(hits > 0, summed / hits.clamp_min(1), torch.zeros_like(summed))
        del precision
        average_precisions.extend(ap.tolist())
    return math.fsum(average_precisions) / len(average_precisions)


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
    hits = 0
    count = 0
    length = 1
    for rel, _ in _ranked_relevance(query, database, query_labels, database_labels, k, chunk_size, max_chunk_bytes):
        hits += int(rel.sum())  # an integer count: exact in any order
        count += rel.shape[0]
        length = rel.shape[1]
    return hits / (length * count)


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
        hits = rel.to(torch.float64).cumsum_(dim=1)  # integers: their sums are exact in any order
        has = relevant_total > 0
        precision_sum = hits.sum(dim=0) if precision_sum is None else precision_sum + hits.sum(dim=0)
        if recall_sum is None:
            recall_sum = torch.zeros(rel.shape[1], dtype=torch.float64, device=rel.device)
        for i in has.nonzero().squeeze(1).tolist():  # one query after the other, in a fixed order
            recall_sum += hits[i] / relevant_total[i]
        num_queries += rel.shape[0]
        num_with_relevant += int(has.sum())
    ranks = np.arange(1, precision_sum.shape[0] + 1, dtype=np.float64)
    precision = precision_sum.cpu().numpy() / ranks / num_queries
    recall = recall_sum.cpu().numpy() / max(num_with_relevant, 1)
    return precision, recall, ranks


#: the keys of :func:`retrieval_report`: image->text, text->image and their mean
METRIC_KEYS = ("i2t_map", "t2i_map", "avg_map")


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
