r"""Nearest-neighbour indexes over L2-normalised embeddings (cosine similarity).

Every index stores its database rows L2-normalised and answers ``search(queries, k)``
with the ``k`` best cosine scores per query, descending, ties broken by database index
(the rule of :mod:`gcnretrieval.metrics`: rows are normalised by the same fixed-order
float32 arithmetic, and items whose normalised rows are bit-identical tie):

.. math::
    s(q, j) = \frac{q^\top x_j}{\lVert q\rVert\,\lVert x_j\rVert}.

:class:`ExactIndex` scores each distinct normalised database row once per distinct query
row of a chunk (a chunked matrix product), so tied items get bit-identical scores whatever
the chunk or the BLAS kernel, and ranks them with :func:`torch.topk` and the metrics'
stable tie rule. :class:`~gcnretrieval.retrieval.faiss_index.FaissIndex` (optional
extra ``faiss``) offers the same API on FAISS, exact (``"flat"``) or approximate
(``"hnsw"``, ``"ivf"``) for databases of millions of items.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gcnretrieval.errors import DataError
from gcnretrieval.metrics import _distinct_rows, _normalized_rows, _score_blocks
from gcnretrieval.metrics import _top_k_stable as stable_top_k  # the ranking rule of the metrics

log = logging.getLogger(__name__)

__all__ = ["ExactIndex", "SearchIndex"]

#: bytes of temporaries per (query, database item) pair while ranking one chunk: the scores (4,
#: and the distinct-row scores, 4, while they are expanded); on rows whose ties straddle the k-th
#: score, their copy (4), three masks (3), an int32 count (4) and the kept mask (1): at most 17;
#: one group of query scores (at most 64 MiB, see :func:`gcnretrieval.metrics._score_blocks`) besides
_BYTES_PER_PAIR = 20
_DEFAULT_MAX_CHUNK_BYTES = 256 * 2**20


def as_matrix(values: Any, what: str) -> Tensor:
    """``values`` (ndarray or tensor, one row or a matrix) as a 2-D float32 tensor."""
    if isinstance(values, Tensor):
        matrix = values.detach().float()
    else:
        matrix = torch.from_numpy(np.array(values, dtype=np.float32, copy=True))
    if matrix.dim() == 1:
        matrix = matrix.unsqueeze(0)
    if matrix.dim() != 2:
        raise DataError(f"{what} must be a vector or a matrix of row vectors, got shape {tuple(matrix.shape)}")
    if not bool(torch.isfinite(matrix).all()):
        raise DataError(f"{what} hold NaN or infinite values; check the features")
    return matrix


def _top_k(scores: Tensor, k: int) -> Tensor:
    """:func:`stable_top_k` with a fast path: one :func:`torch.topk`, then a stable reorder of the
    ``k`` winners; only rows with ties straddling the ``k``-th score take the full rule."""
    values, index = torch.topk(scores, k, dim=1, sorted=True)
    kth = values[:, -1:]
    straddle = (scores == kth).sum(dim=1) > (values == kth).sum(dim=1)
    index = index.gather(1, torch.sort(index, dim=1).indices)  # ascending database index...
    order = torch.sort(scores.gather(1, index), dim=1, descending=True, stable=True).indices
    index = index.gather(1, order)  # ...then by score, descending, stably
    if bool(straddle.any()):
        rows = straddle.nonzero().squeeze(1)
        index[rows] = stable_top_k(scores[rows], k)
    return index


class SearchIndex(ABC):
    """Base class: a database of vectors searched by cosine similarity.

    Args:
        database: ``(N, d)`` database vectors (ndarray or tensor); stored L2-normalised.

    Shapes:
        - database: ``(N, d)``
        - ``search(queries, k)``: queries ``(q, d)`` (or ``(d,)``) -> scores ``(q, k')``
          float32 and indices ``(q, k')`` int64 on the CPU, ``k' = min(k, N)``
    """

    name = "base"

    def __init__(self, database: Any) -> None:
        vectors = as_matrix(database, "database vectors")
        if vectors.shape[0] == 0:
            raise DataError("cannot build a search index over an empty database")
        self.num_items, self.dim = int(vectors.shape[0]), int(vectors.shape[1])
        self._build(_normalized_rows(vectors))

    def __len__(self) -> int:
        return self.num_items

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, dim={self.dim})"

    @abstractmethod
    def _build(self, vectors: Tensor) -> None:
        """Store the normalised ``(N, d)`` database."""

    @abstractmethod
    def _search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Scores and indices of the ``k`` best items of normalised ``queries``."""

    def search(self, queries: Any, k: int = 10) -> tuple[Tensor, Tensor]:
        """The ``k`` nearest database items of each query (cosine, descending).

        Args:
            queries: ``(q, d)`` or ``(d,)`` query vectors (normalised here).
            k: results per query (default ``10``; at most the database size).

        Returns:
            ``(scores, indices)``, each ``(q, min(k, N))``, on the CPU.
        """
        matrix = as_matrix(queries, "query vectors")
        if matrix.shape[1] != self.dim:
            raise DataError(f"query vectors have {matrix.shape[1]} dimensions but the index holds {self.dim}-d vectors")
        if int(k) < 1:
            raise DataError(f"top_k must be a positive number of results, got {k}")
        k = min(int(k), self.num_items)
        scores, indices = self._search(_normalized_rows(matrix), k)
        return scores.cpu().float(), indices.cpu().long()


class ExactIndex(SearchIndex):
    """Exact cosine search: a chunked matrix product over the distinct rows and a stable top-k.

    Args:
        database: ``(N, d)`` database vectors; kept on their device (a tensor on CUDA
            is searched there).
        max_chunk_bytes: bound on the score temporaries of one query chunk (default
            256 MiB): a chunk holds at most ``max_chunk_bytes / (20 N)`` queries; the
            group of query scores it is taken from adds at most 64 MiB.
    """

    name = "exact"

    def __init__(self, database: Any, max_chunk_bytes: int = _DEFAULT_MAX_CHUNK_BYTES) -> None:
        self.max_chunk_bytes = int(max_chunk_bytes)
        self._device = database.device if isinstance(database, Tensor) else torch.device("cpu")
        super().__init__(database)

    def _build(self, vectors: Tensor) -> None:
        self._rows, self._inverse = _distinct_rows(vectors.to(self._device))

    @torch.no_grad()
    def _search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        query_rows, query_inverse = _distinct_rows(queries.to(self._rows.device))
        step = max(1, self.max_chunk_bytes // (_BYTES_PER_PAIR * self.num_items))
        all_scores = torch.empty(queries.shape[0], k, dtype=torch.float32)
        all_indices = torch.empty(queries.shape[0], k, dtype=torch.int64)
        for rows, scores, expand in _score_blocks(query_rows, query_inverse, self._rows, self._inverse, step):
            index = _top_k(scores, k)
            best = scores.gather(1, index)
            del scores
            if expand is not None:
                best, index = best.index_select(0, expand), index.index_select(0, expand)
            rows = rows.cpu()
            all_scores[rows], all_indices[rows] = best.cpu(), index.cpu()
        return all_scores, all_indices
