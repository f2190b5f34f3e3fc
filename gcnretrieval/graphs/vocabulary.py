"""Label vocabularies shipped with gcnretrieval: names, word vectors and co-occurrence counts.

The data live in the package ``gcnretrieval.graphdata`` (the repository's ``graphs/``
folder), one ``<name>.npz`` per vocabulary, built by ``scripts/build_graph_data.py``;
``graphs/PROVENANCE.md`` says where every number comes from.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from gcnretrieval.defaults import DEFAULT_THRESHOLD
from gcnretrieval.errors import DataError, UnknownNameError, did_you_mean
from gcnretrieval.graphs.build import build_label_graph
from gcnretrieval.readers import load_npz

_PACKAGE = "gcnretrieval.graphdata"


@dataclass(frozen=True)
class LabelVocabulary:
    r"""One label vocabulary (arrays are read-only).

    Attributes:
        name: vocabulary name (``"mscoco"``).
        label_names: the :math:`C` label names in column order.
        node_features: :math:`(C, 300)` float32 GloVe-6B word vectors of the names.
        cooccurrence: :math:`(C, C)` int64 counts :math:`N = Y^\top Y` over ``num_images``
            images (diagonal = per-label image counts). These cover all images of the
            dataset; build training graphs from the training labels instead.
        num_images: number of images the counts were taken over.
    """

    name: str
    label_names: list[str]
    node_features: np.ndarray
    cooccurrence: np.ndarray
    num_images: int

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def word_vectors(self) -> dict[str, np.ndarray]:
        """Mapping label name -> word vector, usable by :func:`~gcnretrieval.graphs.node_features_from_names`."""
        return dict(zip(self.label_names, self.node_features))

    def build_graph(self, kind: str = "cooccurrence", threshold: float = DEFAULT_THRESHOLD, **options: Any):
        """:func:`~gcnretrieval.graphs.build_label_graph` from the shipped counts and vectors."""
        return build_label_graph(None, self.node_features, kind=kind, threshold=threshold,
                                 label_names=self.label_names, cooccurrence=self.cooccurrence, **options)


def available_label_vocabularies() -> list[str]:
    """Sorted names of the shipped label vocabularies."""
    folder = resources.files(_PACKAGE)
    return sorted(entry.name[: -len(".npz")] for entry in folder.iterdir() if entry.name.endswith(".npz"))


def load_label_vocabulary(name: str) -> LabelVocabulary:
    """Load a shipped label vocabulary by name (``mirflickr``, ``nuswide``, ``mscoco``, ``voc``).

    Raises:
        UnknownNameError: ``name`` is not a shipped vocabulary (with a did-you-mean hint).
    """
    choices = available_label_vocabularies()
    key = str(name).lower()
    if key not in choices:
        raise UnknownNameError(did_you_mean("label vocabulary", str(name), choices))
    resource = resources.files(_PACKAGE) / f"{key}.npz"
    with resources.as_file(resource) as path:
        arrays = load_npz(path, kind="label vocabulary file", fix="rebuild it with scripts/build_graph_data.py")
        try:
            names = [str(n) for n in arrays["label_names"]]
            features = np.array(arrays["node_features"], dtype=np.float32)
            counts = np.array(arrays["cooccurrence"], dtype=np.int64)
            num_images = int(arrays["num_images"])
        except KeyError as err:
            raise DataError(f"label vocabulary file {key}.npz lacks {err}; rebuild it with "
                            "scripts/build_graph_data.py") from None
    c = len(names)
    if features.shape[0] != c or counts.shape != (c, c):
        raise DataError(f"label vocabulary file {key}.npz is inconsistent ({c} names, features "
                        f"{features.shape}, counts {counts.shape}); rebuild it with scripts/build_graph_data.py")
    features.flags.writeable = False
    counts.flags.writeable = False
    return LabelVocabulary(name=key, label_names=names, node_features=features,
                           cooccurrence=counts, num_images=num_images)
