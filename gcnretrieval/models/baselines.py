r"""Classical baselines: CCA, multi-label CCA and PLS, fitted in closed form on the training pairs, and chance level.

CCA and PLS learn two linear maps into a :math:`k`-dimensional common space from the training
image features :math:`X` and text features :math:`Y`, each standardised with the
training means and standard deviations (a constant column keeps scale 1):

- ``cca``: canonical correlation analysis in closed form, directions of maximal
  correlation :math:`\max \mathrm{corr}(X u_k, Y v_k)`: with the covariances
  :math:`C_{xx} + r I`, :math:`C_{yy} + r I` (ridge :math:`r`, default ``1e-3``; it keeps
  the whitening defined when a feature is constant or :math:`d > n`) and :math:`C_{xy}`,
  :math:`U S V^\top = \mathrm{svd}\big((C_{xx} + rI)^{-1/2} C_{xy} (C_{yy} + rI)^{-1/2}\big)`,
  :math:`A = (C_{xx} + rI)^{-1/2} U_{:k}`, :math:`B = (C_{yy} + rI)^{-1/2} V_{:k}`;
- ``mlcca``: multi-label CCA (:class:`MultiLabelCCA`), the same with :math:`C_{xy}` summed over
  all pairs of training items, each weighted by the cosine similarity of their label vectors;
- ``pls``: partial least squares by the SVD of the cross-covariance (scikit-learn
  ``PLSSVD``), directions of maximal covariance :math:`\max \mathrm{cov}(X u_k, Y v_k)`.

Why not scikit-learn's ``CCA`` and ``PLSCanonical``: both fit one component at a time
by NIPALS iterations, which took minutes for 16 components on the 512/300-dimensional
demo data on a two-core machine (and ``CCA`` has no ridge, so it degenerates when
:math:`d > n`, as on mirflickr-mini). The closed forms above are exact, deterministic
and take well under a second there; ``PLSSVD`` is the closed-form member of
scikit-learn's PLS family (no deflation between components).

Test pairs are projected with the fitted maps and ranked by cosine with the project's
metric (:func:`gcnretrieval.metrics.retrieval_report`), exactly like a model's embeddings.

``random`` is the chance level every method should be read against: i.i.d. standard normal
embeddings drawn from the run's seed, independent of the features, so that each query's
ranking is a uniformly random permutation (its mAP is the expected AP of a random ranking
plus the noise of one draw; it has no parameters and nothing to tune).

The number of components :math:`k` is ``n_components`` (default: ``min(64, d_v, d_t,
n_train)``); the baselines are fitted on the training split the deep models train on
(the validation pairs carved by ``eval.select_on = "val"`` left out); only ``mlcca`` sees
the training labels.

:func:`gcnretrieval.experiments.run_baseline` runs one on a recipe's data and writes a run
directory; a comparison runs them as cells next to the trained models. Each is a :class:`Baseline`
in :data:`BASELINES` (:func:`register_baseline`), which carries everything the application needs
of it: the estimator, the search space of ``compare --tune`` and the line of its report.
"""
from __future__ import annotations

import functools
import inspect
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.cross_decomposition import PLSSVD

from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["BASELINES", "Baseline", "ClosedFormCCA", "MultiLabelCCA", "RandomRanking", "SubspaceBaseline",
           "available_baselines", "fit_baseline", "register_baseline"]

DEFAULT_COMPONENTS = 64
DEFAULT_RIDGE = 1e-3

#: name -> :class:`Baseline` (:func:`register_baseline`)
BASELINES: Registry[Baseline] = Registry("baseline")


class ClosedFormCCA:
    """Regularised CCA by whitening and one SVD (see the module docstring).

    Args:
        n_components: common dimension :math:`k`.
        regularization: ridge :math:`r` added to both covariance diagonals (default ``1e-3``).
    """

    def __init__(self, n_components: int, regularization: float = DEFAULT_RIDGE) -> None:
        self.n_components = n_components
        self.regularization = regularization

    @staticmethod
    def _inverse_sqrt(cov: np.ndarray) -> np.ndarray:
        values, vectors = np.linalg.eigh(cov)
        return (vectors / np.sqrt(np.clip(values, 1e-12, None))) @ vectors.T

    def fit(self, x: np.ndarray, y: np.ndarray) -> "ClosedFormCCA":
        """Fit on centred-or-not paired rows (centred here)."""
        x, y = self._centre(x, y)
        return self._solve(x, y, x.T @ y / max(x.shape[0] - 1, 1))

    def _centre(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self.x_mean_, self.y_mean_ = x.mean(axis=0), y.mean(axis=0)
        return x - self.x_mean_, y - self.y_mean_

    def _solve(self, x: np.ndarray, y: np.ndarray, cross: np.ndarray) -> "ClosedFormCCA":
        """Whiten the cross-covariance ``cross`` by the ridge within-modality covariances of the
        centred ``x`` and ``y``, and keep the top :math:`k` singular directions."""
        n = max(x.shape[0] - 1, 1)
        wx = self._inverse_sqrt(x.T @ x / n + self.regularization * np.eye(x.shape[1]))
        wy = self._inverse_sqrt(y.T @ y / n + self.regularization * np.eye(y.shape[1]))
        u, s, vt = np.linalg.svd(wx @ cross @ wy, full_matrices=False)
        k = self.n_components
        self.x_rotations_, self.y_rotations_ = wx @ u[:, :k], wy @ vt[:k].T
        self.correlations_ = s[:k]
        return self

    def transform(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project paired rows into the common space."""
        return (x - self.x_mean_) @ self.x_rotations_, (y - self.y_mean_) @ self.y_rotations_


class MultiLabelCCA(ClosedFormCCA):
    r"""Multi-label CCA (ml-CCA; Ranjan, Rasiwasia and Jawahar, *Multi-Label Cross-modal
    Retrieval*, ICCV 2015): CCA whose cross-covariance runs over *all* pairs of items, each
    pair weighted by the similarity of their label vectors, instead of over the paired rows only

    .. math::
        C_{xy} = \frac{1}{n-1} \sum_{i=1}^{n} \sum_{j=1}^{n} s_{ij}\, \mathbf{x}_i \mathbf{y}_j^\top,
        \qquad
        s_{ij} = \frac{\mathbf{l}_i^\top \mathbf{l}_j}{\lVert \mathbf{l}_i \rVert \lVert \mathbf{l}_j \rVert},

    with the centred features :math:`\mathbf{x}_i`, :math:`\mathbf{y}_j` and the multi-hot
    labels :math:`\mathbf{l}_i` (:math:`s_{ij} = 0` when either item has no label). The
    within-modality covariances are CCA's, :math:`C_{xx} = \frac{1}{n-1}\sum_i \mathbf{x}_i
    \mathbf{x}_i^\top + rI` (and :math:`C_{yy}` alike), and the generalised eigenproblem
    :math:`C_{xy} C_{yy}^{-1} C_{yx} \mathbf{u} = \rho^2 C_{xx} \mathbf{u}` is solved as in
    :class:`ClosedFormCCA`: :math:`U S V^\top = \mathrm{svd}(C_{xx}^{-1/2} C_{xy} C_{yy}^{-1/2})`,
    :math:`A = C_{xx}^{-1/2} U_{:k}`, :math:`B = C_{yy}^{-1/2} V_{:k}`.

    With :math:`s_{ij} = \delta_{ij}` (every item its own label) it is CCA. The
    :math:`n \times n` similarity matrix is never formed: with the row-normalised labels
    :math:`\hat{L}`, :math:`C_{xy} = (X^\top \hat{L})(\hat{L}^\top Y) / (n-1)`. The factor
    :math:`1/(n-1)` changes no direction, only the scale of ``correlations_`` (the singular values,
    which may exceed 1 here since :math:`C_{xy}` is no longer a covariance of paired rows).
    :math:`C_{xy}` has rank at most :math:`C`, the number of labels: the directions beyond the
    :math:`C`-th have zero correlation and are arbitrary, so at most :math:`C` components are kept
    (``n_components`` is lowered to :math:`C`, with a log message, when it is larger).

    The within-modality covariances are CCA's (paired rows, unweighted) and only :math:`C_{xy}`
    is label-weighted, which is what makes the identity similarity reduce to CCA; this follows the
    method's description (the paper's full text was not at hand to check its exact normalisation,
    which changes no direction).

    Args:
        n_components: common dimension :math:`k`.
        regularization: ridge :math:`r` added to both covariance diagonals (default ``1e-3``).
    """

    def fit(self, x: np.ndarray, y: np.ndarray, labels: np.ndarray | None = None) -> "MultiLabelCCA":  # type: ignore[override]
        """Fit on the training rows and their ``(n, C)`` multi-hot labels."""
        if labels is None:
            raise DataError("ml-CCA is fitted on the training labels; pass the (n, C) multi-hot labels")
        labels = np.asarray(labels, dtype=np.float64)
        if labels.ndim != 2 or labels.shape[0] != x.shape[0]:
            raise DataError(f"ml-CCA needs one (n, C) multi-hot label row per training pair: "
                            f"features have {x.shape[0]} rows, labels have shape {labels.shape}")
        norms = np.linalg.norm(labels, axis=1, keepdims=True)
        unit = labels / np.where(norms > 0, norms, 1.0)
        if self.n_components > labels.shape[1]:
            log.info("mlcca: n_components %d lowered to the number of labels, %d (the rank of the "
                     "label-weighted cross-covariance)", self.n_components, labels.shape[1])
            self.n_components = labels.shape[1]
        x, y = self._centre(x, y)
        return self._solve(x, y, (x.T @ unit) @ (unit.T @ y) / max(x.shape[0] - 1, 1))


class RandomRanking:
    """Chance level: i.i.d. standard normal embeddings of both modalities, whatever the features.

    Args:
        n_components: dimension :math:`k` of the drawn embeddings.
        seed: seed of :func:`numpy.random.default_rng`; the run's ``run.seed``.
    """

    num_parameters = 0
    flops_per_sample = 0

    def __init__(self, n_components: int, seed: int = 0) -> None:
        self.n_components = n_components
        self.seed = seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> "RandomRanking":
        """Nothing to fit."""
        return self

    def transform(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, k)`` standard normal rows for each modality, from the same seed on every call."""
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal((len(x), self.n_components)), rng.standard_normal((len(y), self.n_components))


#: ``n_components`` searched log-uniformly from 1 to the limit, min(d_v, d_t, training pairs) (``high = None``)
COMPONENTS_RANGE = {"low": 1, "high": None, "log": True}
#: the ridge of ``cca`` and ``mlcca``, searched log-uniformly
RIDGE_RANGE = {"low": 1e-6, "high": 1.0, "log": True}


@dataclass(frozen=True)
class Baseline:
    """A registered baseline: everything the application needs of it, in one place.

    Args:
        name: its name in recipes and on the command line (``compare --encoders cca``).
        build: ``build(n_components, **options)`` -> an estimator with ``fit(x, y)`` (or ``fit(x, y,
            labels)``) and ``transform(x, y)``; a ``seed`` parameter receives the run's seed.
        summary: one line for a run's ``report.md``, a format string with the fields ``{name}``
            (upper case), ``{n_components}``, ``{seed}`` and ``{fit_seconds}`` (default: the method,
            its components and fitting time).
        space: the search space of ``compare --tune`` (``[tune.space]`` entries over the options
            of ``build``; ``"high": None`` is the limit of ``n_components``), default ``n_components``
            alone (:data:`COMPONENTS_RANGE`).
    """

    name: str
    build: Callable[..., Any]
    summary: str = "{name} with {n_components} components on standardised features, fitted in {fit_seconds:.2f} s"
    space: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {"n_components": COMPONENTS_RANGE})

    def describe(self, n_components: int, seed: int | None, fit_seconds: float) -> str:
        """The report's line on a fitted run: ``"CCA with 16 components on standardised features, fitted in
        0.02 s; test pairs ranked by cosine"``."""
        line = self.summary.format(name=self.name.upper(), n_components=n_components, seed=seed,
                                   fit_seconds=fit_seconds)
        return f"{line}; test pairs ranked by cosine"

    def search_space(self, limit: int) -> dict[str, Any]:
        """The ``[tune.space]`` entries of :attr:`space`, a range with ``"high": None`` up to ``limit``; a range
        of one value (nothing to tune) is left out."""
        entries = {}
        for key, entry in self.space.items():
            if isinstance(entry, Mapping):
                entry = {**entry, "high": limit if entry["high"] is None else entry["high"]}
                if entry["low"] >= entry["high"]:
                    continue
            entries[key] = entry
        return entries


def register_baseline(baseline: Baseline) -> Baseline:
    """Add a baseline to :data:`BASELINES`: a comparison, ``compare --tune`` and a baseline run then know it."""
    return BASELINES.register(baseline.name)(baseline)


register_baseline(Baseline("cca", ClosedFormCCA,
                           space={"n_components": COMPONENTS_RANGE, "regularization": RIDGE_RANGE}))
register_baseline(Baseline("mlcca", MultiLabelCCA,
                           space={"n_components": COMPONENTS_RANGE, "regularization": RIDGE_RANGE}))
register_baseline(Baseline("pls", functools.partial(PLSSVD, scale=False)))
register_baseline(Baseline("random", RandomRanking, space={},
                           summary="chance level: i.i.d. standard normal {n_components}-d embeddings drawn with "
                                   "seed {seed}, independent of the features"))


def available_baselines() -> list[str]:
    """Names of the registered baselines (``cca``, ``mlcca``, ``pls``, ``random``)."""
    return BASELINES.names()


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


@dataclass
class SubspaceBaseline:
    """A fitted linear two-view baseline: standardise, then project each modality.

    Attributes:
        method: ``"cca"``, ``"mlcca"``, ``"pls"`` or ``"random"``.
        estimator: the fitted scikit-learn estimator.
        image_mean, image_scale, text_mean, text_scale: the training standardisation.
        n_components: the common dimension :math:`k`.
    """

    method: str
    estimator: Any
    image_mean: np.ndarray
    image_scale: np.ndarray
    text_mean: np.ndarray
    text_scale: np.ndarray
    n_components: int

    def embed(self, image: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project paired image and text features: ``(n, k)`` each."""
        x = (np.asarray(image, dtype=np.float64) - self.image_mean) / self.image_scale
        y = (np.asarray(text, dtype=np.float64) - self.text_mean) / self.text_scale
        return self.estimator.transform(x, y)

    @property
    def num_parameters(self) -> int:
        """Fitted numbers used at test time: the two projection matrices, means and scales."""
        if isinstance(self.estimator, RandomRanking):
            return 0
        image_dim, text_dim = self.image_mean.size, self.text_mean.size
        return (image_dim + text_dim) * (self.n_components + 2)

    @property
    def flops_per_sample(self) -> int:
        """Multiply-adds x 2 to project one pair (standardisation included)."""
        if isinstance(self.estimator, RandomRanking):
            return 0
        image_dim, text_dim = self.image_mean.size, self.text_mean.size
        return 2 * self.n_components * (image_dim + text_dim) + 2 * (image_dim + text_dim)


def fit_baseline(method: str, image: np.ndarray, text: np.ndarray, n_components: int | None = None,
                 seed: int = 0, labels: np.ndarray | None = None, **options: Any) -> SubspaceBaseline:
    """Fit a registered baseline on training pairs.

    Args:
        method: ``"cca"``, ``"mlcca"``, ``"pls"`` or ``"random"``.
        image: ``(n, d_v)`` training image features.
        text: ``(n, d_t)`` training text features.
        n_components: common dimension :math:`k` (default ``min(64, d_v, d_t, n)``).
        seed: passed to a baseline whose factory takes a ``seed`` (``random``); the others are deterministic.
        labels: ``(n, C)`` multi-hot training labels, passed to an estimator whose ``fit`` takes ``labels``.
        **options: options of the method (``regularization`` of ``cca``).
    """
    factory = BASELINES.get(method).build
    if "seed" in inspect.signature(factory).parameters:
        options = {**options, "seed": seed}
    x = np.asarray(image, dtype=np.float64)
    y = np.asarray(text, dtype=np.float64)
    limit = min(x.shape[1], y.shape[1], x.shape[0])
    if n_components is None:
        n_components = min(DEFAULT_COMPONENTS, limit)
    if isinstance(n_components, bool) or not isinstance(n_components, int) or not 1 <= n_components <= limit:
        raise ConfigError(f"n_components of baseline '{method}' must be an integer in [1, {limit}] "
                          f"(min of d_v, d_t and the training pairs), got {n_components!r}")
    image_mean, image_scale = _standardiser(x)
    text_mean, text_scale = _standardiser(y)
    try:
        estimator = factory(n_components, **options)
    except TypeError as err:
        raise ConfigError(f"bad option for baseline '{method}': {err}") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        supervised = {"labels": labels} if "labels" in inspect.signature(estimator.fit).parameters else {}
        estimator.fit((x - image_mean) / image_scale, (y - text_mean) / text_scale, **supervised)
    for warning in caught:
        log.warning("%s: %s", method, warning.message)
    n_components = getattr(estimator, "n_components", n_components)  # an estimator may keep fewer (mlcca)
    return SubspaceBaseline(method, estimator, image_mean, image_scale, text_mean, text_scale, n_components)
