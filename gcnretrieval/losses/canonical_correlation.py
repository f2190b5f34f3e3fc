r"""Total canonical correlation of two views: the objective of Deep CCA.

Andrew, Arora, Bilmes and Livescu, *Deep Canonical Correlation Analysis*, ICML 2013, Section 2.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gcnretrieval.checks import check_positive_int
from gcnretrieval.errors import DataError
from gcnretrieval.losses._checks import check_matrix, check_positive, require_field
from gcnretrieval.losses.base import LossTerm

__all__ = ["CanonicalCorrelationLoss", "RIDGE", "total_canonical_correlation",
           "total_canonical_correlation_loss"]

#: ridge :math:`r_1 = r_2` added to both covariance diagonals
RIDGE = 1e-4


def _check(h1: Tensor, h2: Tensor, r1: float, r2: float, top_k: int | None) -> None:
    check_matrix("view-1 outputs", h1)
    check_matrix("view-2 outputs", h2)
    if h1.size(0) != h2.size(0):
        raise DataError(f"view-1 outputs have {h1.size(0)} rows but view-2 outputs {h2.size(0)}; "
                        "pass the two views of the same items")
    if h1.size(0) < 2:
        raise DataError(f"covariances need at least 2 rows, got {h1.size(0)}; use batches of >= 2 items")
    check_positive("r1", r1)
    check_positive("r2", r2)
    if top_k is not None:
        check_positive_int("top_k", top_k)
        limit = min(h1.size(1), h2.size(1))
        if top_k > limit:
            raise DataError(f"top_k = {top_k} exceeds the number of canonical correlations, "
                            f"min(o1, o2) = {limit}; use top_k <= {limit} or None for all of them")


def _cholesky(cov: Tensor, which: str) -> Tensor:
    factor, info = torch.linalg.cholesky_ex(cov)
    if bool(info != 0):
        raise DataError(f"the ridge covariance of the {which} outputs is not positive definite "
                        "(non-finite or huge outputs?); check the inputs or raise r1/r2")
    return factor


def total_canonical_correlation(h1: Tensor, h2: Tensor, r1: float = RIDGE, r2: float = RIDGE,
                                top_k: int | None = None) -> Tensor:
    r"""Total canonical correlation of the rows of two views (DCCA, eq. 10 and Section 2).

    .. math::
        \bar{H}_v = H_v - \mathbf{1}\,\overline{\mathbf{h}}_v^\top,\qquad
        \hat{\Sigma}_{12} = \tfrac{1}{n-1} \bar{H}_1^\top \bar{H}_2,\qquad
        \hat{\Sigma}_{vv} = \tfrac{1}{n-1} \bar{H}_v^\top \bar{H}_v + r_v I,

    .. math::
        T = \hat{\Sigma}_{11}^{-1/2} \hat{\Sigma}_{12} \hat{\Sigma}_{22}^{-1/2},\qquad
        \mathrm{corr}(H_1, H_2) = \lVert T \rVert_{tr} = \sum_{i} \sigma_i(T)
        \quad\Big(\text{or } \textstyle\sum_{i \le k} \sigma_i(T) \text{ with } k = \text{top\_k}\Big).

    The singular values of :math:`T` are computed as those of
    :math:`L_1^{-1} \hat{\Sigma}_{12} L_2^{-\top}` with the Cholesky factors
    :math:`\hat{\Sigma}_{vv} = L_v L_v^\top`: :math:`L_v^{-1} = Q_v \hat{\Sigma}_{vv}^{-1/2}`
    for an orthogonal :math:`Q_v`, so both matrices have the same singular values, and the
    Cholesky and singular-value gradients stay finite where :math:`\hat{\Sigma}_{vv}` has repeated
    eigenvalues (the gradient of an eigendecomposition divides by eigenvalue gaps; with fewer rows
    than outputs, :math:`n - 1 < o`, the ridge makes :math:`o - n + 1` eigenvalues equal to
    :math:`r_v`). Everything after the inputs runs in float64, whatever their precision (the
    matrices are :math:`o \times o`); the result has the inputs' dtype (float32 for half inputs).

    Args:
        h1: outputs of the first view, :math:`H_1`.
        h2: outputs of the second view, :math:`H_2`, same rows.
        r1: ridge :math:`r_1 > 0` of :math:`\hat{\Sigma}_{11}` (default ``1e-4``).
        r2: ridge :math:`r_2 > 0` of :math:`\hat{\Sigma}_{22}` (default ``1e-4``).
        top_k: sum only the :math:`k` largest singular values (default ``None``: all of them,
            the paper's objective).

    Shapes:
        - **input:** :math:`(n, o_1)` and :math:`(n, o_2)`, :math:`n \geq 2`
        - **output:** scalar
    """
    _check(h1, h2, r1, r2, top_k)
    dtype = torch.promote_types(h1.dtype, h2.dtype)
    dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    x1, x2 = h1.double(), h2.double()
    x1 = x1 - x1.mean(dim=0)
    x2 = x2 - x2.mean(dim=0)
    n = x1.size(0)
    eye1 = torch.eye(x1.size(1), dtype=x1.dtype, device=x1.device)
    eye2 = torch.eye(x2.size(1), dtype=x2.dtype, device=x2.device)
    sigma11 = x1.T @ x1 / (n - 1) + r1 * eye1
    sigma22 = x2.T @ x2 / (n - 1) + r2 * eye2
    sigma12 = x1.T @ x2 / (n - 1)
    l1 = _cholesky(sigma11, "view-1")
    l2 = _cholesky(sigma22, "view-2")
    t = torch.linalg.solve_triangular(l1, sigma12, upper=False)            # L1^{-1} S12
    t = torch.linalg.solve_triangular(l2, t.T, upper=False).T              # L1^{-1} S12 L2^{-T}
    values = torch.linalg.svdvals(t)                                       # descending
    total = values.sum() if top_k is None else values[:top_k].sum()
    return total.to(dtype)


def total_canonical_correlation_loss(h1: Tensor, h2: Tensor, r1: float = RIDGE, r2: float = RIDGE,
                                     top_k: int | None = None) -> Tensor:
    r"""DCCA loss: the negative total canonical correlation,
    :math:`\mathcal{L} = -\lVert \hat{\Sigma}_{11}^{-1/2} \hat{\Sigma}_{12} \hat{\Sigma}_{22}^{-1/2} \rVert_{tr}`
    (see :func:`total_canonical_correlation`, which documents the arguments)."""
    return -total_canonical_correlation(h1, h2, r1, r2, top_k)


class CanonicalCorrelationLoss(LossTerm):
    r"""Negative total canonical correlation (:func:`total_canonical_correlation_loss`) of the
    ``image_embedding`` and ``text_embedding`` fields of the model output.

    .. math::
        \mathcal{L}_{cca} = -\sum_{i} \sigma_i\big(\hat{\Sigma}_{11}^{-1/2} \hat{\Sigma}_{12} \hat{\Sigma}_{22}^{-1/2}\big)

    Args:
        r1: ridge of the image covariance (default ``1e-4``).
        r2: ridge of the text covariance (default ``1e-4``).
        top_k: sum only the ``top_k`` largest correlations (default ``None``: all).
    """

    def __init__(self, r1: float = RIDGE, r2: float = RIDGE, top_k: int | None = None) -> None:
        super().__init__()
        self.r1 = check_positive("r1", r1)
        self.r2 = check_positive("r2", r2)
        self.top_k = None if top_k is None else check_positive_int("top_k", top_k)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        return total_canonical_correlation_loss(image, text, self.r1, self.r2, self.top_k)

    def extra_repr(self) -> str:
        return f"r1={self.r1}, r2={self.r2}, top_k={self.top_k}"
