"""FAISS indexes behind the :class:`~gcnretrieval.retrieval.index.SearchIndex` API.

Install with ``pip install 'gcnretrieval[faiss]'`` (``faiss-cpu``). All kinds use inner
products on L2-normalised vectors, i.e. cosine similarity:

- ``"flat"``: ``IndexFlatIP``, exhaustive and exact (the same ranking as
  :class:`~gcnretrieval.retrieval.index.ExactIndex` up to float rounding);
- ``"hnsw"``: ``IndexHNSWFlat``, a navigable small-world graph (approximate; no
  training; ``hnsw_m`` links per node, ``ef_construction`` and ``ef_search`` trade
  build and query time for recall);
- ``"ivf"``: ``IndexIVFFlat``, an inverted file over ``nlist`` k-means cells of which
  ``nprobe`` are scanned per query (approximate; trained on a sample of the database).

Within the returned ``k`` results, equal scores are ordered by database index.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gcnretrieval.errors import ConfigError, did_you_mean
from gcnretrieval.retrieval.index import SearchIndex

log = logging.getLogger(__name__)

__all__ = ["FAISS_KINDS", "FaissIndex", "import_faiss"]

FAISS_KINDS = ("flat", "hnsw", "ivf")


def import_faiss() -> Any:
    """The ``faiss`` module, or a one-line error saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise ConfigError("the faiss index needs the faiss package: pip install 'gcnretrieval[faiss]' "
                          "(or use the exact index)") from None
    return faiss


class FaissIndex(SearchIndex):
    """Cosine search with FAISS: exact (``flat``) or approximate (``hnsw``, ``ivf``).

    Args:
        database: ``(N, d)`` database vectors (stored L2-normalised, float32, on the CPU).
        kind: ``"flat"`` (default), ``"hnsw"`` or ``"ivf"``.
        hnsw_m: HNSW links per node (default ``32``).
        ef_construction: HNSW candidate list while building (default ``80``).
        ef_search: HNSW candidate list while searching (default ``128``; raised to ``k``).
        nlist: IVF cells (default ``None``: about ``4 sqrt(N)``, at most ``N / 39``).
        nprobe: IVF cells scanned per query (default ``16``).
        threads: FAISS threads (default ``None``: FAISS's own choice).
        seed: seed of the IVF k-means (default ``0``).
    """

    name = "faiss"

    def __init__(self, database: Any, kind: str = "flat", *, hnsw_m: int = 32, ef_construction: int = 80,
                 ef_search: int = 128, nlist: int | None = None, nprobe: int = 16, threads: int | None = None,
                 seed: int = 0) -> None:
        self.faiss = import_faiss()
        if kind not in FAISS_KINDS:
            raise ConfigError(did_you_mean("faiss index kind", kind, FAISS_KINDS))
        self.kind = kind
        self.hnsw_m, self.ef_construction, self.ef_search = int(hnsw_m), int(ef_construction), int(ef_search)
        self.nlist, self.nprobe, self.seed = nlist, int(nprobe), int(seed)
        if threads is not None:
            self.faiss.omp_set_num_threads(int(threads))
        super().__init__(database)

    def __repr__(self) -> str:
        return f"FaissIndex(kind={self.kind!r}, num_items={self.num_items}, dim={self.dim})"

    def set_search_options(self, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change the query-time trade-off without rebuilding: HNSW ``ef_search``, IVF ``nprobe``."""
        if ef_search is not None:
            self.ef_search = int(ef_search)
        if nprobe is not None:
            self.nprobe = int(nprobe)
            if self.kind == "ivf":
                self.index.nprobe = min(self.nprobe, self.nlist)

    def _build(self, vectors: Tensor) -> None:
        faiss = self.faiss
        data = np.ascontiguousarray(vectors.cpu().numpy(), dtype=np.float32)
        n, d = data.shape
        if self.kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        else:
            nlist = self.nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
            self.nlist = nlist
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = self.seed
            index.train(data)
            index.nprobe = min(self.nprobe, nlist)
            self._quantizer = quantizer  # the IVF index does not own it
        index.add(data)
        self.index = index
        log.info("built %r", self)

    def _search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(self.ef_search, k)
        data = np.ascontiguousarray(queries.cpu().numpy(), dtype=np.float32)
        scores, indices = self.index.search(data, k)
        # approximate kinds may return fewer than k hits (index -1): push them last
        missing = indices < 0
        scores[missing] = -np.inf
        indices[missing] = np.iinfo(np.int64).max
        order = np.lexsort((indices, -scores), axis=1)  # score descending, then index ascending
        scores = np.take_along_axis(scores, order, axis=1)
        indices = np.take_along_axis(indices, order, axis=1)
        indices[np.isinf(scores)] = -1
        return torch.from_numpy(scores), torch.from_numpy(indices.astype(np.int64))
