"""Search indexes by name: ``"exact"`` (:class:`~gcnretrieval.retrieval.index.ExactIndex`) or ``"faiss"``
(:class:`~gcnretrieval.retrieval.faiss_index.FaissIndex`, which imports faiss on first use)."""
from __future__ import annotations

from typing import Any

from gcnretrieval.errors import ConfigError, did_you_mean
from gcnretrieval.retrieval.faiss_index import FaissIndex
from gcnretrieval.retrieval.index import ExactIndex, SearchIndex

__all__ = ["available_indexes", "build_index"]

_INDEXES = {"exact": ExactIndex, "faiss": FaissIndex}


def available_indexes() -> list[str]:
    """Names accepted by :func:`build_index`."""
    return list(_INDEXES)


def build_index(name: str, database: Any, **options: Any) -> SearchIndex:
    """The index ``name`` over ``database`` (options: ``kind`` of faiss)."""
    if name not in _INDEXES:
        raise ConfigError(did_you_mean("search index", name, _INDEXES))
    return _INDEXES[name](database, **options)
