r"""Label-graph construction: training labels (or word vectors) -> ``torch_geometric.data.Data``.

Direction convention (shared by every graph in gcnretrieval): a dense matrix
:math:`A` is indexed ``A[i, j]`` = weight of the message :math:`j \to i` (target row
:math:`i`, source column :math:`j`), and the edge list stores that message as
``edge_index[:, e] = (j, i)``: ``edge_index[0]`` is the source, ``edge_index[1]`` the
target, as PyG's message passing expects (``flow="source_to_target"``).
"""
from __future__ import annotations

import logging

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from gcnretrieval.defaults import DEFAULT_THRESHOLD
from gcnretrieval.errors import GraphError, did_you_mean
from gcnretrieval.graphs.names import node_features_from_names

GRAPH_KINDS: tuple[str, ...] = ("cooccurrence", "embedding")

log = logging.getLogger(__name__)


# --- input checks -----------------------------------------------------------------------


def _to_numpy(array: Any) -> np.ndarray:
    if isinstance(array, Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _check_labels(labels: Any) -> np.ndarray:
    y = _to_numpy(labels)
    if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] == 0:
        raise GraphError(f"labels must be a non-empty (num_samples, num_labels) 0/1 matrix, got shape "
                         f"{tuple(y.shape)}")
    if y.dtype == np.bool_:
        return y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number) or not np.isin(y, (0, 1)).all():
        raise GraphError("labels must contain only 0 and 1 (multi-hot); binarise them first, "
                         "e.g. labels > 0")
    return y.astype(np.int64)


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise GraphError(f"threshold must be a number in (0, 1], got {threshold!r}")
    value = float(threshold)
    if not (0.0 < value <= 1.0):  # also rejects NaN
        raise GraphError(f"threshold must be in (0, 1], got {value}; {DEFAULT_THRESHOLD} is the usual choice")
    return value


def _check_kind(kind: Any) -> str:
    key = str(kind).lower()
    if key not in GRAPH_KINDS:
        raise GraphError(did_you_mean("label-graph kind", str(kind), GRAPH_KINDS))
    return key


def _label_name(names: Sequence[str], j: int) -> str:
    return f"'{names[j]}' (column {j})"


def cooccurrence_counts(labels: Any) -> np.ndarray:
    r"""Label co-occurrence counts :math:`N = Y^\top Y`.

    :math:`N_{ij}` is the number of samples carrying both labels :math:`i` and
    :math:`j`; the diagonal :math:`N_{ii}` counts the samples carrying label :math:`i`.

    Args:
        labels: :math:`(n, C)` 0/1 matrix (tensor or array).

    Returns:
        :math:`(C, C)` int64 array.
    """
    y = _check_labels(labels)
    return y.T @ y


def _check_counts(counts: Any, num_labels: int) -> np.ndarray:
    n = _to_numpy(counts)
    if n.shape != (num_labels, num_labels):
        raise GraphError(f"cooccurrence counts must have shape ({num_labels}, {num_labels}) (one row and "
                         f"column per label), got {tuple(n.shape)}")
    if not np.issubdtype(n.dtype, np.number) or not np.isfinite(n).all() or (n < 0).any():
        raise GraphError("cooccurrence counts must be finite and non-negative; compute them with "
                         "gcnretrieval.graphs.cooccurrence_counts(labels)")
    if not np.array_equal(n, n.T):
        raise GraphError("cooccurrence counts must be symmetric (N = YᵀY); compute them with "
                         "gcnretrieval.graphs.cooccurrence_counts(labels)")
    return n.astype(np.float64)


def _resolve_features(node_features: Any, label_names: Sequence[str] | None) -> np.ndarray:
    if isinstance(node_features, Mapping) or hasattr(node_features, "word_vectors"):
        if label_names is None:
            raise GraphError("node features given as a word-vector source need label_names to match "
                             "rows by name; pass label_names=[...]")
        return node_features_from_names(label_names, node_features).astype(np.float64)
    x = _to_numpy(node_features)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise GraphError(f"node_features must be a (num_labels, features) matrix, got shape {tuple(x.shape)}")
    if not np.issubdtype(x.dtype, np.number):
        raise GraphError("node_features must be numeric word vectors")
    return x.astype(np.float64)


# --- scores, masks, weights -------------------------------------------------------------


def implication_probabilities(counts: np.ndarray) -> np.ndarray:
    r"""Target-row matrix :math:`P[i, j] = P(i \mid j) = N_{ij} / N_{jj}` (float64).

    Entry ``[i, j]`` scores the message :math:`j \to i`: how often label :math:`i` is
    present when label :math:`j` is. A label that never occurs (:math:`N_{jj} = 0`) implies nothing:
    its column is 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    occurrences = np.diag(counts)[None, :]
    return np.divide(counts, occurrences, out=np.zeros_like(counts), where=occurrences > 0)


def cosine_similarities(features: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities of the rows of ``features`` (float64)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / norms) @ (features / norms).T


def _weights(mask: np.ndarray, edge_value: float, reweight: float | None, self_loops: bool) -> np.ndarray:
    """Dense target-row weights from a boolean neighbour mask with a False diagonal."""
    c = mask.shape[0]
    weights = np.zeros((c, c), dtype=np.float64)
    for i in range(c):
        neighbours = np.flatnonzero(mask[i])
        if reweight is None:
            weights[i, neighbours] = edge_value
            self_weight = 1.0
        elif len(neighbours) > 0:
            weights[i, neighbours] = reweight / len(neighbours)
            self_weight = 1.0 - reweight
        else:
            self_weight = 1.0
        if self_loops:
            weights[i, i] = self_weight
    return weights


def dense_to_label_graph(weights: np.ndarray | Tensor, x: Tensor, label_names: Sequence[str]) -> Data:
    """Turn a target-row weight matrix ``weights[i, j]`` (message j -> i) into a validated ``Data``.

    Edges are the non-zero entries, listed sorted by source then target.
    """
    w = torch.as_tensor(weights, device=x.device)
    source, target = torch.nonzero(w.T, as_tuple=True)
    edge_index = torch.stack([source, target]).long()
    edge_weight = w[target, source].to(torch.float32)
    data = Data(x=x, edge_index=edge_index, edge_weight=edge_weight, num_nodes=x.size(0),
                label_names=list(label_names))
    data.validate(raise_on_error=True)
    return data


def build_label_graph(
    labels: Any,
    node_features: Any,
    kind: str = "cooccurrence",
    threshold: float = DEFAULT_THRESHOLD,
    *,
    label_names: Sequence[str] | None = None,
    cooccurrence: Any = None,
    reweight: float | None = None,
    edge_value: float = 0.5,
    self_loops: bool = True,
    reverse: bool = False,
) -> Data:
    r"""Build the label graph (nodes = labels) as a validated ``torch_geometric.data.Data``.

    ``kind="cooccurrence"`` (default), over the *training* labels :math:`Y` only:

    .. math::
        N = Y^\top Y, \qquad P(i \mid j) = N_{ij} / N_{jj}, \qquad
        B_{ij} = \mathbb{1}[P(i \mid j) \ge t] \quad (i \ne j)

    ``kind="embedding"`` (word-vector prior): :math:`B_{ij} = \mathbb{1}[\cos(x_i, x_j) \ge t]`
    (:math:`i \ne j`), symmetric.

    Weights (``B_{ij} = 1`` keeps the message :math:`j \to i`, stored as the edge
    ``(j, i)``: ``edge_index[0]`` = source :math:`j`, ``edge_index[1]`` = target :math:`i`):

    .. math::
        A = \text{edge\_value} \cdot B + I \qquad \text{(default; } 0.5 \cdot B + I\text{)}

    so label :math:`i`'s node aggregates from the labels :math:`j` whose presence implies
    :math:`i` (ML-GCN's reading). With ``reweight = p`` (ML-GCN's p-reweighting) the
    binary mask is spread over each target's incoming edges and the self-loop keeps
    the rest:

    .. math::
        A_{ij} = p \, B_{ij} / \textstyle\sum_{k \ne i} B_{ik} \quad (i \ne j), \qquad
        A_{ii} = 1 - p

    so every row sums to 1; a label with no neighbour keeps :math:`A_{ii} = 1`
    (``edge_value`` is then unused). A label that never occurs in the training labels has no
    edge but its self-loop (a warning names it).

    ``reverse=True`` (co-occurrence only) reverses every edge, :math:`B_{ij} = \mathbb{1}[P(j \mid i)
    \ge t]`: label :math:`i` then aggregates from the labels its own presence implies. This is
    the graph the DAGNN / I-GNN reference code builds when its ``adj.mat`` is read with SciPy (its
    ``gen_A`` divides by the label counts loaded as a :math:`1 \times C` row, i.e. column-wise).

    Args:
        labels: :math:`(n, C)` 0/1 training labels (tensor or array), or ``None`` when
            ``cooccurrence`` is given or ``kind="embedding"``.
        node_features: :math:`(C, F)` word vectors (tensor or array), or a word-vector
            source (mapping name -> vector, or a :class:`LabelVocabulary`) matched to
            ``label_names`` by name.
        kind (str): ``"cooccurrence"`` or ``"embedding"``. (default: ``"cooccurrence"``)
        threshold (float): :math:`t \in (0, 1]`. (default: ``0.4``)
        label_names: the :math:`C` label names. (default: ``label_0 ...``)
        cooccurrence: precomputed :math:`(C, C)` counts :math:`N` instead of ``labels``.
        reweight (float, optional): :math:`p \in (0, 1)` for p-reweighting. (default: ``None``)
        edge_value (float): weight of kept edges without reweighting. (default: ``0.5``)
        self_loops (bool): add the self-loops :math:`A_{ii}`. (default: ``True``)
        reverse (bool): reverse every co-occurrence edge. (default: ``False``)

    Returns:
        ``Data`` with ``x`` :math:`(C, F)` float32, ``edge_index`` :math:`(2, E)` long,
        ``edge_weight`` :math:`(E,)` float32, ``num_nodes`` :math:`C`, ``label_names``.

    Raises:
        GraphError: labels not 0/1, node features with the
            wrong row count or non-finite values, names missing from a word-vector
            source, threshold outside :math:`(0, 1]`, unknown kind, bad options.
    """
    kind = _check_kind(kind)
    t = _check_threshold(threshold)
    if reweight is not None:
        if isinstance(reweight, bool) or not isinstance(reweight, (int, float)) or not (0.0 < reweight < 1.0):
            raise GraphError(f"reweight must be a number p in (0, 1) (ML-GCN uses 0.2), got {reweight!r}")
        reweight = float(reweight)
    if isinstance(edge_value, bool) or not isinstance(edge_value, (int, float)) or not (
            math.isfinite(edge_value) and edge_value > 0):
        raise GraphError(f"edge_value must be a positive number, got {edge_value!r}")

    if not isinstance(reverse, bool):
        raise GraphError(f"reverse must be true or false, got {reverse!r}")
    if reverse and kind != "cooccurrence":
        raise GraphError(f"reverse applies to kind 'cooccurrence' only (the '{kind}' graph is symmetric); drop it")

    features = _resolve_features(node_features, label_names)
    c = features.shape[0]
    if label_names is not None:
        label_names = [str(name) for name in label_names]
        if len(label_names) != c:
            raise GraphError(f"got {len(label_names)} label names for {c} node-feature rows; "
                             "give one name per label")
    names = label_names if label_names is not None else [f"label_{j}" for j in range(c)]
    if not np.isfinite(features).all():
        bad = sorted({int(i) for i in np.nonzero(~np.isfinite(features))[0]})
        raise GraphError(f"node_features contain NaN or infinite values in the row(s) of "
                         f"{', '.join(_label_name(names, j) for j in bad)}; fix the word vectors")

    if kind == "cooccurrence":
        if labels is not None and cooccurrence is not None:
            raise GraphError("give either labels or cooccurrence counts, not both")
        if labels is not None:
            y = _check_labels(labels)
            if y.shape[1] != c:
                raise GraphError(f"node_features has {c} rows but the labels have {y.shape[1]} columns; "
                                 "give one node-feature row per label")
            counts = (y.T @ y).astype(np.float64)
            source = "training labels"
        elif cooccurrence is not None:
            counts = _check_counts(cooccurrence, c)
            source = "cooccurrence counts"
        else:
            raise GraphError("kind 'cooccurrence' needs the training labels or their cooccurrence counts")
        never = [j for j in range(c) if counts[j, j] == 0]
        if never:  # small data: a rare label may miss the training split
            log.warning("label %s never occurs in the %s: it has no edge but its self-loop",
                        ", ".join(_label_name(names, j) for j in never), source)
        scores = implication_probabilities(counts)
    else:
        zero = [j for j in range(c) if not np.any(features[j])]
        if zero:
            raise GraphError(f"node feature row of label {', '.join(_label_name(names, j) for j in zero)} "
                             "is all zeros, so its cosine similarity is undefined; fix the word vectors")
        scores = cosine_similarities(features)

    mask = scores >= t
    if reverse:
        mask = mask.T.copy()
    np.fill_diagonal(mask, False)
    weights = _weights(mask, float(edge_value), reweight, self_loops)

    device = node_features.device if isinstance(node_features, Tensor) else None
    x = torch.as_tensor(features, dtype=torch.float32, device=device)
    return dense_to_label_graph(weights, x, names)
