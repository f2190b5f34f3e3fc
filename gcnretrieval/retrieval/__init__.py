"""Retrieval with a trained run: search indexes, the :class:`Retriever` and the HTML report."""
from gcnretrieval.retrieval.faiss_index import FaissIndex
from gcnretrieval.retrieval.index import ExactIndex, SearchIndex
from gcnretrieval.retrieval.indexes import available_indexes, build_index
from gcnretrieval.retrieval.retriever import MODALITIES, Retriever, SearchHit, SearchResult
from gcnretrieval.retrieval.sources import DatasetSources, dataset_sources

__all__ = [
    "MODALITIES",
    "DatasetSources",
    "ExactIndex",
    "FaissIndex",
    "Retriever",
    "SearchHit",
    "SearchIndex",
    "SearchResult",
    "available_indexes",
    "build_index",
    "dataset_sources",
    "write_report",
]


def __getattr__(name: str):
    # the report is imported on first use
    if name == "write_report":
        from gcnretrieval.retrieval.report import write_report

        return write_report
    raise AttributeError(f"module 'gcnretrieval.retrieval' has no attribute '{name}'")
