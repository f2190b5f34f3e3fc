"""Label names matched to word vectors: exactly first, then loosely (case, ``_``, ``-`` and spaces alike)."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gcnretrieval.errors import GraphError

__all__ = ["node_features_from_names", "normalise_name"]


def normalise_name(name: str) -> str:
    """A label name compared loosely: lower case, ``_``, ``-`` and runs of spaces as one space."""
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def node_features_from_names(label_names: Sequence[str], source: Mapping[str, Any] | Any) -> np.ndarray:
    """Stack the word vectors of ``label_names`` from ``source``, matched by name.

    Names match exactly first, then ignoring case and treating ``_``, ``-`` and spaces
    alike (``"plant_life"`` finds ``"plant life"``, ``"TV"`` finds ``"tv"``).

    Args:
        label_names: the :math:`C` names, in the order of the rows to return.
        source: mapping name -> vector, or a :class:`~gcnretrieval.graphs.LabelVocabulary`
            (anything with a ``word_vectors()`` mapping).

    Returns:
        :math:`(C, F)` float32 array.

    Raises:
        GraphError: a name has no vector in ``source`` (all missing names are listed).
    """
    if hasattr(source, "word_vectors"):
        source = source.word_vectors()
    loose = {}
    for key in source:
        loose.setdefault(normalise_name(str(key)), key)
    rows, missing = [], []
    for name in label_names:
        key = name if name in source else loose.get(normalise_name(name))
        if key is None:
            missing.append(name)
        else:
            rows.append(np.asarray(source[key], dtype=np.float32).reshape(-1))
    if missing:
        shown = ", ".join(repr(m) for m in missing)
        raise GraphError(f"no word vector for label name(s) {shown} in the word-vector source; "
                         "add them to the source or rename the labels")
    if len({row.shape for row in rows}) > 1:
        raise GraphError("word vectors in the source have different lengths; use one embedding")
    return np.stack(rows)
