r"""Classical baselines: CCA and PLS, fitted in closed form on the training pairs, and chance level.

CCA and PLS learn two linear maps into a :math:`k`-dimensional common space from the training
image features :math:`X` and text features :math:`Y`, each standardised with the
training means and standard deviations (a constant column keeps scale 1):

- ``cca``: canonical correlation analysis in closed form, directions of maximal
  correlation :math:`\max \mathrm{corr}(X u_k, Y v_k)`: with the covariances
  :math:`C_{xx} + r I`, :math:`C_{yy} + r I` (ridge :math:`r`, default ``1e-3``; it keeps
  the whitening defined when a feature is constant or :math:`d > n`) and :math:`C_{xy}`,
  :math:`U S V^\top = \mathrm{svd}\big((C_{xx} + rI)^{-1/2} C_{xy} (C_{yy} + rI)^{-1/2}\big)`,
  :math:`A = (C_{xx} + rI)^{-1/2} U_{:k}`, :math:`B = (C_{yy} + rI)^{-1/2} V_{:k}`;
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
n_train)``); both baselines are fitted on the training split the deep models train on
(the validation pairs carved by ``eval.select_on = "val"`` left out), and see no labels.

:func:`gcnretrieval.experiments.run_baseline` runs one on a recipe's data and writes a run
directory; a comparison runs them as cells next to the trained models.
"""
from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cross_decomposition import PLSSVD

from gcnretrieval.errors import ConfigError
from gcnretrieval.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["BASELINES", "ClosedFormCCA", "RandomRanking", "SubspaceBaseline", "available_baselines", "fit_baseline"]

DEFAULT_COMPONENTS = 64

#: name -> factory ``(n_components) -> scikit-learn estimator``
BASELINES: Registry[Callable[[int], Any]] = Registry("baseline")


class ClosedFormCCA:
    """Regularised CCA by whitening and one SVD (see the module docstring).

    Args:
        n_components: common dimension :math:`k`.
        regularization: ridge :math:`r` added to both covariance diagonals (default ``1e-3``).
    """

    def __init__(self, n_components: int, regularization: float = 1e-3) -> None:
        self.n_components = n_components
        self.regularization = regularization

    @staticmethod
    def _inverse_sqrt(cov: np.ndarray) -> np.ndarray:
        values, vectors = np.linalg.eigh(cov)
        return (vectors / np.sqrt(np.clip(values, 1e-12, None))) @ vectors.T

    def fit(self, x: np.ndarray, y: np.ndarray) -> "ClosedFormCCA":
        """Fit on centred-or-not paired rows (centred here)."""
        self.x_mean_, self.y_mean_ = x.mean(axis=0), y.mean(axis=0)
        x, y = x - self.x_mean_, y - self.y_mean_
        n = max(x.shape[0] - 1, 1)
        wx = self._inverse_sqrt(x.T @ x / n + self.regularization * np.eye(x.shape[1]))
        wy = self._inverse_sqrt(y.T @ y / n + self.regularization * np.eye(y.shape[1]))
        u, s, vt = np.linalg.svd(wx @ (x.T @ y / n) @ wy, full_matrices=False)
        k = self.n_components
        self.x_rotations_, self.y_rotations_ = wx @ u[:, :k], wy @ vt[:k].T
        self.correlations_ = s[:k]
        return self

    def transform(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project paired rows into the common space."""
        return (x - self.x_mean_) @ self.x_rotations_, (y - self.y_mean_) @ self.y_rotations_


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


@BASELINES.register("cca")
def _cca(n_components: int, regularization: float = 1e-3) -> Any:
    return ClosedFormCCA(n_components, regularization)


@BASELINES.register("pls")
def _pls(n_components: int) -> Any:
    return PLSSVD(n_components=n_components, scale=False)


@BASELINES.register("random")
def _random(n_components: int, seed: int = 0) -> Any:
    return RandomRanking(n_components, seed)


def available_baselines() -> list[str]:
    """Names of the registered baselines (``cca``, ``pls``, ``random``)."""
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
        method: ``"cca"``, ``"pls"`` or ``"random"``.
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
        method: ``"cca"``, ``"pls"`` or ``"random"``.
        image: ``(n, d_v)`` training image features.
        text: ``(n, d_t)`` training text features.
        n_components: common dimension :math:`k` (default ``min(64, d_v, d_t, n)``).
        seed: passed to a baseline whose factory takes a ``seed`` (``random``); the others are deterministic.
        labels: ``(n, C)`` multi-hot training labels, passed to an estimator whose ``fit`` takes ``labels``.
        **options: options of the method (``regularization`` of ``cca``).
    """
    factory = BASELINES.get(method)
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
    return SubspaceBaseline(method, estimator, image_mean, image_scale, text_mean, text_scale, n_components)
