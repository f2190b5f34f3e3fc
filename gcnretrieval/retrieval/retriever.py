"""Search a trained run: a query in one modality, the test split of the other as database.

::

    retriever = Retriever.from_run("runs/mirflickr_mini")
    result = retriever.search_text("sky clouds sunset", top_k=5)
    for hit in result.hits:
        print(hit.rank, hit.score, hit.labels, hit.item)

Queries: an image file or raw image features (:meth:`Retriever.search_image`), a tag
string or raw text features (:meth:`Retriever.search_text`), or test item ``n`` of
either modality (:meth:`Retriever.search_id`). The query is embedded by the run's
projector of its modality and ranked against the test embeddings of the other modality
by cosine similarity, descending, ties by database index.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcnretrieval.defaults import BEST_CHECKPOINT, DEFAULT_DEVICE, EMBED_BATCH_SIZE
from gcnretrieval.errors import ConfigError, DataError, did_you_mean
from gcnretrieval.models.onednn import onednn_linear, use_onednn_linear
from gcnretrieval.retrieval.index import SearchIndex, as_matrix
from gcnretrieval.retrieval.indexes import build_index
from gcnretrieval.retrieval.sources import DatasetSources, dataset_sources
from gcnretrieval.runner import load_run
from gcnretrieval.training import embed_split

log = logging.getLogger(__name__)

__all__ = ["MODALITIES", "Retriever", "SearchHit", "SearchResult"]

MODALITIES = ("image", "text")


def _other(modality: str) -> str:
    return "text" if modality == "image" else "image"


@dataclass
class SearchHit:
    """One ranked database item.

    Attributes:
        rank: 1 for the best.
        index: row of the item in the run's test split.
        score: cosine similarity to the query.
        labels: the item's label names.
        item: the image file (image database) or the text's words (text database), when known.
        relevant: whether the item shares a label with the query (``None`` when the query has no labels).
    """

    rank: int
    index: int
    score: float
    labels: list[str]
    item: str | None = None
    relevant: bool | None = None


@dataclass
class SearchResult:
    """A query and its ranked hits.

    Attributes:
        query: ``{"kind", "modality", "value", "index", "labels", "item", "ignored_words"}``:
            the kind is ``"id"``, ``"image"`` (a file or features) or ``"text"``; ``index``
            and ``labels`` are set for test items only.
        database: ``{"modality", "size"}`` (the test split of the other modality).
        index: the search index's name.
        hits: the ranked results.
    """

    query: dict[str, Any]
    database: dict[str, Any]
    index: str
    hits: list[SearchHit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary with the keys ``query``, ``database``, ``index``, ``results``."""
        return {"query": dict(self.query), "database": dict(self.database), "index": self.index,
                "results": [asdict(hit) for hit in self.hits]}


class Retriever:
    """Cross-modal search with a trained model over a database of paired test items.

    Args:
        model: a trained :class:`~gcnretrieval.models.CrossModalModel`.
        database: the :class:`~gcnretrieval.data.Split` searched (both modalities).
        label_names: one name per label column.
        sources: item identities (image names, vocabulary, thumbnails, featurizer)
            (default ``None``: items known by index only).
        index: ``"exact"`` (default) or ``"faiss"``.
        index_options: options of the index (e.g. ``{"kind": "hnsw"}`` for faiss).
        device: where the model runs (default: the model's device).
        batch_size: rows per forward pass when embedding the database (default ``1024``).
    """

    def __init__(self, model: torch.nn.Module, database: Any, label_names: list[str], *,
                 sources: DatasetSources | None = None, index: str = "exact",
                 index_options: dict[str, Any] | None = None, device: torch.device | None = None,
                 batch_size: int = EMBED_BATCH_SIZE) -> None:
        self.model = model.eval()
        self.device = device or next(model.parameters()).device
        self.database = database
        self.label_names = list(label_names)
        self.labels = np.asarray(database.labels, dtype=np.float32)
        self.sources = sources or DatasetSources()
        if self.sources.vocabulary is not None and len(self.sources.vocabulary) != database.text.shape[1]:
            log.warning("vocabulary of %d words for %d-d text features; text queries by words disabled",
                        len(self.sources.vocabulary), database.text.shape[1])
            self.sources.vocabulary = None
        self.index_name = index
        image, text = embed_split(self.model, database, self.device, batch_size)
        options = dict(index_options or {})
        self.indexes: dict[str, SearchIndex] = {
            "image": build_index(index, image, **options),
            "text": build_index(index, text, **options),
        }
        self._featurizer: Any = None
        self.run_dir: Path | None = None
        self.checkpoint: str | None = None

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = BEST_CHECKPOINT, device: str = DEFAULT_DEVICE, index: str = "exact",
                 index_options: dict[str, Any] | None = None) -> Retriever:
        """A retriever over the test split of a run directory, with its ``checkpoint`` (``"best"`` or ``"last"``).

        The data, label graph and model are rebuilt as ``gcnretrieval evaluate`` does
        (:func:`gcnretrieval.runner.load_run`).
        """
        if index not in ("exact", "faiss"):
            raise ConfigError(did_you_mean("search index", index, ["exact", "faiss"]))
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise ConfigError(f"run directory {run_dir} does not exist; give the folder `gcnretrieval run` wrote")
        experiment, _state = load_run(run_dir, checkpoint, device)
        dataset = experiment.dataset
        sources = dataset_sources(experiment.config, len(dataset.test))
        retriever = cls(experiment.model, dataset.test, dataset.label_names, sources=sources, index=index,
                        index_options=index_options, device=experiment.device,
                        batch_size=experiment.config.eval.batch_size)
        retriever.run_dir, retriever.checkpoint = run_dir, checkpoint
        return retriever

    # --- item descriptions ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.labels)

    def item_labels(self, index: int) -> list[str]:
        """Label names of test item ``index``."""
        return [self.label_names[j] for j in np.flatnonzero(self.labels[index] > 0)]

    def describe(self, modality: str, index: int) -> str | None:
        """The image file (``"image"``) or the words of the text (``"text"``) of test item ``index``, when known."""
        if modality == "image":
            return None if self.sources.test_images is None else self.sources.test_images[index]
        words = self.sources.text_words(self.database.text[index])
        return None if words is None else " ".join(words)

    @property
    def has_vocabulary(self) -> bool:
        """Whether text queries can be given as words."""
        return self.sources.vocabulary is not None

    # --- queries -------------------------------------------------------------------------

    def text_features(self, text: str) -> tuple[np.ndarray, list[str]]:
        """Bag-of-words features of a tag string, and the words not in the vocabulary.

        Tags are split on commas when the string has one, else on whitespace; a
        vocabulary learned from captions is matched word by word, lower-cased.

        Raises:
            DataError: empty text, no vocabulary, or no word of the text in the vocabulary.
        """
        if not isinstance(text, str) or not text.strip():
            raise DataError("the text query is empty; give one or more tags, e.g. --text \"sky clouds\"")
        vocabulary = self.sources.vocabulary
        if vocabulary is None:
            raise DataError("text queries need the dataset's vocabulary, and this run's data have none "
                            "(synthetic or bare feature files); query a test text with --query-id N --modality text")
        if self.sources.fixed_tag_list:
            words = [w.strip() for w in (text.split(",") if "," in text else text.split()) if w.strip()]
        else:
            words = re.findall(r"(?u)\b\w\w+\b", text.lower())
        column = {word: j for j, word in enumerate(vocabulary)}
        lowered = {word.lower(): j for j, word in reversed(list(enumerate(vocabulary)))}
        features = np.zeros(len(vocabulary), dtype=np.float32)
        ignored = []
        for word in words:
            j = column.get(word, lowered.get(word.lower()))
            if j is None:
                ignored.append(word)
            else:
                features[j] = 1.0
        if not features.any():
            examples = ", ".join(vocabulary[:5])
            raise DataError(f"no word of the query {text!r} is in the dataset's vocabulary of {len(vocabulary)} words "
                            f"(e.g. {examples}); use other tags")
        return features, ignored

    def image_features(self, path: str | Path) -> np.ndarray:
        """Features of an image file with the dataset's featurizer (``(image_dim,)``).

        Raises:
            DataError: the file is missing or not an image, or the dataset records no featurizer.
        """
        from gcnretrieval.features import open_image

        path = Path(path)
        if not path.is_file():
            raise DataError(f"query image {path} does not exist; give the path of a JPEG/PNG file")
        image = open_image(path, fix="give a JPEG/PNG file")  # checked before the (maybe slow) featurizer is built
        if self._featurizer is None:
            self._featurizer = self.sources.image_featurizer()
        features = np.asarray(self._featurizer.transform([image]), dtype=np.float32)[0]
        if features.shape[0] != self.database.image.shape[1]:
            raise DataError(f"the featurizer gives {features.shape[0]}-d features but the run's images are "
                            f"{self.database.image.shape[1]}-d; the run was not trained on this dataset's features")
        return features

    @torch.no_grad()
    def _embed(self, modality: str, features: Any) -> torch.Tensor:
        matrix = as_matrix(features, f"{modality} features").to(self.device)
        expected = self.database.image.shape[1] if modality == "image" else self.database.text.shape[1]
        if matrix.shape[1] != expected:
            raise DataError(f"{modality} query features have {matrix.shape[1]} dimensions; the run expects {expected}")
        embed = self.model.embed_image if modality == "image" else self.model.embed_text
        with onednn_linear(use_onednn_linear(matrix.device)):  # the kernels that embedded the database
            return embed(matrix)

    def _rank(self, modality: str, embedding: torch.Tensor, top_k: int, query: dict[str, Any],
              query_labels: np.ndarray | None) -> SearchResult:
        target = _other(modality)
        query.setdefault("ignored_words", [])
        scores, indices = self.indexes[target].search(embedding, top_k)
        hits = []
        for rank, (score, index) in enumerate(zip(scores[0].tolist(), indices[0].tolist()), start=1):
            if index < 0:
                continue
            relevant = None
            if query_labels is not None:
                relevant = bool((query_labels * self.labels[index]).sum() > 0)
            hits.append(SearchHit(rank, int(index), float(score), self.item_labels(index),
                                  self.describe(target, index), relevant))
        database = {"modality": target, "size": len(self)}
        return SearchResult(query, database, self.index_name, hits)

    def search_image(self, image: str | Path | Any, top_k: int = 10) -> SearchResult:
        """Texts of the database ranked for a query image (a file path, or ``(image_dim,)`` features)."""
        if isinstance(image, (str, Path)):
            features = self.image_features(image)
            query = {"kind": "image", "modality": "image", "value": str(image), "index": None, "labels": None,
                     "item": Path(image).name}
        else:
            features = image
            query = {"kind": "image", "modality": "image", "value": "features", "index": None, "labels": None,
                     "item": None}
        return self._rank("image", self._embed("image", features), top_k, query, None)

    def search_text(self, text: str | Any, top_k: int = 10) -> SearchResult:
        """Images of the database ranked for a query text (a tag string, or ``(text_dim,)`` features)."""
        ignored: list[str] = []
        if isinstance(text, str):
            features, ignored = self.text_features(text)
            words = self.sources.text_words(features)
            query = {"kind": "text", "modality": "text", "value": text, "index": None, "labels": None,
                     "item": " ".join(words or []), "ignored_words": ignored}
        else:
            features = text
            query = {"kind": "text", "modality": "text", "value": "features", "index": None, "labels": None,
                     "item": None}
        return self._rank("text", self._embed("text", features), top_k, query, None)

    def search_id(self, n: int, modality: str = "image", top_k: int = 10) -> SearchResult:
        """Test item ``n`` of ``modality`` as the query, the other modality's test items as the database."""
        if modality not in MODALITIES:
            raise ConfigError(did_you_mean("modality", modality, MODALITIES))
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= int(n) < len(self):
            raise DataError(f"query id {n} is out of range: the test split has {len(self)} items (0 to {len(self) - 1})")
        n = int(n)
        array = self.database.image if modality == "image" else self.database.text
        features = np.asarray(array[n : n + 1], dtype=np.float32)
        query = {"kind": "id", "modality": modality, "value": n, "index": n, "labels": self.item_labels(n),
                 "item": self.describe(modality, n)}
        return self._rank(modality, self._embed(modality, features), top_k, query, self.labels[n])
